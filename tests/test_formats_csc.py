"""CSC / CSR: round trips and exact agreement with scipy.sparse."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from model.errors import SparseFlowError
from model.hw.formats import csc

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def int_matrices(draw, max_rows=12, max_cols=12):
    """(matrix, weight_bits): any shape incl. empty, 1xN, Nx1; densities 0 (all-zero) .. 1 (dense)."""
    bits = draw(st.integers(2, 16))
    rows, cols = draw(st.integers(0, max_rows)), draw(st.integers(0, max_cols))
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, (rows, cols))
    w[rng.random((rows, cols)) >= density] = 0
    return w, bits


def scipy_canonical(w, kind):
    s = (sp.csc_matrix if kind == "csc" else sp.csr_matrix)(w)
    s.sort_indices()
    s.eliminate_zeros()
    return s


@pytest.mark.parametrize("kind", ["csc", "csr"])
@SETTINGS
@given(wb=int_matrices())
def test_round_trip_and_scipy_agreement(kind, wb):
    w, bits = wb
    m = csc.encode(w, bits, kind)
    assert np.array_equal(csc.decode(m), w)
    s = scipy_canonical(w, kind)
    assert np.array_equal(m.data, s.data)
    assert np.array_equal(m.indices, s.indices)
    assert np.array_equal(m.indptr, s.indptr)
    assert m.nnz == np.count_nonzero(w) and not np.any(m.data == 0)
    assert np.array_equal(m.to_scipy().toarray(), w)
    wd = m.widths(bits)
    assert m.indices.size == 0 or m.indices.max() < 1 << wd["indices"]
    assert m.indptr.max() < 1 << wd["indptr"]


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (0, 5), (5, 0), (1, 1)])
def test_thin_and_empty_shapes(shape):
    w = np.arange(1, shape[0] * shape[1] + 1).reshape(shape) % 5
    for kind in ("csc", "csr"):
        m = csc.encode(w, 8, kind)
        assert np.array_equal(csc.decode(m), w)
        assert len(m.indptr) == m.major + 1


def test_encode_accepts_integral_floats_and_small_dtypes():
    w = np.array([[0, 3], [-4, 0]])
    for arr in (w.astype(np.float32), w.astype(np.int8), w.astype(np.int16)):
        assert np.array_equal(csc.decode(csc.encode(arr, 4)), w)
    assert np.array_equal(csc.decode(csc.encode(np.abs(w).astype(np.uint16), 4)), np.abs(w))


@pytest.mark.parametrize("bad, msg", [
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.array([[1.5, 0.0]]), "must hold integers"),
    (np.array([[0, 8]]), r"out of range for 4-bit"),
    (np.array([[0, -9]]), r"out of range for 4-bit"),
    (np.array([1, 2, 3]), "must be 2-D"),
    (np.zeros((2, 2, 2)), "must be 2-D"),
    (np.array([["a"]]), "must hold integers"),
])
def test_bad_inputs(bad, msg):
    with pytest.raises(SparseFlowError, match=msg):
        csc.encode(bad, 4)


def test_unknown_kind():
    with pytest.raises(SparseFlowError, match="unknown compressed-sparse kind"):
        csc.encode(np.eye(2), 8, "coo")


def test_validate_rejects_non_canonical():
    m = csc.encode(np.array([[1, 0], [2, 3]]), 8)  # csc: data [1,2,3], indices [0,1,1], indptr [0,2,3]
    with pytest.raises(SparseFlowError, match="strictly ascending"):
        csc.decode(csc.CSMatrix(m.shape, "csc", m.data, np.array([1, 0, 1]), m.indptr))
    with pytest.raises(SparseFlowError, match="explicit zero"):
        csc.decode(csc.CSMatrix(m.shape, "csc", np.array([1, 0, 3]), m.indices, m.indptr))
    with pytest.raises(SparseFlowError, match="never decrease"):
        csc.decode(csc.CSMatrix(m.shape, "csc", m.data, m.indices, np.array([0, 3, 2])))
    with pytest.raises(SparseFlowError, match="outside 0..1"):
        csc.decode(csc.CSMatrix(m.shape, "csc", m.data, np.array([0, 2, 1]), m.indptr))
    with pytest.raises(SparseFlowError, match="indptr has 2 pointers"):
        csc.decode(csc.CSMatrix(m.shape, "csc", m.data, m.indices, np.array([0, 3])))
    with pytest.raises(SparseFlowError, match="out of range for 2-bit"):
        csc.validate(m, 2)
