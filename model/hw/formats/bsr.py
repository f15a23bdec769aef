"""BSR: block compressed sparse rows, as ``scipy.sparse.bsr_matrix`` stores them.

The matrix is cut into ``br x bc`` blocks. A block holding any non-zero is kept whole (its
zeros included); the kept blocks are stored block-row after block-row, block columns
ascending: ``data`` ``(nblocks, br, bc)``, ``indices`` (block column of each block) and
``indptr`` (``block_rows + 1`` pointers). For a shape that is a multiple of the block shape the
arrays equal scipy's ``bsr_matrix(W, blocksize=(br, bc))`` after ``sort_indices()`` and
``eliminate_zeros()``. Other shapes are padded with zeros up to whole blocks (scipy refuses
them); ``shape`` keeps the true size and :func:`decode` crops the padding away.

Widths (memory image): values are signed ``weight_bits`` words, one per line, each block
row-major; indices ``clog2(block_cols)`` bits; pointers ``clog2(nblocks + 1)`` bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.hw.config import Arith, clog2
from model.errors import SparseFlowError
from model.hw.reference import as_int_array
from model.hw.formats import COMPRESSED_FILES, compressed_memories, wrap


@dataclass
class BSRMatrix:
    """One matrix in BSR with blocks of ``block = (br, bc)``; int64 arrays."""

    shape: tuple[int, int]
    block: tuple[int, int]
    data: np.ndarray  # (nblocks, br, bc)
    indices: np.ndarray
    indptr: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        """Block rows and block columns (padding included)."""
        (rows, cols), (br, bc) = self.shape, self.block
        return -(-rows // br), -(-cols // bc)

    @property
    def nblocks(self) -> int:
        return int(len(self.indices))

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.data))

    def widths(self, weight_bits: int) -> dict[str, int]:
        return {"data": weight_bits, "indices": clog2(self.grid[1]), "indptr": clog2(self.nblocks + 1)}

    def to_scipy(self):
        import scipy.sparse as sp
        (br, bc), (gr, gc) = self.block, self.grid
        return sp.bsr_matrix((self.data, self.indices, self.indptr), shape=(gr * br, gc * bc))


def parse_block(text: str) -> tuple[int, int]:
    """``"4x4"`` -> ``(4, 4)``."""
    parts = str(text).lower().split("x")
    try:
        br, bc = (int(p) for p in parts)
    except ValueError:
        raise SparseFlowError(f"block shape must look like 4x4, not {text!r}") from None
    check_block((br, bc))
    return br, bc


def check_block(block) -> None:
    if (len(block) != 2 or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in block)
            or min(block) < 1 or max(block) > 256):
        raise SparseFlowError(f"block shape must be two integers in 1..256, not {tuple(block)}")


def random_blocks(rng, rows: int, cols: int, block: int, density: float, weight_bits: int,
                  fill: float = 1.0) -> np.ndarray:
    """A random ``rows x cols`` integer matrix of ``block x block`` blocks, each kept with
    probability ``density`` (the block density), else zero; a kept block's weights are non-zero
    with probability ``fill`` (BSR stores the block whole either way)."""
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    keep = rng.random((-(-rows // block), -(-cols // block))) < density
    mask = np.kron(keep, np.ones((block, block), dtype=bool))[:rows, :cols]
    vals = rng.integers(lo, hi, (rows, cols))
    vals[vals >= 0] += 1  # lo..hi without 0
    return np.where(mask & (rng.random((rows, cols)) < fill), vals, 0).astype(np.int64)


def encode(weights, weight_bits: int, block=(4, 4)) -> BSRMatrix:
    """Compress a dense integer matrix of signed ``weight_bits`` weights to BSR."""
    check_block(block)
    br, bc = int(block[0]), int(block[1])
    w = as_int_array(weights, "weights", weight_bits, ndim=(2,))
    rows, cols = w.shape
    gr, gc = -(-rows // br), -(-cols // bc)
    padded = np.zeros((gr * br, gc * bc), dtype=np.int64)
    padded[:rows, :cols] = w
    blocks = padded.reshape(gr, br, gc, bc).swapaxes(1, 2)  # (gr, gc, br, bc)
    keep = blocks.any(axis=(2, 3))
    brow, bcol = np.nonzero(keep)  # row-major: block rows in order, block columns ascending
    indptr = np.zeros(gr + 1, dtype=np.int64)
    np.cumsum(np.bincount(brow, minlength=gr), out=indptr[1:])
    data = blocks[brow, bcol].reshape(-1, br, bc)
    return BSRMatrix((rows, cols), (br, bc), data, bcol.astype(np.int64), indptr)


def validate(m: BSRMatrix) -> None:
    """Raise unless ``m`` is a canonical BSR matrix (what :func:`encode` produces)."""
    check_block(m.block)
    rows, cols = m.shape
    (br, bc), (gr, gc) = m.block, m.grid
    ptr = np.asarray(m.indptr, dtype=np.int64)
    idx = np.asarray(m.indices, dtype=np.int64)
    data = np.asarray(m.data, dtype=np.int64)
    if ptr.shape != (gr + 1,):
        raise SparseFlowError(f"bsr: indptr has {len(ptr)} pointers, expected {gr + 1}")
    if ptr[0] != 0 or np.any(np.diff(ptr) < 0) or ptr[-1] != len(idx):
        raise SparseFlowError(f"bsr: indptr must run from 0 to the block count {len(idx)} without decreasing")
    if data.shape != (len(idx), br, bc):
        raise SparseFlowError(f"bsr: data has shape {data.shape}, expected {(len(idx), br, bc)}")
    if idx.size and (idx.min() < 0 or idx.max() >= gc):
        raise SparseFlowError(f"bsr: a block column is outside 0..{gc - 1}")
    brow = np.repeat(np.arange(gr), np.diff(ptr))
    key = brow * max(gc, 1) + idx
    if np.any(np.diff(key) <= 0):
        raise SparseFlowError("bsr: block columns inside a block row must be strictly ascending")
    if len(idx) and not data.reshape(len(idx), -1).any(axis=1).all():
        raise SparseFlowError("bsr: an all-zero block is stored")
    # Padding beyond the true shape must be zero, or decode would silently drop weights.
    r0 = brow[:, None] * br + np.arange(br)[None, :]
    c0 = idx[:, None] * bc + np.arange(bc)[None, :]
    outside = (r0[:, :, None] >= rows) | (c0[:, None, :] >= cols)
    if np.any(data[outside] != 0):
        raise SparseFlowError(f"bsr: a block holds a non-zero outside the {rows}x{cols} matrix")


def decode(m: BSRMatrix) -> np.ndarray:
    """Back to the dense int64 matrix (validates ``m`` first)."""
    validate(m)
    rows, cols = m.shape
    (br, bc), (gr, gc) = m.block, m.grid
    blocks = np.zeros((gr, gc, br, bc), dtype=np.int64)
    brow = np.repeat(np.arange(gr), np.diff(np.asarray(m.indptr, dtype=np.int64)))
    blocks[brow, np.asarray(m.indices, dtype=np.int64)] = m.data
    return blocks.swapaxes(1, 2).reshape(gr * br, gc * bc)[:rows, :cols].copy()


class BSRFormat:
    """BSR as an image format (:class:`model.hw.formats.Format`); an ``Arith`` config."""

    name = "bsr"
    config_type = Arith

    def owns(self, m) -> bool:
        return isinstance(m, BSRMatrix)

    def encode(self, weights, cfg: Arith, block=(4, 4), **options) -> BSRMatrix:
        return encode(weights, cfg.weight_bits, block)

    def decode(self, m: BSRMatrix) -> np.ndarray:
        return decode(m)

    def check(self, m: BSRMatrix, cfg: Arith) -> None:
        validate(m)
        if len(m.data):
            as_int_array(np.asarray(m.data).reshape(-1), "bsr values", cfg.weight_bits, ndim=(1,))

    def memories(self, m: BSRMatrix, cfg: Arith) -> dict:
        return compressed_memories(m, cfg.weight_bits)

    def summary(self, m: BSRMatrix, cfg: Arith) -> dict:
        return {"nnz": m.nnz, "block": list(m.block), "blocks": m.nblocks, "widths": m.widths(cfg.weight_bits)}

    def load(self, rd, cfg: Arith, rows: int, cols: int) -> BSRMatrix:
        wb = cfg.weight_bits
        br, bc = rd.int_list("block", 2)
        wrap(check_block, (br, bc))
        nb = rd.field("blocks", int, "an integer")
        if nb < 0:
            raise rd.fail("blocks must not be negative")
        gr, gc = -(-rows // br), -(-cols // bc)
        wd = {"data": wb, "indices": clog2(gc), "indptr": clog2(nb + 1)}
        rd.expect("widths", wd)
        rd.expect_files(COMPRESSED_FILES)
        indptr = rd.read("indptr.hex", wd["indptr"], gr + 1)
        data = rd.read("data.hex", wb, nb * br * bc, signed=True).reshape(nb, br, bc)
        m = BSRMatrix((rows, cols), (br, bc), data, rd.read("indices.hex", wd["indices"], nb), indptr)
        wrap(validate, m)
        rd.expect("nnz", m.nnz, "the data")
        return m

    def check_compatible(self, m: BSRMatrix, have: Arith, expect: Arith) -> None:
        pass  # a weight width is all it needs (checked by the caller)


BSR = BSRFormat()
