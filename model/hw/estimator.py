"""Resource estimator: logic cells, flip-flops, block RAMs, DSPs and Fmax of an engine build,
predicted without running a tool.

Fitted per engine and target on the synthesis sweep (``benchmarks/synth_sweep.py``: the board
self-test of a 32x32 matrix at density 0.25, each engine at several PE/lane counts ``n``, the
EIE queues at the target's default depth) and stored in ``resource_fit.json`` beside this file:

* logic cells, flip-flops, DSPs, BRAMs: a line ``a + b*n`` (least squares);
* Fmax: ``a + b*log2(n)`` (the critical path grows with the fan-out of the wider builds, not
  with their area).

Each fit carries its error on held-out points: every point is predicted by the fit of the
*other* points of its series (leave-one-out), and ``holdout`` records the largest and mean
absolute relative error. The estimate is for the self-test matrix size; the weights of a bigger
network need the block RAMs :func:`weight_brams` counts on top (reported separately).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from model.errors import SparseFlowError

FIT_FILE = Path(__file__).with_name("resource_fit.json")
RESOURCES = ("logic_cells", "ffs", "bram", "dsp", "fmax_mhz")
INTEGRAL = ("logic_cells", "ffs", "bram", "dsp")

# What each target holds (nextpnr's device totals), for "does it fit" and the weight memories.
DEVICES = {
    "ice40-up5k": {"logic_cells": 5280, "bram": 30, "dsp": 8, "bram_bits": 4096},
    "ecp5-85f": {"logic_cells": 83640, "bram": 208, "dsp": 156, "bram_bits": 18432},
}


def _x(resource: str, n):
    n = np.asarray(n, dtype=float)
    return np.log2(n) if resource == "fmax_mhz" else n


def _line(resource: str, sizes, values) -> tuple[float, float]:
    """(a, b) of ``value = a + b * x(n)``; one point: a constant."""
    x, y = _x(resource, sizes), np.asarray(values, dtype=float)
    if len(set(x.tolist())) < 2:
        return float(y.mean()), 0.0
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def _predict(resource: str, coef, n) -> float:
    v = coef[0] + coef[1] * float(_x(resource, n))
    return max(v, 0.0)


def fit(points: list[dict]) -> dict:
    """``{"TARGET/ENGINE": {resource: {"a", "b", "form", "sizes", "holdout": {...}}}}`` from sweep rows
    (``target``, ``engine``, ``size`` and the resources; only rows that fit the device)."""
    series: dict = {}
    for r in points:
        series.setdefault(f"{r['target']}/{r['engine']}", []).append(r)
    out = {}
    for name, rows in sorted(series.items()):
        rows = sorted(rows, key=lambda r: int(r["size"]))
        sizes = [int(r["size"]) for r in rows]
        res = {}
        for key in RESOURCES:
            vals = [float(r[key]) for r in rows]
            a, b = _line(key, sizes, vals)
            errs = []
            if len(rows) >= 3:  # leave one out: predict each point from the others
                for i in range(len(rows)):
                    c = _line(key, sizes[:i] + sizes[i + 1:], vals[:i] + vals[i + 1:])
                    # counts near zero (BRAM, DSP): relative to at least one block
                    errs.append(abs(_predict(key, c, sizes[i]) - vals[i]) / max(abs(vals[i]), 1.0))
            res[key] = {"a": round(a, 4), "b": round(b, 4),
                        "form": "a + b*log2(n)" if key == "fmax_mhz" else "a + b*n",
                        "sizes": sizes,
                        "fifo_depths": sorted({int(r["fifo_depth"]) for r in rows if r.get("fifo_depth")}),
                        "holdout": ({"points": len(errs), "max_rel_err": round(max(errs), 4),
                                     "mean_rel_err": round(float(np.mean(errs)), 4),
                                     "per_point": [round(e, 4) for e in errs]} if errs else None)}
        out[name] = res
    return out


@lru_cache(maxsize=1)
def _fits() -> dict:
    try:
        return json.loads(FIT_FILE.read_text())
    except (OSError, ValueError) as exc:
        raise SparseFlowError(f"{FIT_FILE}: cannot read the resource estimator's fit ({exc}); "
                              f"run python -m benchmarks.synth_sweep --plot-only") from None


def series() -> list[str]:
    """The ``TARGET/ENGINE`` pairs the estimator was fitted for."""
    return sorted(_fits())


def estimate(engine: str, size: int, target: str, fifo_depth: int | None = None) -> dict | None:
    """Predicted ``logic_cells, ffs, bram, dsp, fmax_mhz`` of ``engine`` at ``size`` PEs/lanes on
    ``target``, plus ``extrapolated`` (``size`` outside the fitted sizes, or a queue depth other
    than the fitted one); None if no fit exists for the pair (an engine the synthesis sweep has
    not measured yet)."""
    fit_ = _fits().get(f"{target}/{engine}")
    if fit_ is None:
        return None
    out = {}
    for key in RESOURCES:
        c = fit_[key]
        v = _predict(key, (c["a"], c["b"]), size)
        out[key] = int(math.ceil(v - 1e-9)) if key in INTEGRAL else round(v, 2)
    sizes = fit_["logic_cells"]["sizes"]
    depths = fit_["logic_cells"].get("fifo_depths") or []
    out["extrapolated"] = (not (min(sizes) <= size <= max(sizes))
                           or (fifo_depth is not None and bool(depths) and fifo_depth not in depths))
    return out


def weight_brams(memory_bits: int, target: str) -> int:
    """Block RAMs the weight memories of ``memory_bits`` need on ``target`` (capacity only)."""
    return int(math.ceil(memory_bits / DEVICES[target]["bram_bits"]))


def fits_device(est: dict, target: str, weight_bram: int = 0) -> bool:
    """Whether a predicted build (plus ``weight_bram`` weight memories) fits ``target``."""
    d = DEVICES[target]
    return (est["logic_cells"] <= d["logic_cells"] and est["dsp"] <= d["dsp"]
            and max(est["bram"], weight_bram) <= d["bram"])
