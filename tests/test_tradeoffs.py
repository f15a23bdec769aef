"""benchmarks.tradeoffs' bookkeeping (no compile, no simulation): engine sizes at equal multipliers,
speed-ups over the dense row, rows of an engine that is not built shown as not available."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ is not an installed package
from benchmarks import tradeoffs  # noqa: E402
from model.hw.engines import ENGINES


def test_engine_sizes_give_equal_multipliers():
    for name, e in ENGINES.items():
        assert e.multipliers(tradeoffs.engine_size(name)) == tradeoffs.MULTIPLIERS, name
    assert tradeoffs.engine_size("no-such-engine") is None
    assert tradeoffs.compile_options("eie", 16, None) == {"pes": 16}
    assert tradeoffs.compile_options("dense", 8, None) == {"lanes": 8}


def test_speedups_per_multiplier_and_cell_and_missing_engine():
    synth = {("eie", None): {"logic_cells": "3000", "ffs": "1", "bram": "2", "dsp": "16", "fmax_mhz": "50"},
             ("dense", None): {"logic_cells": "1000", "ffs": "1", "bram": "0", "dsp": "16", "fmax_mhz": "100"},
             ("blk", 2): {"logic_cells": "500", "ffs": "1", "bram": "1", "dsp": "16", "fmax_mhz": "100"},
             ("blk", 4): {"logic_cells": "250", "ffs": "1", "bram": "1", "dsp": "16", "fmax_mhz": "100"}}
    rows = [dict(network="n", row="unstructured", engine="eie", available=1, multipliers=16, cycles=100.0),
            dict(network="n", row="2x2 blocks", engine="nope", available=0, multipliers=16),
            dict(network="n", row="dense", engine="dense", available=1, multipliers=16, cycles=1000.0),
            dict(network="n", row="2x2 blocks", engine="blk", block=2, available=1, multipliers=16, cycles=500.0),
            dict(network="n", row="4x4 blocks", engine="blk", block=4, available=1, multipliers=16, cycles=500.0)]
    tradeoffs.speedups(rows, synth)
    # 10x fewer cycles at half the clock: 5x per multiplier; 3x the cells: 5/3 per cell.
    assert rows[0]["speedup_per_multiplier"] == 5.0
    assert rows[0]["speedup_per_cell"] == pytest.approx(5 / 3, abs=1e-3)
    assert rows[2]["speedup_per_multiplier"] == 1.0 and "speedup_per_cell" not in rows[1]
    # each block size has its own build: same cycles, half the cells -> twice the speed-up per cell
    assert (rows[3]["logic_cells"], rows[4]["logic_cells"]) == (500, 250)
    assert rows[3]["speedup_per_cell"] == 4.0 and rows[4]["speedup_per_cell"] == 8.0
    for r, acc in zip(rows[:3], (0.9, 0.8, 0.95)):
        r.update(size=16, sparsity=0.5, acc_integer=acc, acc_dense_float=0.95)
    md = tradeoffs.markdown(rows[:3], SimpleNamespace(quick=True, images=5, seed=0), 1.0)
    assert "| 2x2 blocks | nope (not available) | 0.500 | 0.800 | n/a |" in md
    assert "| unstructured | eie (16) |" in md and "5.00x | 1.67x |" in md
