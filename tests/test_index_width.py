"""The per-layer relative-index width (``model.hw.costmodel``): bits per non-zero, the costs per
width and the choice, on cases small enough to count by hand."""
import numpy as np
import pytest

from model.hw.config import Arith, EIEConfig
from model.hw.costmodel import (EIE_PAPER_BITS_PER_NONZERO, INDEX_WIDTHS, choose_index_bits, eie_bits_per_nonzero,
                                index_width_costs)
from model.hw.cyclemodel import predict_cycles
from model.hw.formats.eie import encode

ONE_PE = EIEConfig(n_pes=1, max_rows=64, max_entries=64, arith=Arith(max_cols=4))


def test_bits_per_nonzero_counts_padding():
    w = np.zeros((40, 2), dtype=int)
    w[[0, 20], 0] = 5  # gap of 19 zero rows: one padding entry (z = 15) at 4 bits, none at 5
    w[39, 1] = -3      # gap of 39 from row -1: two padding entries at 4 bits, one at 5
    m4 = encode(w, ONE_PE)
    assert m4.padding_entries == 3 and eie_bits_per_nonzero(m4, ONE_PE) == pytest.approx(6 * 12 / 3)
    c5 = ONE_PE.with_(index_bits=5)
    assert eie_bits_per_nonzero(encode(w, c5), c5) == pytest.approx(4 * 13 / 3)
    cb = ONE_PE.with_(codebook=True, codebook_bits=4)  # EIE's entry: 4-bit index + 4-bit relative index
    assert eie_bits_per_nonzero(encode(np.eye(4, dtype=int), cb.with_(codebook=False)), cb) == EIE_PAPER_BITS_PER_NONZERO
    with_ptr = eie_bits_per_nonzero(m4, ONE_PE, pointers=True)
    assert with_ptr == pytest.approx((6 * 12 + 3 * ONE_PE.ptr_bits) / 3)


def test_index_width_costs_match_the_encoder_and_cycle_model():
    rng = np.random.default_rng(11)
    print("seed 11")
    w = rng.integers(-128, 128, (96, 20)) * (rng.random((96, 20)) < 0.06)
    x = rng.integers(-99, 99, (20, 3))
    cfg = EIEConfig(n_pes=2, max_rows=96, max_entries=1, arith=Arith(max_cols=32))
    costs = index_width_costs(w, x, cfg)
    assert sorted(costs) == list(INDEX_WIDTHS)
    for b, c in costs.items():
        cb = cfg.with_(index_bits=b)
        m = encode(w, cb)
        assert c["entries"] == int(m.entries_per_pe.sum()) and c["padding_entries"] == m.padding_entries
        assert c["cycles"] == pytest.approx(np.mean([predict_cycles(m, x[:, j], cb) for j in range(3)]))
        assert c["bits_per_nonzero"] == pytest.approx(eie_bits_per_nonzero(m, cb), abs=1e-3)
    # wider never pads more; at 6% density 2-bit indices pad, 8-bit ones do not
    pads = [costs[b]["padding_entries"] for b in INDEX_WIDTHS]
    assert pads == sorted(pads, reverse=True) and pads[0] > 0 == pads[-1]
    best = choose_index_bits(costs)
    assert all(costs[best]["memory_bits"] * costs[best]["cycles"] <= c["memory_bits"] * c["cycles"]
               for c in costs.values())


def test_choice_ties_go_to_the_narrower_width():
    costs = {4: {"memory_bits": 100, "cycles": 10.0}, 3: {"memory_bits": 50, "cycles": 20.0},
             6: {"memory_bits": 200, "cycles": 5.0}}
    assert choose_index_bits(costs) == 3
    costs[3]["cycles"] = 21.0
    assert choose_index_bits(costs) == 4
