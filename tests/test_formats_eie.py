"""EIE interleaved CSC: round trips, padding, pointers, codebook, scipy agreement, errors."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from model.hw.config import Arith, EIEConfig
from model.errors import SparseFlowError
from model.hw.formats import eie

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def cases(draw, codebook=False):
    n = draw(st.integers(1, 8))
    ib = draw(st.integers(1, 4))
    bits = draw(st.integers(2, 12))
    cb_bits = draw(st.integers(1, 4))
    rows, cols = draw(st.integers(0, 70)), draw(st.integers(0, 9))
    if draw(st.booleans()):
        rows, cols = draw(st.sampled_from([(1, 7), (7, 1), (1, 1), (0, 0)]))
    density = draw(st.sampled_from([0.0, 0.02, 0.1, 0.5, 1.0]))  # low densities -> long gaps
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cfg = EIEConfig(n_pes=n, index_bits=ib, arith=Arith(weight_bits=bits, max_cols=max(cols, 1)),
                    max_rows=max(rows, 1), codebook=codebook, codebook_bits=cb_bits)
    if codebook:
        w = rng.integers(0, 1 << cb_bits, (rows, cols))
        lo, hi = cfg.arith.weight_range
        book = np.concatenate([[0], rng.integers(lo, hi + 1, (1 << cb_bits) - 1)])
    else:
        lo, hi = cfg.arith.weight_range
        w = rng.integers(lo, hi + 1, (rows, cols))
        book = None
    w[rng.random((rows, cols)) >= density] = 0
    return w, cfg, book


def expected_padding(w, n, index_bits):
    """Independent count: per PE and column, sum of floor(gap / 2**index_bits) over its non-zeros."""
    pads = np.zeros(n, dtype=int)
    for k in range(n):
        sub = w[k::n]
        for j in range(w.shape[1]):
            prev = -1
            for lrow in np.flatnonzero(sub[:, j]):
                pads[k] += (lrow - prev - 1) >> index_bits
                prev = lrow
    return pads


@SETTINGS
@given(case=cases())
def test_round_trip_counts_padding_pointers(case):
    w, cfg, _ = case
    n = cfg.n_pes
    m = eie.encode(w, cfg)
    assert np.array_equal(eie.decode(m), w)
    assert np.array_equal(eie.dense_weights(m), w)
    assert m.ptr.shape == (n, w.shape[1] + 1)
    assert np.all(m.ptr[:, 0] == 0) and np.all(np.diff(m.ptr, axis=1) >= 0)
    pads = expected_padding(w, n, cfg.index_bits)
    nnz = np.array([np.count_nonzero(w[k::n]) for k in range(n)])
    assert np.array_equal(m.entries_per_pe, nnz + pads)
    assert m.padding_entries == pads.sum()
    for k in range(n):
        assert len(m.values[k]) == len(m.zs[k]) == m.ptr[k, -1]
        assert np.all((m.zs[k] >= 0) & (m.zs[k] <= cfg.max_gap))
        # padding entries always carry the longest skip, and never end a column
        assert np.all(m.zs[k][m.values[k] == 0] == cfg.max_gap)
        last = m.ptr[k, 1:][np.diff(m.ptr[k]) > 0] - 1
        assert np.all(m.values[k][last] != 0)


@SETTINGS
@given(case=cases())
def test_agrees_with_scipy_csc_of_each_pe_slice(case):
    w, cfg, _ = case
    n = cfg.n_pes
    m = eie.encode(w, cfg)
    for k in range(n):
        s = sp.csc_matrix(w[k::n])
        s.sort_indices()
        s.eliminate_zeros()
        v, z, p = m.values[k], m.zs[k], m.ptr[k]
        real = v != 0
        assert np.array_equal(v[real], s.data)
        # local rows from the relative indices, restarting at -1 in every column
        lrow = np.empty(len(v), dtype=np.int64)
        for j in range(w.shape[1]):
            lrow[p[j]:p[j + 1]] = np.cumsum(z[p[j]:p[j + 1]] + 1) - 1
        assert np.array_equal(lrow[real], s.indices)
        assert np.array_equal(np.cumsum(np.r_[0, np.bincount(np.repeat(np.arange(w.shape[1]), np.diff(p))[real],
                                                             minlength=w.shape[1])]), s.indptr)


@SETTINGS
@given(case=cases(codebook=True))
def test_codebook_mode(case):
    w, cfg, book = case
    m = eie.encode(w, cfg, book)
    assert np.array_equal(eie.decode(m), w)
    assert np.array_equal(eie.dense_weights(m), book[w])
    for k in range(cfg.n_pes):
        vals, zs = eie.EIEMatrix.unpack(m.words(cfg, k), cfg)
        assert np.array_equal(vals, m.values[k]) and np.array_equal(zs, m.zs[k])


@SETTINGS
@given(case=cases())
def test_words_unpack_round_trip(case):
    w, cfg, _ = case
    m = eie.encode(w, cfg)
    for k in range(cfg.n_pes):
        words = m.words(cfg, k)
        assert np.all((words >= 0) & (words < 1 << cfg.entry_bits))
        vals, zs = eie.EIEMatrix.unpack(words, cfg)
        assert np.array_equal(vals, m.values[k]) and np.array_equal(zs, m.zs[k])


def test_padding_example():
    # one column, one PE, index_bits 2 (max_gap 3): non-zero at row 9 -> gap 9 = 2 pads of 4 rows + z 1
    w = np.zeros((10, 1), dtype=int)
    w[9, 0] = 5
    cfg = EIEConfig(n_pes=1, index_bits=2, max_rows=16)
    m = eie.encode(w, cfg)
    assert m.values[0].tolist() == [0, 0, 5]
    assert m.zs[0].tolist() == [3, 3, 1]
    assert m.padding_entries == 2


def test_interleaving_example():
    w = np.array([[1, 0], [0, 2], [3, 0], [0, 0], [0, 4]])
    m = eie.encode(w, EIEConfig(n_pes=2, max_rows=8))
    # PE 0: rows 0, 2, 4 (local 0, 1, 2); PE 1: rows 1, 3
    assert m.values[0].tolist() == [1, 3, 4] and m.zs[0].tolist() == [0, 0, 2]
    assert m.ptr[0].tolist() == [0, 2, 3]
    assert m.values[1].tolist() == [2] and m.zs[1].tolist() == [0]
    assert m.ptr[1].tolist() == [0, 0, 1]


@pytest.mark.parametrize("bad, msg", [
    (np.array([[np.nan, 1.0]]), "NaN"),
    (np.array([[0.5, 1.0]]), "must hold integers"),
    (np.array([[128, 0]]), r"out of range for 8-bit"),
    (np.array([[-129, 0]]), r"out of range for 8-bit"),
    (np.ones(3), "must be 2-D"),
    (np.ones((1, 1, 1)), "must be 2-D"),
])
def test_bad_weights(bad, msg):
    with pytest.raises(SparseFlowError, match=msg):
        eie.encode(bad, EIEConfig())


def test_codebook_errors():
    cfg = EIEConfig(codebook=True, codebook_bits=2)
    with pytest.raises(SparseFlowError, match="needs a codebook"):
        eie.encode(np.zeros((2, 2)), cfg)
    with pytest.raises(SparseFlowError, match="4 entries with entry 0 = 0"):
        eie.encode(np.zeros((2, 2)), cfg, np.array([1, 2, 3, 4]))
    with pytest.raises(SparseFlowError, match="indices must be in 0..3"):
        eie.encode(np.array([[4]]), cfg, np.array([0, 2, 3, 4]))
    with pytest.raises(SparseFlowError, match="configuration has codebook=False"):
        eie.encode(np.zeros((2, 2)), EIEConfig(), np.array([0, 1]))


def test_check_fits():
    cfg = EIEConfig(n_pes=2, max_rows=4, max_entries=2, arith=Arith(max_cols=3))
    eie.check_fits(eie.encode(np.eye(4, 3, dtype=int), cfg), cfg)
    with pytest.raises(SparseFlowError, match="PE 0 needs 3 entries"):
        eie.check_fits(eie.encode(np.array([[1, 1, 1], [0, 0, 0]]), cfg), cfg)
    with pytest.raises(SparseFlowError, match="5 rows; the array holds at most 4"):
        eie.check_fits(eie.encode(np.zeros((5, 3)), cfg), cfg)
    with pytest.raises(SparseFlowError, match="4 columns; the array holds at most 3"):
        eie.check_fits(eie.encode(np.zeros((4, 4)), cfg), cfg)
    with pytest.raises(SparseFlowError, match="encoded for 2 PEs, the array has 4"):
        eie.check_fits(eie.encode(np.zeros((4, 3)), cfg), cfg.with_(n_pes=4))


def test_decode_rejects_malformed_objects():
    m = eie.encode(np.array([[1, 0], [0, 2], [3, 0]]), EIEConfig(n_pes=2, max_rows=4))
    with pytest.raises(SparseFlowError, match="needs 2 x 3 pointers"):
        eie.decode(eie.EIEMatrix(m.shape, 2, m.values, m.zs, m.ptr[:, :2]))
    with pytest.raises(SparseFlowError, match="PE 0: pointers must run from 0"):
        eie.decode(eie.EIEMatrix(m.shape, 2, m.values, m.zs, np.array([[0, 3, 2], [0, 0, 1]])))
    with pytest.raises(SparseFlowError, match="PE 0: an entry addresses row 4 beyond 3 rows"):
        eie.decode(eie.EIEMatrix(m.shape, 2, [np.array([1, 3]), m.values[1]], [np.array([0, 1]), m.zs[1]], m.ptr))
