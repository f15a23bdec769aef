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

from ..errors import SparseFlowError
from ..reference import as_int_array

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
