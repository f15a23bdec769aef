"""CSC and CSR: compressed sparse columns / rows, exactly as ``scipy.sparse`` stores them.

A ``rows x cols`` matrix in CSC is three arrays: ``data`` (the non-zeros, column after column,
rows ascending inside a column), ``indices`` (the row of each non-zero) and ``indptr``
(``cols + 1`` pointers: column ``j`` is ``data[indptr[j]:indptr[j+1]]``). CSR is the same with
rows and columns swapped. The arrays equal scipy's ``csc_matrix(W)`` / ``csr_matrix(W)`` after
``sort_indices()`` and ``eliminate_zeros()``: explicit zeros are never stored, so the encoding
of a matrix is unique and ``encode(decode(m)) == m``.

Widths (what a memory image stores): values are signed ``weight_bits`` words, indices
``clog2(minor dimension)`` bits, pointers ``clog2(nnz + 1)`` bits (see :meth:`CSMatrix.widths`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.hw.config import Arith, clog2
from model.errors import SparseFlowError
from model.hw.reference import as_int_array
from model.hw.formats import COMPRESSED_FILES, compressed_memories, wrap
from model.hw.formats.eie import _as_int_matrix

KINDS = ("csc", "csr")


@dataclass
class CSMatrix:
    """One matrix in CSC (``kind='csc'``) or CSR (``kind='csr'``); int64 arrays."""

    shape: tuple[int, int]
    kind: str
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray

    @property
    def nnz(self) -> int:
        return int(len(self.data))

    @property
    def major(self) -> int:
        """Number of compressed lines: columns for CSC, rows for CSR."""
        return self.shape[1] if self.kind == "csc" else self.shape[0]

    @property
    def minor(self) -> int:
        """Length of each line (the range of ``indices``)."""
        return self.shape[0] if self.kind == "csc" else self.shape[1]

    def widths(self, weight_bits: int) -> dict[str, int]:
        """Word widths of the three arrays in a memory image."""
        return {"data": weight_bits, "indices": clog2(self.minor), "indptr": clog2(self.nnz + 1)}

    def to_scipy(self):
        import scipy.sparse as sp
        cls = sp.csc_matrix if self.kind == "csc" else sp.csr_matrix
        return cls((self.data, self.indices, self.indptr), shape=self.shape)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise SparseFlowError(f"unknown compressed-sparse kind {kind!r} (expected csc or csr)")


def encode(weights, weight_bits: int, kind: str = "csc") -> CSMatrix:
    """Compress a dense integer matrix of signed ``weight_bits`` weights to CSC or CSR."""
    _check_kind(kind)
    w = _as_int_matrix(weights, "weights", weight_bits)
    rows, cols = w.shape
    # CSC of W is CSR of W.T: a C-ordered copy of W.T lists the non-zeros sorted by (major,
    # minor) in one flatnonzero (no int64 copy of the dense matrix, no sort). The transpose is
    # done in slabs of about 1 MB so that it stays in cache.
    t = w.T if kind == "csc" else w
    n_major, n_minor = t.shape
    step = max(1, n_major if kind == "csr" else (1 << 20) // max(n_minor, 1))
    majors, minors, datas = [], [], []
    for m0 in range(0, n_major, step):
        slab = np.ascontiguousarray(t[m0:m0 + step])
        flat = np.flatnonzero(slab != 0)  # nonzero is fastest on booleans
        major = flat // max(n_minor, 1)
        minors.append(flat - major * n_minor)
        majors.append(major + m0)
        datas.append(slab.reshape(-1)[flat])
    major_idx = np.concatenate(majors) if majors else np.zeros(0, dtype=np.int64)
    minor_idx = np.concatenate(minors) if minors else np.zeros(0, dtype=np.int64)
    data = (np.concatenate(datas) if datas else np.zeros(0)).astype(np.int64)
    indptr = np.zeros(n_major + 1, dtype=np.int64)
    np.cumsum(np.bincount(major_idx, minlength=n_major), out=indptr[1:])
    return CSMatrix((rows, cols), kind, data, minor_idx.astype(np.int64), indptr)


def encode_csc(weights, weight_bits: int) -> CSMatrix:
    return encode(weights, weight_bits, "csc")


def encode_csr(weights, weight_bits: int) -> CSMatrix:
    return encode(weights, weight_bits, "csr")


def validate(m: CSMatrix, weight_bits: int | None = None) -> None:
    """Raise unless ``m`` is a canonical CSC/CSR matrix (what :func:`encode` produces)."""
    _check_kind(m.kind)
    rows, cols = m.shape
    if rows < 0 or cols < 0:
        raise SparseFlowError(f"{m.kind}: negative shape {m.shape}")
    ptr = np.asarray(m.indptr, dtype=np.int64)
    idx = np.asarray(m.indices, dtype=np.int64)
    data = np.asarray(m.data, dtype=np.int64)
    if ptr.shape != (m.major + 1,):
        raise SparseFlowError(f"{m.kind}: indptr has {len(ptr)} pointers, expected {m.major + 1}")
    if ptr[0] != 0 or np.any(np.diff(ptr) < 0):
        raise SparseFlowError(f"{m.kind}: indptr must start at 0 and never decrease")
    if ptr[-1] != len(data) or len(idx) != len(data):
        raise SparseFlowError(
            f"{m.kind}: indptr ends at {int(ptr[-1])} but there are {len(data)} values and {len(idx)} indices")
    if idx.size and (idx.min() < 0 or idx.max() >= m.minor):
        raise SparseFlowError(f"{m.kind}: an index is outside 0..{m.minor - 1}")
    # Strictly ascending inside each line (no duplicates): canonical like scipy's sorted form.
    if idx.size > 1:
        same_line = np.ones(len(idx) - 1, dtype=bool)
        starts = ptr[1:-1]
        starts = starts[(starts > 0) & (starts < len(idx))]
        same_line[starts - 1] = False
        if np.any((np.diff(idx) <= 0) & same_line):
            raise SparseFlowError(f"{m.kind}: indices inside a line must be strictly ascending")
    if np.any(data == 0):
        raise SparseFlowError(f"{m.kind}: explicit zero values are not stored")
    if weight_bits is not None:
        as_int_array(data, f"{m.kind} values", weight_bits, ndim=(1,))


def decode(m: CSMatrix) -> np.ndarray:
    """Back to the dense int64 matrix (validates ``m`` first)."""
    validate(m)
    rows, cols = m.shape
    major = np.repeat(np.arange(m.major), np.diff(np.asarray(m.indptr, dtype=np.int64)))
    out = np.zeros((rows, cols), dtype=np.int64)
    if m.kind == "csc":
        out[m.indices, major] = m.data
    else:
        out[major, m.indices] = m.data
    return out


class CSFormat:
    """CSC (``kind='csc'``) or CSR as an image format (:class:`model.hw.formats.Format`); an ``Arith`` config."""

    config_type = Arith

    def __init__(self, kind: str):
        _check_kind(kind)
        self.name = kind

    def owns(self, m) -> bool:
        return isinstance(m, CSMatrix) and m.kind == self.name

    def encode(self, weights, cfg: Arith, **options) -> CSMatrix:
        return encode(weights, cfg.weight_bits, self.name)

    def decode(self, m: CSMatrix) -> np.ndarray:
        return decode(m)

    def check(self, m: CSMatrix, cfg: Arith) -> None:
        validate(m, cfg.weight_bits)

    def memories(self, m: CSMatrix, cfg: Arith) -> dict:
        return compressed_memories(m, cfg.weight_bits)

    def summary(self, m: CSMatrix, cfg: Arith) -> dict:
        return {"nnz": m.nnz, "widths": m.widths(cfg.weight_bits)}

    def load(self, rd, cfg: Arith, rows: int, cols: int) -> CSMatrix:
        wb = cfg.weight_bits
        nnz = rd.field("nnz", int, "an integer")
        major, minor = (cols, rows) if self.name == "csc" else (rows, cols)
        rd.expect_files(COMPRESSED_FILES)
        if nnz < 0:
            raise rd.fail("nnz must not be negative")
        wd = {"data": wb, "indices": clog2(minor), "indptr": clog2(nnz + 1)}
        rd.expect("widths", wd)
        indptr = rd.read("indptr.hex", wd["indptr"], major + 1)
        m = CSMatrix((rows, cols), self.name, rd.read("data.hex", wd["data"], nnz, signed=True),
                     rd.read("indices.hex", wd["indices"], nnz), indptr)
        wrap(validate, m, wb)
        rd.expect("nnz", m.nnz, "the data")
        return m

    def check_compatible(self, m: CSMatrix, have: Arith, expect: Arith) -> None:
        pass  # a weight width is all it needs (checked by the caller)


CSC, CSR = CSFormat("csc"), CSFormat("csr")
