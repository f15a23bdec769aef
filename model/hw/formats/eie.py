"""EIE interleaved CSC: the weight format of the EIE-like PE array.

Row ``i`` of a ``rows x cols`` matrix belongs to PE ``i % n_pes`` at local row ``i // n_pes``.
Each PE stores, column after column, the non-zeros of its rows as entries
``(value, z)`` where ``z`` is the number of zero local rows skipped since the previous entry of
the same column (the first entry of a column counts from local row -1). A gap longer than
``max_gap = 2**index_bits - 1`` is bridged by padding entries ``(0, max_gap)``: each one stands
on a real local row and carries a zero weight, so the PE may add it harmlessly or skip it.
``ptr[k][j] .. ptr[k][j+1]`` are PE ``k``'s entries of column ``j``.

Entry word (``EIEConfig.entry_bits`` wide): ``z`` in the high ``index_bits``, the value in the
low ``value_bits`` (two's complement weight, or the codebook index in codebook mode).

The encoder is vectorized (no Python loop per non-zero) so that it keeps up with
``scipy.sparse`` on EIE-sized layers (see ``benchmarks/encode_speed.py``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from model.hw.config import EIEConfig
from model.errors import SparseFlowError
from model.hw.reference import as_int_array


@dataclass
class EIEMatrix:
    """One matrix in interleaved CSC for ``n_pes`` PEs.

    ``values[k]``, ``zs[k]``: PE ``k``'s entries (int64 arrays; values are weights, or codebook
    indices when ``codebook`` is set). ``ptr``: ``(n_pes, cols + 1)`` column pointers.
    ``codebook``: the 2**codebook_bits shared weights (entry 0 is 0), or ``None``.
    """

    shape: tuple[int, int]
    n_pes: int
    values: list[np.ndarray]
    zs: list[np.ndarray]
    ptr: np.ndarray
    codebook: np.ndarray | None = None

    @property
    def entries_per_pe(self) -> np.ndarray:
        return self.ptr[:, -1].copy()

    @property
    def padding_entries(self) -> int:
        return int(sum(int(np.count_nonzero(v == 0)) for v in self.values))

    def words(self, cfg: EIEConfig, pe: int) -> np.ndarray:
        """PE ``pe``'s packed entry words, as non-negative integers of ``cfg.entry_bits`` bits."""
        vmask = (1 << cfg.value_bits) - 1
        return (self.zs[pe] << cfg.value_bits) | (self.values[pe] & vmask)

    @staticmethod
    def unpack(words: np.ndarray, cfg: EIEConfig) -> tuple[np.ndarray, np.ndarray]:
        """Split packed entry words into (values, zs); values are sign-extended unless codebook."""
        words = np.asarray(words, dtype=np.int64)
        vb = cfg.value_bits
        vals = words & ((1 << vb) - 1)
        if not cfg.codebook:
            vals = np.where(vals >= 1 << (vb - 1), vals - (1 << vb), vals)
        return vals, words >> vb


def check_fits(m: EIEMatrix, cfg: EIEConfig) -> None:
    """Raise if ``m`` does not fit the memories of the array described by ``cfg``."""
    rows, cols = m.shape
    if m.n_pes != cfg.n_pes:
        raise SparseFlowError(f"matrix is encoded for {m.n_pes} PEs, the array has {cfg.n_pes}")
    if rows > cfg.max_rows:
        raise SparseFlowError(f"matrix has {rows} rows; the array holds at most {cfg.max_rows}")
    if cols > cfg.max_cols:
        raise SparseFlowError(f"matrix has {cols} columns; the array holds at most {cfg.max_cols}")
    worst = int(m.entries_per_pe.max(initial=0))
    if worst > cfg.max_entries:
        pe = int(np.argmax(m.entries_per_pe))
        raise SparseFlowError(
            f"PE {pe} needs {worst} entries (padding included); its memory holds {cfg.max_entries}")


def _as_int_matrix(weights, name: str, bits: int) -> np.ndarray:
    """:func:`as_int_array` for 2-D matrices without its int64 copy when the dtype is already an
    in-range integer (the common case; the copy would dominate the encoder's run time)."""
    arr = np.asarray(weights)
    if arr.ndim == 2 and arr.dtype != bool and np.issubdtype(arr.dtype, np.integer):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if arr.size == 0 or (int(arr.min()) >= lo and int(arr.max()) <= hi):
            return arr
    return as_int_array(arr, name, bits, ndim=(2,))


def _encode_pe(sub: np.ndarray, cfg: EIEConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One PE's rows (``W[k::n_pes]``) -> its entry values, relative indices and per-column counts.

    A contiguous transposed copy of the PE's slab lists its non-zeros in storage order (column,
    then local row) with one flatnonzero and no sort. Working PE by PE keeps the transpose in
    cache, which is what keeps the encoder near scipy's speed on EIE-sized layers.
    """
    lrows, cols = sub.shape
    t = np.ascontiguousarray(sub.T)  # (cols, lrows)
    flat = np.flatnonzero(t != 0)  # nonzero is fastest on booleans
    val = t.reshape(-1)[flat].astype(np.int64)
    col = flat // max(lrows, 1)
    lrow = flat - col * lrows
    # gap = zero local rows skipped since the previous entry of the same column (from row -1).
    first = np.empty(len(col), dtype=bool)
    first[:1] = True
    np.not_equal(col[1:], col[:-1], out=first[1:])
    prev = np.empty_like(lrow)
    prev[:1] = -1
    prev[1:] = lrow[:-1]
    gap = lrow - np.where(first, -1, prev) - 1
    pads = gap >> cfg.index_bits  # padding entries (0, max_gap), each standing on a real local row
    z_last = gap & cfg.max_gap
    counts = np.bincount(col, minlength=cols)
    if not pads.any():
        return val, z_last, counts
    span = pads + 1  # entries each non-zero occupies, its padding included
    counts = counts + np.bincount(col, weights=pads, minlength=cols).astype(np.int64)
    total = int(span.sum())
    # Every slot is padding (0, max_gap) unless it is the last of its non-zero's span.
    out_val = np.zeros(total, dtype=np.int64)
    out_z = np.full(total, cfg.max_gap, dtype=np.int64)
    last_slot = np.cumsum(span) - 1
    out_val[last_slot] = val
    out_z[last_slot] = z_last
    return out_val, out_z, counts


def encode(weights, cfg: EIEConfig, codebook: np.ndarray | None = None) -> EIEMatrix:
    """Encode a dense integer matrix for the array ``cfg``.

    Without ``codebook`` the matrix holds signed ``weight_bits`` weights. With ``codebook`` (and
    ``cfg.codebook`` set) it holds codebook indices (0 = zero weight) and ``codebook`` the
    weights they stand for.
    """
    if cfg.codebook:
        if codebook is None:
            raise SparseFlowError("a codebook configuration needs a codebook")
        codebook = as_int_array(codebook, "codebook", cfg.arith.weight_bits, ndim=(1,))
        if codebook.shape != (1 << cfg.codebook_bits,) or codebook[0] != 0:
            raise SparseFlowError(
                f"codebook must have {1 << cfg.codebook_bits} entries with entry 0 = 0")
        w = np.asarray(weights)
        if w.ndim != 2:
            raise SparseFlowError(f"weights must be 2-D, got shape {w.shape}")
        w = _as_int_matrix(w, "codebook indices", 32)
        if w.min(initial=0) < 0 or w.max(initial=0) >= 1 << cfg.codebook_bits:
            idx = tuple(int(i) for i in np.argwhere((w < 0) | (w >= 1 << cfg.codebook_bits))[0])
            raise SparseFlowError(f"codebook indices must be in 0..{(1 << cfg.codebook_bits) - 1}; "
                                  f"codebook indices{list(idx)} = {w[idx]}")
    else:
        if codebook is not None:
            raise SparseFlowError("a codebook was given but the configuration has codebook=False")
        w = _as_int_matrix(weights, "weights", cfg.arith.weight_bits)
    rows, cols = w.shape
    n = cfg.n_pes
    ptr = np.zeros((n, cols + 1), dtype=np.int64)
    values, zs = [], []
    for k in range(n):
        val, z, counts = _encode_pe(w[k::n], cfg)
        np.cumsum(counts, out=ptr[k, 1:])
        values.append(val)
        zs.append(z)
    m = EIEMatrix((rows, cols), n, values, zs, ptr, codebook)
    return m


def decode(m: EIEMatrix) -> np.ndarray:
    """Back to the dense matrix (codebook indices in codebook mode; see :func:`dense_weights`)."""
    rows, cols = m.shape
    n = m.n_pes
    ptr = np.asarray(m.ptr, dtype=np.int64)
    # A malformed object must fail with a clear message, not deep inside numpy.
    if ptr.shape != (n, cols + 1) or len(m.values) != n or len(m.zs) != n:
        raise SparseFlowError(f"EIE matrix needs {n} x {cols + 1} pointers and {n} entry lists")
    out = np.zeros((rows, cols), dtype=np.int64)
    for k in range(n):
        v, z, p = np.asarray(m.values[k]), np.asarray(m.zs[k]), ptr[k]
        if p[0] != 0 or np.any(np.diff(p) < 0) or len(v) != p[-1] or len(z) != p[-1]:
            raise SparseFlowError(f"PE {k}: pointers must run from 0 to its {len(v)} entries without decreasing")
        if z.size and z.min() < 0:
            raise SparseFlowError(f"PE {k}: a relative index is negative")
        if len(v) == 0:
            continue
        col_of = np.repeat(np.arange(cols), np.diff(p))
        start = np.zeros(len(v), dtype=bool)
        start[p[:-1][np.diff(p) > 0]] = True
        # local row = running sum of (z + 1) within the column, minus 1
        steps = z + 1
        csum = np.cumsum(steps)
        base = np.where(start, csum - steps, 0)
        base = np.maximum.accumulate(base)
        lrow = csum - base - 1
        keep = v != 0
        r = lrow[keep] * n + k
        if r.size and r.max() >= rows:
            raise SparseFlowError(f"PE {k}: an entry addresses row {int(r.max())} beyond {rows} rows")
        out[r, col_of[keep]] = v[keep]
    return out


def dense_weights(m: EIEMatrix) -> np.ndarray:
    """The weights the hardware multiplies by (codebook looked up in codebook mode)."""
    d = decode(m)
    return m.codebook[d] if m.codebook is not None else d


def check_canonical(m: EIEMatrix, cfg: EIEConfig) -> None:
    """Raise unless ``m`` is what :func:`encode` produces for ``cfg`` and fits its memories."""
    rows, cols = m.shape
    if m.n_pes != cfg.n_pes:
        raise SparseFlowError(f"matrix is encoded for {m.n_pes} PEs, the configuration has {cfg.n_pes}")
    ptr = np.asarray(m.ptr, dtype=np.int64)
    if ptr.shape != (m.n_pes, cols + 1) or len(m.values) != m.n_pes or len(m.zs) != m.n_pes:
        raise SparseFlowError(f"EIE pointers must be {m.n_pes} x {cols + 1}")
    for k in range(m.n_pes):
        p = ptr[k]
        if p[0] != 0 or np.any(np.diff(p) < 0):
            raise SparseFlowError(f"PE {k}: column pointers must start at 0 and never decrease")
        if len(m.values[k]) != p[-1] or len(m.zs[k]) != p[-1]:
            raise SparseFlowError(f"PE {k}: pointers end at {int(p[-1])} but it holds {len(m.values[k])} entries")
        z = np.asarray(m.zs[k])
        if z.size and (z.min() < 0 or z.max() > cfg.max_gap):
            raise SparseFlowError(f"PE {k}: a relative index is outside 0..{cfg.max_gap}")
        v = np.asarray(m.values[k])
        lo, hi = (0, (1 << cfg.codebook_bits) - 1) if cfg.codebook else cfg.arith.weight_range
        if v.size and (v.min() < lo or v.max() > hi):
            raise SparseFlowError(f"PE {k}: a value is outside {lo}..{hi}")
    if cfg.codebook != (m.codebook is not None):
        raise SparseFlowError("codebook mode of the matrix and of the configuration differ")
    check_fits(m, cfg)
    again = encode(decode(m), cfg, m.codebook)
    for k in range(m.n_pes):
        if not (np.array_equal(again.values[k], m.values[k]) and np.array_equal(again.zs[k], m.zs[k])):
            raise SparseFlowError(f"PE {k}: entries are not canonical (padding only where a gap needs it)")


def _widths(cfg: EIEConfig) -> dict[str, int]:
    return {"entry": cfg.entry_bits, "value": cfg.value_bits, "index": cfg.index_bits, "ptr": cfg.ptr_bits}


def _nnz(values) -> int:
    return int(sum(int(np.count_nonzero(v)) for v in values))


class EIEFormat:
    """Interleaved CSC as an image format (:class:`model.hw.formats.Format`); an ``EIEConfig``.

    Files: per PE ``pe{k}_entries.hex`` (``entry_bits``) and ``pe{k}_ptr.hex`` (``ptr_bits``,
    ``cols + 1`` pointers); in codebook mode ``codebook.hex`` (``weight_bits``)."""

    name = "eie"
    config_type = EIEConfig

    def owns(self, m) -> bool:
        return isinstance(m, EIEMatrix)

    def encode(self, weights, cfg: EIEConfig, codebook=None, **options) -> EIEMatrix:
        return encode(weights, cfg, codebook)

    def decode(self, m: EIEMatrix) -> np.ndarray:
        return decode(m)

    def check(self, m: EIEMatrix, cfg: EIEConfig) -> None:
        check_canonical(m, cfg)

    def memories(self, m: EIEMatrix, cfg: EIEConfig) -> dict:
        files = {}
        for k in range(m.n_pes):
            files[f"pe{k}_entries.hex"] = (m.words(cfg, k), cfg.entry_bits, False)
            files[f"pe{k}_ptr.hex"] = (np.asarray(m.ptr[k]), cfg.ptr_bits, False)
        if cfg.codebook:
            files["codebook.hex"] = (np.asarray(m.codebook), cfg.arith.weight_bits, True)
        return files

    def summary(self, m: EIEMatrix, cfg: EIEConfig) -> dict:
        return {"nnz": _nnz(m.values), "n_pes": m.n_pes, "entries_per_pe": [int(x) for x in m.entries_per_pe],
                "padding_entries": m.padding_entries,
                "codebook": None if m.codebook is None else [int(x) for x in m.codebook], "widths": _widths(cfg)}

    def load(self, rd, cfg: EIEConfig, rows: int, cols: int) -> EIEMatrix:
        n = cfg.n_pes
        rd.expect("n_pes", n)
        if rows > cfg.max_rows or cols > cfg.max_cols:  # before sizing any array by the shape
            raise rd.fail(f"shape {rows}x{cols} exceeds the configuration's {cfg.max_rows}x{cfg.max_cols}")
        rd.expect("widths", _widths(cfg))
        names = {f"pe{k}_{s}.hex" for k in range(n) for s in ("entries", "ptr")}
        if cfg.codebook:
            names.add("codebook.hex")
        rd.expect_files(names)
        book = None
        if cfg.codebook:
            book = rd.read("codebook.hex", cfg.arith.weight_bits, 1 << cfg.codebook_bits, signed=True)
            rd.expect("codebook", [int(x) for x in book], "the data")
        elif rd.man.get("codebook") is not None:
            raise rd.fail("a codebook is listed but the configuration has codebook=false")
        ptr = np.zeros((n, cols + 1), dtype=np.int64)
        values, zs = [], []
        for k in range(n):
            ptr[k] = rd.read(f"pe{k}_ptr.hex", cfg.ptr_bits, cols + 1)
            if ptr[k, 0] != 0 or np.any(np.diff(ptr[k]) < 0):
                raise SparseFlowError(f"pe{k}_ptr.hex: column pointers must start at 0 and never decrease")
            v, z = EIEMatrix.unpack(rd.read(f"pe{k}_entries.hex", cfg.entry_bits, int(ptr[k, -1])), cfg)
            values.append(v)
            zs.append(z)
        m = EIEMatrix((rows, cols), n, values, zs, ptr, book)
        try:
            check_canonical(m, cfg)
        except SparseFlowError as exc:
            pe = re.match(r"PE (\d+):", str(exc))  # name the PE's entry file when the error is local
            raise (SparseFlowError(f"pe{pe.group(1)}_entries.hex: {exc}") if pe else rd.fail(str(exc))) from None
        rd.expect("entries_per_pe", [int(x) for x in m.entries_per_pe], "the data")
        rd.expect("padding_entries", m.padding_entries, "the data")
        rd.expect("nnz", _nnz(values), "the data")
        return m

    def check_compatible(self, m: EIEMatrix, have: EIEConfig, expect: EIEConfig) -> None:
        for k in ["n_pes", "index_bits", "codebook"] + (["codebook_bits"] if have.codebook else []):
            if getattr(have, k) != getattr(expect, k):
                raise SparseFlowError(
                    f"image was encoded with {k}={getattr(have, k)}, the expected configuration has {getattr(expect, k)}")
        check_fits(m, expect)


EIE = EIEFormat()
