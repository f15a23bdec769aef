"""The resource estimator (``model.hw.estimator``) against the synthesis sweep it was fitted on
(``docs/results/synth_sweep.csv``): the memory-mapping rule, the fit file, the held-out error."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ is not an installed package
from benchmarks.synth_sweep import CSV, fit, load  # noqa: E402
from model.hw import estimator  # noqa: E402
from model.hw.estimator import ecp5_lutram, estimate, memory_features  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    return [r for r in load(CSV) if r["fits"] == "1"]


def test_memory_rule_reproduces_the_measured_ecp5_brams(rows):
    """Every block RAM of an ECP5 lane-engine build is a lane weight memory the rule puts there
    (the x buffer, biases and timestamps go to LUT RAM): predicted == nextpnr's count, at every
    size, across the dense engine's BRAM -> LUT RAM switch (4 -> 6 lanes)."""
    checked = 0
    for r in rows:
        if r["target"] == "ecp5-85f" and r["engine"] in ("dense", "2:4"):
            f = memory_features(r["engine"], int(r["size"]), r["target"], int(r["rows"]), int(r["cols"]))
            assert f["lane_bram"] == int(r["bram"]), r
            checked += 1
    assert checked >= 8
    # the switch itself, as Yosys's costs put it: 128 x 16 block RAM, 96 x 16 LUT RAM
    assert not ecp5_lutram(128, 16) and ecp5_lutram(96, 16)


def test_fit_file_is_the_fit_of_the_sweep(rows):
    """``resource_fit.json`` is what ``benchmarks.synth_sweep --plot-only`` makes of the CSV."""
    assert json.loads(json.dumps(fit(rows))) == json.loads(estimator.FIT_FILE.read_text())


def test_ecp5_dense_logic_within_goal_on_held_out_points(rows):
    """The issue's goal: logic cells within 15 % on held-out (leave-one-out) points; the ECP5
    dense engine missed it (34.7 %) while a line averaged over the memory switch."""
    f = fit(rows)
    h = f["ecp5-85f/dense"]["logic_cells"]["holdout"]
    assert h["points"] >= 5 and h["max_rel_err"] <= 0.15, h
    measured = {int(r["size"]): int(r["logic_cells"]) for r in rows
                if r["target"] == "ecp5-85f" and r["engine"] == "dense"}
    est = estimate("dense", 6, "ecp5-85f")
    assert est["bram"] == 0 and abs(est["logic_cells"] - measured[6]) / measured[6] <= 0.15, est


@pytest.mark.slow
@pytest.mark.parametrize("depth,width", [(96, 16), (112, 16), (256, 4), (400, 4), (48, 32), (64, 32)])
def test_rule_matches_yosys(tmp_path, depth, width):
    """``ecp5_lutram`` against Yosys's own choice for a memory with the lane memories' ports
    (one write port, one synchronous always-enabled read-first read port), near the boundary."""
    from verif.tools import run_yosys
    a = max((depth - 1).bit_length(), 1)
    init = "\n".join(f"  m[{k}] = {width}'d{(k * 37) % (1 << width)};" for k in range(depth))
    (tmp_path / "m.v").write_text(
        f"module top(input clk, input we, input [{a - 1}:0] wa, input [{width - 1}:0] wd, input [{a - 1}:0] ra,\n"
        f"           output reg [{width - 1}:0] rd);\nreg [{width - 1}:0] m [0:{depth - 1}];\n"
        f"initial begin\n{init}\nend\nalways @(posedge clk) begin if (we) m[wa] <= wd; rd <= m[ra]; end\nendmodule\n")
    rc, log = run_yosys("read_verilog m.v\nsynth_ecp5 -top top\n", tmp_path)
    assert rc == 0, log[-2000:]
    lut = "via $__TRELLIS_DPR16X4_" in log
    assert lut or "via $__DP16KD_" in log or "via $__PDPW16KD_" in log, log[-2000:]
    assert ecp5_lutram(depth, width) == lut
