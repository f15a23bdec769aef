"""benchmarks.eie_efficiency's default variant (cycle model only, a scaled-down layer): each PE
count's rows use the index width the cost model chooses for that layer (as ``spmv --index-bits
auto``), the old front end the same width, and the summary keeps them apart from the fixed
widths even when the choice equals one of them."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ is not an installed package
from benchmarks import eie_efficiency as bench  # noqa: E402
from model.hw.config import Arith, EIEConfig
from model.hw.costmodel import choose_index_bits, index_width_costs
from model.hw.cyclemodel import ideal_cycles, predict_cycles
from model.hw.formats.eie import encode


def test_default_variant_uses_the_cost_models_width_per_layer_and_pe_count():
    pes, cols = (2, 8), 16
    chosen, rows = {}, []
    for name in ("Alex-8", "NT-We"):  # 1000 x 256 and 600 x 256: the cost model takes 4 and 5 bits
        part = bench._model_layer(name, pes, (8,), 2, cols, bench.VARIANTS)
        rows += part
        w, x = bench.make_layer(name, vectors=2, col_scale=cols)
        for n in pes:
            cfg = EIEConfig(n_pes=n, fifo_depth=8, max_rows=w.shape[0], max_entries=1,
                            arith=Arith(max_cols=w.shape[1]), frontend_width=bench.NEW)
            best = choose_index_bits(index_width_costs(w, x, cfg))
            auto = [r for r in part if r["n_pes"] == n and r["index_rule"] == "cost model"]
            assert sorted(r["frontend_width"] for r in auto) == [bench.OLD, bench.NEW]
            assert all(r["index_bits"] == best for r in auto), (name, n, best, [r["index_bits"] for r in auto])
            chosen.setdefault(name, {})[str(n)] = best
            # the default row's efficiency and memory are the cycle model's and encoder's at that width
            c = cfg.with_(index_bits=best)
            m = encode(w, c)
            cyc = [predict_cycles(m, x[:, b], c) for b in range(2)]
            ideal = [ideal_cycles(w, x[:, b], n) for b in range(2)]
            new = next(r for r in auto if r["frontend_width"] == bench.NEW)
            assert new["efficiency"] == pytest.approx(sum(ideal) / sum(cyc))
            entries, nnz = int(m.entries_per_pe.sum()), np.count_nonzero(w)
            assert new["entry_bits_per_nz"] == pytest.approx(entries * (8 + best) / nnz)
            assert new["entry_bits_per_nz_cb4"] == pytest.approx(entries * (4 + best) / nnz)
    assert sorted({b for v in chosen.values() for b in v.values()}) == [4, 5]
    s = bench.summarize(rows, pes)
    assert s["default_index_bits"] == chosen
    eff = s["efficiency_at_depth_8"]
    for n in pes:  # the means keep the default apart from the fixed 4-bit rows (Alex-8 is 4 bits in both)
        for key, match in ((f"interleaved K={bench.NEW} index=auto", {"index_rule": "cost model"}),
                           (f"interleaved K={bench.NEW} index=4", {"index_rule": "fixed", "index_bits": 4})):
            sel = [r["efficiency"] for r in rows if r["n_pes"] == n and r["frontend_width"] == bench.NEW
                   and all(r[k] == v for k, v in match.items())]
            assert len(sel) == 2 and eff[key][str(n)] == round(float(np.mean(sel)), 3)
