"""The end-to-end demo on a small network: every RTL output equals the golden model's."""
import json

import pytest

from model.hw.engines import BSR, NAMES
from model.errors import SparseFlowError
from scripts.demo import DemoOptions, run_demo


def test_small_demo_is_bit_exact_on_every_engine(tmp_path):
    """With weight sharing (the EIE net in codebook mode) and per-layer index widths (the default)."""
    opts = DemoOptions(hidden=(16, 12), pes=4, lanes=2, epochs=4, limit=24, dense_limit=6, sweep=False,
                       out=tmp_path / "demo", share_bits=3)
    result = run_demo(opts, quiet=True)
    assert opts.backend == "native"  # the default on Verilator
    assert result["mismatches"] == 0
    acc = result["accuracy"]
    for net in ("eie", "2:4"):
        assert acc[net]["rtl"] == acc[net]["integer_golden"]
    assert acc["mixed"]["rtl"] == acc["2:4"]["integer_golden"]  # the mixed run computes the 2:4 net
    assert 0 < acc["eie"]["integer_golden_unshared"] <= 1  # accuracy without sharing reported too
    from model.hw.costmodel import choose_index_bits
    for w in result["index_widths"]:  # the cost model's width, reported with its bits per non-zero
        cands = {int(b): c for b, c in w["candidates"].items()}
        assert w["index_bits"] == choose_index_bits(cands)
        assert w["bits_per_nonzero"] == cands[w["index_bits"]]["bits_per_nonzero"]
    # Layers on the EIE array, the 2:4 engine and the dense engine each produced checked outputs.
    engines = {l["engine"] for r in result["runs"].values() for l in r["layers"]}
    assert engines >= set(NAMES) - {BSR.name}  # (the demo's engines; BSR: benchmarks.bsr_throughput)
    assert result["outputs_checked"] == sum(l["shape"][0] * len(l["cycles"])
                                            for r in result["runs"].values() for l in r["layers"])
    assert result["speedup"]["2:4_vs_dense"] > 1.0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["mismatches"] == 0
    for png in ("sparsity.png", "pe_load.png", "cycles.png"):
        assert (tmp_path / "demo" / png).stat().st_size > 1000
    assert "mismatches: 0" in (tmp_path / "demo" / "report.md").read_text()


@pytest.mark.parametrize("change, message", [
    (dict(hidden=(16, 10)), "multiples of 4"),
    (dict(sim="modelsim"), "unknown simulator"),
    (dict(sparsity=1.0), "sparsity must be in [0, 1)"),
    (dict(pes=0), "pes must be >= 1"),
    (dict(sim="icarus", backend="native"), "the native backend runs on verilator, not icarus"),
])
def test_demo_rejects_bad_options(change, message):
    opts = DemoOptions(**change)
    with pytest.raises(SparseFlowError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        opts.check()
