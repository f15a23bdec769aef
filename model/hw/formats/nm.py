"""2:4 compressed: two kept values and their 2-bit positions per group of four weights.

Groups run along the input dimension (the one the 2:4 MAC reduces over): group ``g`` of row
``r`` is ``W[r, 4g:4g+4]``. A group keeps its non-zeros (at most two); a group with fewer than
two non-zeros is completed with zero values at the lowest free positions, so every group has
exactly two ``(value, position)`` slots with ``position[0] < position[1]`` (canonical, so
encode(decode(x)) == x).

Arrays: ``values`` and ``positions``, both ``(rows, cols // 2)``; slot ``2g`` and ``2g + 1``
belong to group ``g``. Metadata packing: one 4-bit nibble per group, ``pos0 | pos1 << 2``
(:func:`pack_meta`); a row's nibbles are packed LSB first into metadata words.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.hw.config import Sparse24Config
from model.errors import SparseFlowError
from model.hw.reference import as_int_array
from model.hw.formats import to_signed, wrap

N, M = 2, 4


@dataclass
class NMMatrix:
    """A 2:4-compressed matrix: ``values``/``positions`` of shape ``(rows, cols // 2)``."""

    shape: tuple[int, int]
    values: np.ndarray
    positions: np.ndarray

    @property
    def groups(self) -> int:
        return self.shape[1] // M

    def meta(self) -> np.ndarray:
        """``(rows, cols // 4)`` nibbles ``pos0 | pos1 << 2``."""
        return pack_meta(self.positions)


def pack_meta(positions: np.ndarray) -> np.ndarray:
    p = np.asarray(positions, dtype=np.int64)
    return p[:, 0::2] | (p[:, 1::2] << 2)


def unpack_meta(meta: np.ndarray) -> np.ndarray:
    meta = np.asarray(meta, dtype=np.int64)
    out = np.empty((meta.shape[0], meta.shape[1] * 2), dtype=np.int64)
    out[:, 0::2] = meta & 3
    out[:, 1::2] = (meta >> 2) & 3
    return out


def keep_largest_24(w) -> np.ndarray:
    """A copy of ``w`` (columns a multiple of 4) with the two largest-magnitude weights of each
    group of four kept, the first on ties: a 2:4 matrix from any matrix."""
    w = np.array(w)
    g = w.reshape(w.shape[0], -1, M)
    order = np.argsort(-np.abs(g), axis=2, kind="stable")
    np.put_along_axis(g, order[:, :, N:], 0, axis=2)
    return w


def check_24(w: np.ndarray) -> None:
    """Raise naming the first group (row-major) that holds more than two non-zeros."""
    rows, cols = w.shape
    if cols % M:
        raise SparseFlowError(f"a 2:4 matrix needs a multiple of 4 columns, got {cols}")
    nnz = np.count_nonzero(w.reshape(rows, cols // M, M), axis=2)
    bad = np.argwhere(nnz > N)
    if bad.size:
        r, g = (int(v) for v in bad[0])
        raise SparseFlowError(
            f"matrix is not 2:4: row {r}, columns {M * g}..{M * g + M - 1} hold {int(nnz[r, g])} non-zeros "
            f"({int((nnz > N).sum())} bad groups in all)")


def encode(weights, weight_bits: int) -> NMMatrix:
    """Compress a 2:4-sparse integer matrix of signed ``weight_bits`` weights."""
    w = as_int_array(weights, "weights", weight_bits, ndim=(2,))
    check_24(w)
    rows, cols = w.shape
    g = w.reshape(rows, cols // M, M)
    nz = g != 0
    # Rank positions: non-zeros first, then zeros, each in ascending position; take two, re-sort.
    key = np.where(nz, 0, M) + np.arange(M)
    first_two = np.sort(np.argsort(key, axis=2, kind="stable")[:, :, :N], axis=2)
    vals = np.take_along_axis(g, first_two, axis=2)
    return NMMatrix((rows, cols), vals.reshape(rows, cols // N), first_two.reshape(rows, cols // N))


def decode(m: NMMatrix) -> np.ndarray:
    rows, cols = m.shape
    pos = np.asarray(m.positions, dtype=np.int64).reshape(rows, cols // M, N)
    vals = np.asarray(m.values, dtype=np.int64).reshape(rows, cols // M, N)
    if pos.min(initial=0) < 0 or pos.max(initial=0) >= M:
        raise SparseFlowError("2:4 positions must be in 0..3")
    if np.any(pos[:, :, 0] >= pos[:, :, 1]):
        r, g = (int(v) for v in np.argwhere(pos[:, :, 0] >= pos[:, :, 1])[0])
        raise SparseFlowError(f"2:4 metadata of row {r}, group {g} is invalid: positions must be distinct and ascending")
    out = np.zeros((rows, cols // M, M), dtype=np.int64)
    np.put_along_axis(out, pos, vals, axis=2)
    return out.reshape(rows, cols)


def pack_meta_words(m: NMMatrix) -> np.ndarray:
    """2:4 metadata words, one per row-group: ``pos1 << 2 | pos0`` (row-major)."""
    return pack_meta(np.asarray(m.positions).reshape(m.shape[0], m.shape[1] // 2)).reshape(-1)


def _check_shape(m: NMMatrix, cfg: Sparse24Config) -> None:
    rows, cols = m.shape
    if rows > cfg.max_rows or cols > cfg.max_cols:
        raise SparseFlowError(
            f"2:4 matrix is {rows}x{cols}; the engine holds at most {cfg.max_rows}x{cfg.max_cols}")


class NMFormat:
    """2:4 compressed as an image format (:class:`model.hw.formats.Format`); a ``Sparse24Config``.

    Files: ``values.hex`` (one word per row-group, ``v1 << weight_bits | v0``) and ``meta.hex``
    (one 4-bit word per row-group, :func:`pack_meta_words`), row-major."""

    name = "2:4"
    config_type = Sparse24Config

    def owns(self, m) -> bool:
        return isinstance(m, NMMatrix)

    def encode(self, weights, cfg: Sparse24Config, **options) -> NMMatrix:
        return encode(weights, cfg.arith.weight_bits)

    def decode(self, m: NMMatrix) -> np.ndarray:
        return decode(m)

    def check(self, m: NMMatrix, cfg: Sparse24Config) -> None:
        rows, cols = m.shape
        _check_shape(m, cfg)
        if np.shape(m.values) != (rows, cols // 2) or np.shape(m.positions) != (rows, cols // 2):
            raise SparseFlowError(f"2:4 values/positions must have shape {(rows, cols // 2)}")
        again = encode(decode(m), cfg.arith.weight_bits)
        if not (np.array_equal(again.values, m.values) and np.array_equal(again.positions, m.positions)):
            raise SparseFlowError("2:4 matrix is not canonical: a zero value is kept at a position "
                                  "other than the lowest free one")

    def memories(self, m: NMMatrix, cfg: Sparse24Config) -> dict:
        wb = cfg.arith.weight_bits
        v = np.asarray(m.values, dtype=np.int64).reshape(-1, 2)
        mask = (1 << wb) - 1
        packed = (v[:, 0] & mask) | ((v[:, 1] & mask) << wb)
        return {"values.hex": (packed, 2 * wb, False), "meta.hex": (pack_meta_words(m), 4, False)}

    def _widths(self, cfg: Sparse24Config) -> dict[str, int]:
        wb = cfg.arith.weight_bits
        return {"values": 2 * wb, "value": wb, "meta": 4}

    def summary(self, m: NMMatrix, cfg: Sparse24Config) -> dict:
        return {"nnz": int(np.count_nonzero(m.values)), "widths": self._widths(cfg)}

    def load(self, rd, cfg: Sparse24Config, rows: int, cols: int) -> NMMatrix:
        wb = cfg.arith.weight_bits
        if cols % M:
            raise rd.fail(f"a 2:4 image needs a multiple of 4 columns, not {cols}")
        rd.expect("widths", self._widths(cfg))
        rd.expect_files({"values.hex", "meta.hex"})
        groups = rows * (cols // M)
        packed = rd.read("values.hex", 2 * wb, groups)
        meta = rd.read("meta.hex", 4, groups)
        vals = np.stack([to_signed(packed & ((1 << wb) - 1), wb), to_signed(packed >> wb, wb)], axis=1)
        pos = unpack_meta(meta.reshape(rows, cols // M))
        m = NMMatrix((rows, cols), vals.reshape(rows, cols // N), pos.reshape(rows, cols // N))
        wrap(self.check, m, cfg, where="meta.hex")
        rd.expect("nnz", int(np.count_nonzero(m.values)), "the data")
        return m

    def check_compatible(self, m: NMMatrix, have: Sparse24Config, expect: Sparse24Config) -> None:
        _check_shape(m, expect)


NM24 = NMFormat()
