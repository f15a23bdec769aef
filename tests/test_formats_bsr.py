"""BSR: round trips, agreement with scipy.sparse.bsr_matrix, padding of ragged shapes."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from model.errors import SparseFlowError
from model.hw.formats import bsr

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def blocked(draw, multiple):
    br, bc = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    gr, gc = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    rows, cols = gr * br, gc * bc
    if not multiple:
        rows, cols = draw(st.integers(0, 14)), draw(st.integers(0, 14))
    bits = draw(st.integers(2, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, (rows, cols))
    w[rng.random((rows, cols)) >= draw(st.sampled_from([0.0, 0.05, 0.2, 1.0]))] = 0
    return w, bits, (br, bc)


@SETTINGS
@given(case=blocked(multiple=True))
def test_agrees_with_scipy(case):
    w, bits, block = case
    m = bsr.encode(w, bits, block)
    assert np.array_equal(bsr.decode(m), w)
    s = sp.bsr_matrix(w, blocksize=block)
    s.sort_indices()
    s.eliminate_zeros()
    assert np.array_equal(m.indptr, s.indptr)
    assert np.array_equal(m.indices, s.indices)
    assert np.array_equal(m.data, s.data.reshape(-1, *block))
    assert np.array_equal(m.to_scipy().toarray(), w)


@SETTINGS
@given(case=blocked(multiple=False))
def test_round_trip_any_shape(case):
    w, bits, block = case
    m = bsr.encode(w, bits, block)
    assert np.array_equal(bsr.decode(m), w)
    assert m.nnz == np.count_nonzero(w)
    # every kept block holds a non-zero; every non-zero lives in a kept block
    assert all(b.any() for b in m.data)
    assert m.indptr[-1] == m.nblocks == len(m.data)


def test_block_layout_example():
    w = np.zeros((4, 6), dtype=int)
    w[0, 5] = 7  # block (0, 2)
    w[3, 0] = -1  # block (1, 0)
    m = bsr.encode(w, 8, (2, 3))
    assert m.grid == (2, 2)
    assert m.indptr.tolist() == [0, 1, 2] and m.indices.tolist() == [1, 0]
    assert m.data[0].tolist() == [[0, 0, 7], [0, 0, 0]]
    assert m.data[1].tolist() == [[0, 0, 0], [-1, 0, 0]]


@pytest.mark.parametrize("text, block", [("4x4", (4, 4)), ("2X8", (2, 8)), ("1x1", (1, 1))])
def test_parse_block(text, block):
    assert bsr.parse_block(text) == block


@pytest.mark.parametrize("text", ["4", "4x", "ax4", "0x4", "4x4x4", "4x999"])
def test_parse_block_rejects(text):
    with pytest.raises(SparseFlowError, match="block shape"):
        bsr.parse_block(text)


def test_bad_inputs():
    with pytest.raises(SparseFlowError, match="NaN"):
        bsr.encode(np.array([[np.nan]]), 8)
    with pytest.raises(SparseFlowError, match="out of range"):
        bsr.encode(np.array([[200]]), 8)
    with pytest.raises(SparseFlowError, match="2-D"):
        bsr.encode(np.ones(4), 8)


def test_validate_rejects_padding_values_and_zero_blocks():
    m = bsr.encode(np.array([[1, 2, 3]]), 8, (2, 2))  # 1x3 padded to 2x4
    data = m.data.copy()
    data[0, 1, 0] = 5  # row 1 is padding
    with pytest.raises(SparseFlowError, match="outside the 1x3 matrix"):
        bsr.decode(bsr.BSRMatrix(m.shape, m.block, data, m.indices, m.indptr))
    data = m.data.copy()
    data[1] = 0
    with pytest.raises(SparseFlowError, match="all-zero block"):
        bsr.decode(bsr.BSRMatrix(m.shape, m.block, data, m.indices, m.indptr))
    with pytest.raises(SparseFlowError, match="strictly ascending"):
        bsr.decode(bsr.BSRMatrix(m.shape, m.block, m.data[::-1], m.indices[::-1], m.indptr))
