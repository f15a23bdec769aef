"""2:4 compressed: every position pair, groups with 0/1/2 non-zeros, metadata, errors."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.errors import SparseFlowError
from model.hw.formats import nm

SETTINGS = settings(max_examples=60, deadline=None)
PAIRS = list(itertools.combinations(range(4), 2))


@st.composite
def sparse24(draw):
    bits = draw(st.integers(2, 16))
    rows, groups = draw(st.integers(0, 8)), draw(st.integers(0, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = np.zeros((rows, groups, 4), dtype=np.int64)
    for r in range(rows):
        for g in range(groups):
            keep = rng.choice(4, size=rng.integers(0, 3), replace=False)  # 0, 1 or 2 non-zeros
            w[r, g, keep] = rng.choice(np.r_[lo:0, 1:hi + 1], size=len(keep))
    return w.reshape(rows, groups * 4), bits


@SETTINGS
@given(case=sparse24())
def test_round_trip(case):
    w, bits = case
    m = nm.encode(w, bits)
    assert m.values.shape == m.positions.shape == (w.shape[0], w.shape[1] // 2)
    assert np.array_equal(nm.decode(m), w)
    pos = m.positions.reshape(w.shape[0], w.shape[1] // 4, 2)
    assert np.all(pos[..., 0] < pos[..., 1])
    assert np.array_equal(nm.unpack_meta(m.meta()), m.positions)
    again = nm.encode(nm.decode(m), bits)  # canonical
    assert np.array_equal(again.values, m.values) and np.array_equal(again.positions, m.positions)


@pytest.mark.parametrize("pair", PAIRS)
def test_every_position_pair(pair):
    w = np.zeros((1, 4), dtype=int)
    w[0, list(pair)] = [3, -5]
    m = nm.encode(w, 8)
    assert m.positions.tolist() == [list(pair)]
    assert m.values.tolist() == [[3, -5]]
    assert m.meta().tolist() == [[pair[0] | pair[1] << 2]]
    assert np.array_equal(nm.decode(m), w)


@pytest.mark.parametrize("pos", range(4))
def test_one_nonzero_group_fills_lowest_free_position(pos):
    w = np.zeros((1, 4), dtype=int)
    w[0, pos] = 7
    m = nm.encode(w, 8)
    other = 0 if pos != 0 else 1
    assert m.positions.tolist() == [sorted([pos, other])]
    assert sorted(m.values[0].tolist()) == [0, 7]
    assert np.array_equal(nm.decode(m), w)


def test_empty_group():
    m = nm.encode(np.zeros((2, 8)), 8)
    assert m.positions.tolist() == [[0, 1, 0, 1]] * 2 and not m.values.any()


def test_not_24_names_first_group():
    w = np.zeros((3, 8), dtype=int)
    w[1, 4:7] = 1  # row 1, group 1: three non-zeros
    w[2, 0:4] = 1
    with pytest.raises(SparseFlowError, match=r"row 1, columns 4..7 hold 3 non-zeros \(2 bad groups in all\)"):
        nm.encode(w, 8)


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((2, 6)), "multiple of 4 columns"),
    (np.array([[np.nan, 0, 0, 0]]), "NaN"),
    (np.array([[0.5, 0, 0, 0]]), "must hold integers"),
    (np.array([[128, 0, 0, 0]]), "out of range for 8-bit"),
    (np.zeros(4), "must be 2-D"),
])
def test_bad_inputs(bad, msg):
    with pytest.raises(SparseFlowError, match=msg):
        nm.encode(bad, 8)


def test_decode_rejects_bad_metadata():
    m = nm.encode(np.array([[1, 2, 0, 0]]), 8)
    with pytest.raises(SparseFlowError, match="row 0, group 0 is invalid"):
        nm.decode(nm.NMMatrix(m.shape, m.values, np.array([[2, 2]])))
    with pytest.raises(SparseFlowError, match="0..3"):
        nm.decode(nm.NMMatrix(m.shape, m.values, np.array([[0, 4]])))
