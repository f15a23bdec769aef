"""EIE array load-balance efficiency on the EIE paper's benchmark layers.

For AlexNet FC6/7/8, VGG-16 FC6/7/8 and NeuralTalk We/Wd/LSTM (Han et al., EIE, ISCA 2016,
Table III: sizes, weight and activation densities), uniformly random matrices with the
published densities and activation vectors with the published activation density.

* Cycle model, FULL-SIZE layers (the cycle model is exact and fast): 4..64 PEs at queue
  depth 8. The headline variant is the default of ``spmv``/``compile``/``demo``: the scanning
  front end (``frontend_width`` 8) with, per layer and PE count, the relative-index width the
  cost model chooses (:func:`default_index_bits`, as ``spmv --index-bits auto``); beside it the
  one-element front end (``frontend_width`` 1, the old one) at the same widths, and both front
  ends at fixed 4-bit (EIE's: padding) and 8-bit (almost no padding) indices, to show what
  padding costs (``--grid``: also depths 1..16, the balanced row permutation
  ``model.hw.balance`` and widths 4, 16, at 4 bits). Per point: cycles, the ideal bound (non-zero
  work / PEs), efficiency = ideal / cycles over the vectors, ``work_eff`` = mean PE busy /
  cycles (padding entries counted as work: what is left is pure load imbalance and pipeline
  fill), and memory per real non-zero, padding included: ``bits_per_nz`` (entries + column
  pointers), ``entry_bits_per_nz`` (entries: 8-bit weight + index) and
  ``entry_bits_per_nz_cb4`` (entries with EIE's 4-bit shared-weight index, next to EIE's 8).
* RTL validation: a representative subset simulated on the RTL (Verilator, native harness)
  with rows / 4 and columns / 16 so that the builds stay small, plus two layers at FULL size
  on ``--full-pes`` PEs (AlexNet FC8 1000 x 4096 and NeuralTalk We 600 x 4096, ``--no-full``
  skips them, ``--full-only`` runs only them and adds them to the summary), at the default
  configuration (``--full-frontends 1``: the old front end); the largest deviation between the
  RTL's ``cycles`` counter and the cycle model is reported (it must be 0), and the RTL's
  efficiency.
* Simulation speed: the same test on Verilator (cocotb and native) and Icarus, cycles per
  second and their ratios.

Writes docs/results/eie_efficiency.csv, eie_efficiency.png and eie_summary.json.

    .venv/bin/python -m benchmarks.eie_efficiency [--quick] [--no-rtl] [--no-speed] [--workers N | --cluster ADDR]
    .venv/bin/python -m benchmarks.eie_efficiency --full-only --full-pes 64 [--full-frontends 8,1]
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from model.hw.balance import balance_rows
from model.hw.config import Arith, EIEConfig
from model.hw.cyclemodel import ideal_cycles, simulate_vector
from model.hw.costmodel import EIE_PAPER_BITS_PER_NONZERO, eie_bits_per_nonzero
from model.hw.formats.eie import encode

OUT = Path(__file__).resolve().parent.parent / "docs" / "results"
# name: (rows = outputs, cols = inputs, weight density, activation density)
LAYERS = {
    "Alex-6": (4096, 9216, 0.09, 0.351),
    "Alex-7": (4096, 4096, 0.09, 0.353),
    "Alex-8": (1000, 4096, 0.25, 0.375),
    "VGG-6": (4096, 25088, 0.04, 0.183),
    "VGG-7": (4096, 4096, 0.04, 0.375),
    "VGG-8": (1000, 4096, 0.23, 0.411),
    "NT-We": (600, 4096, 0.10, 1.0),
    "NT-Wd": (8791, 600, 0.11, 1.0),
    "NT-LSTM": (2400, 1201, 0.10, 1.0),
}
PES = (4, 8, 16, 32, 64)
DEPTHS = (1, 2, 4, 8, 16)
OLD, NEW = 1, 8  # front-end widths compared: the one-element front end and the default
AUTO = "auto"  # index_bits of a variant: the cost model's width per layer and PE count (the default)
# (mapping, frontend_width, index_bits, depths): at depth 8 the default (the cost model's width,
# chosen for the scanning front end) with both front ends, then both front ends with EIE's 4-bit
# indices and with 8-bit ones (almost no padding: what padding costs).
VARIANTS = [("interleaved", k, ib, (8,)) for ib in (AUTO, 4, 8) for k in (OLD, NEW)]
# --grid adds: every depth for the default front end, the balanced rows, widths 4 and 16.
GRID = [("interleaved", NEW, 4, DEPTHS), ("balanced", NEW, 4, (8,))] + [("interleaved", k, 4, (8,)) for k in (4, 16)]
EIE_PAPER = 0.87  # EIE (ISCA 2016) Table IV: mean load efficiency


def make_layer(name: str, seed: int = 0, vectors: int = 4, row_scale: int = 1, col_scale: int = 1):
    rows, cols, wd, ad = LAYERS[name]
    rows, cols = max(16, rows // row_scale), max(64, cols // col_scale)
    rng = np.random.default_rng(seed)
    w = np.zeros((rows, cols), dtype=np.int8)
    for r0 in range(0, rows, 256):  # in blocks: full-size VGG-6 is 100M weights
        blk = rng.integers(-128, 127, (min(256, rows - r0), cols), dtype=np.int8)
        blk[blk == 0] = 127
        blk[rng.random(blk.shape, dtype=np.float32) >= wd] = 0
        w[r0:r0 + 256] = blk
    x = rng.integers(-32768, 32768, (cols, vectors), dtype=np.int64)
    x[x == 0] = 1
    x *= rng.random((cols, vectors)) < ad
    return w, x


def config_for(w, n_pes: int, depth: int, frontend_width: int = NEW, index_bits: int = 4) -> EIEConfig:
    rows, cols = w.shape
    cfg = EIEConfig(n_pes=n_pes, fifo_depth=depth, index_bits=index_bits, max_rows=rows, max_entries=1,
                    arith=Arith(max_cols=cols), frontend_width=frontend_width)
    need = int(encode(w, cfg).entries_per_pe.max(initial=1))
    return cfg.with_(max_entries=max(1, need))


def model_point(w, x, n_pes, depth, m=None, ideal=None, frontend_width=NEW, index_bits=4):
    cfg = config_for(w, n_pes, depth, frontend_width, index_bits) if m is None else m[1]
    m = encode(w, cfg) if m is None else m[0]
    sims = [simulate_vector(m, x[:, b], cfg) for b in range(x.shape[1])]
    cyc = [int(p["cycles"]) for p in sims]
    busy = [float(p["busy"].mean()) for p in sims]
    if ideal is None:
        ideal = [ideal_cycles(w, x[:, b], n_pes) for b in range(x.shape[1])]
    return cyc, ideal, busy


def model_grid(layers, pes, depths, vectors, col_scale=1, variants=VARIANTS, workers=None, cluster=None):
    """The cycle-model grid, one task per layer (``scripts.farm``: in-process unless ``workers``/``cluster``)."""
    from scripts import farm
    parts = farm.map_tasks(_model_layer, [(name, pes, depths, vectors, col_scale, variants) for name in layers],
                           workers, cluster, desc="model")
    return [r for part in parts for r in part]


def default_index_bits(w, x, n_pes: int) -> int:
    """The relative-index width ``sparseflow spmv --index-bits auto`` takes for ``w`` on ``x`` with
    ``n_pes`` PEs, depth-8 queues and the default (scanning) front end: the cost model's choice,
    fewest memory bits x cycles (``verif.spmv_eie.choose_index_width``)."""
    from verif.spmv_eie import choose_index_width
    return choose_index_width(w, x, n_pes=n_pes, frontend_width=NEW)[0]


def _model_layer(name, pes, depths, vectors, col_scale, variants):
    """One layer's rows of the model grid (a task)."""
    rows = []
    t0 = time.perf_counter()
    w, x = make_layer(name, vectors=vectors, col_scale=col_scale)
    nnz_in_active = [int(np.count_nonzero(w[:, x[:, b] != 0])) for b in range(x.shape[1])]
    for n in pes:
        ideal = [v / n for v in nnz_in_active]
        perm = balance_rows(w, n, col_weights=None) if any(v[0] == "balanced" for v in variants) else None
        auto = default_index_bits(w, x, n) if any(v[2] == AUTO for v in variants) else None
        encoded = {}
        for mapping, k, rule, vdepths in variants:
            ib = auto if rule == AUTO else rule
            wm = w if mapping == "interleaved" else w[perm]
            if (mapping, ib) not in encoded:
                base = config_for(wm, n, 1, k, ib)
                encoded[mapping, ib] = (encode(wm, base), base)
            m, base = encoded[mapping, ib]
            pad = m.padding_entries / max(1, int(m.entries_per_pe.sum()))
            for d in (d for d in vdepths if d in depths):
                cfg = base.with_(fifo_depth=d, frontend_width=k)
                cyc, _, busy = model_point(wm, x, n, d, (m, cfg), ideal)
                rows.append({"layer": name, "rows": w.shape[0], "cols": w.shape[1], "n_pes": n, "depth": d,
                             "mapping": mapping, "frontend_width": k,
                             "index_rule": "cost model" if rule == AUTO else "fixed", "index_bits": ib,
                             "cycles": float(np.mean(cyc)), "ideal": float(np.mean(ideal)),
                             "efficiency": float(np.sum(ideal) / np.sum(cyc)),
                             "work_eff": float(np.sum(busy) / np.sum(cyc)),
                             "padding_fraction": pad,
                             # memory per real non-zero, padding included: entries (8-bit weight +
                             # index) and column pointers; entries only; entries only with EIE's
                             # 4-bit shared-weight index instead of the 8-bit weight (EIE's 8 bits)
                             "bits_per_nz": eie_bits_per_nonzero(m, cfg, pointers=True),
                             "entry_bits_per_nz": eie_bits_per_nonzero(m, cfg),
                             "entry_bits_per_nz_cb4": eie_bits_per_nonzero(
                                 m, cfg.with_(codebook=True, codebook_bits=4)),
                             # one element per cycle: the old front end's limit
                             "input_bound_eff": float(min(1.0, np.sum(ideal) / (x.shape[1] * w.shape[1]))),
                             # one non-zero (or all-zero word) per cycle: the scanning one's
                             "nz_bound_eff": float(min(1.0, np.sum(ideal) / sum(
                                 max(np.count_nonzero(x[:, b]), 1) for b in range(x.shape[1])))),
                             })
    print(f"  model: {name} {w.shape[0]}x{w.shape[1]} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def rtl_validate(subset, sim="verilator", row_scale=4, col_scale=16, backend="native", vectors=2, workers=None,
                 cluster=None):
    """Simulate ``subset`` [(layer, n_pes, depth, frontend_width, index_bits)] (scaled; ``index_bits``
    :data:`AUTO`: the cost model's width) on the RTL, one task per point; compare with the cycle
    model; the RTL's efficiency (ideal / its cycles)."""
    from scripts import farm
    points = farm.map_tasks(_rtl_point, [(name, n, d, k, ib, sim, row_scale, col_scale, backend, vectors)
                                         for name, n, d, k, ib in subset], workers, cluster, desc="rtl")
    return merge_points(None, {"points": points})


def merge_points(old: dict | None, new: dict) -> dict:
    """``new`` RTL results added to ``old`` (a point of the same layer, PEs and front end replaced)."""
    key = lambda p: (p["layer"], p["n_pes"], p["frontend_width"])
    points = {key(p): p for p in (old or {}).get("points", []) + new["points"]}
    points = sorted(points.values(), key=lambda p: (p["n_pes"], p["layer"], -p["frontend_width"]))
    return {"vectors_checked": sum(len(p["model"]) for p in points),
            "max_abs_deviation_cycles": max((p["max_abs_deviation"] for p in points), default=0), "points": points}


def _rtl_point(name, n, d, k, ib, sim, row_scale, col_scale, backend, vectors):
    """One RTL validation point (a task)."""
    from verif.spmv_eie import run_jobs
    w, x = make_layer(name, vectors=vectors, row_scale=row_scale, col_scale=col_scale)
    t0 = time.perf_counter()
    rule = "cost model" if ib == AUTO else "fixed"
    ib = default_index_bits(w, x, n) if ib == AUTO else ib
    cfg = config_for(w, n, d, k, ib)
    r = run_jobs([(w, x)], cfg, sim=sim, backend=backend if sim == "verilator" else "cocotb")[0]
    model, ideal, _ = model_point(w, x, n, d, frontend_width=k, index_bits=ib)
    dev = max(abs(a - b) for a, b in zip(model, r["cycles"]))
    eff = float(np.sum(ideal) / np.sum(r["cycles"]))
    point = {"layer": name, "shape": list(w.shape), "n_pes": n, "depth": d, "frontend_width": k,
             "index_bits": ib, "index_rule": rule,
             "rtl": r["cycles"], "model": model, "max_abs_deviation": dev, "rtl_efficiency": round(eff, 4),
             "seconds": round(time.perf_counter() - t0, 1),
             "sim_cycles": r["sim_cycles"], "sim_seconds": round(r["sim_seconds"], 3), "backend": r["backend"]}
    print(f"  rtl: {name} {w.shape} n={n} D={d} K={k} index={ib}: rtl {r['cycles']} model {model} "
          f"efficiency {eff:.3f}", flush=True)
    return point


def sim_speed():
    """Same job on both simulators: TB-measured simulated cycles per wall second."""
    from verif.spmv_eie import run_jobs
    rng = np.random.default_rng(5)
    cfg = EIEConfig(n_pes=4, fifo_depth=4, index_bits=4, max_rows=64, max_entries=512, arith=Arith(max_cols=64))
    w = rng.integers(-128, 128, (64, 64)) * (rng.random((64, 64)) < 0.3)
    x = rng.integers(-32768, 32768, (64, 24)) * (rng.random((64, 24)) < 0.5)
    out = {}
    for name, sim, backend in (("icarus", "icarus", "cocotb"), ("verilator", "verilator", "cocotb"),
                               ("verilator_native", "verilator", "native")):
        run_jobs([(w, x)], cfg, sim=sim, backend=backend)  # build (cached) outside the measurement
        r = run_jobs([(w, x)], cfg, sim=sim, backend=backend)[0]
        out[name] = {"cycles": r["sim_cycles"], "seconds": r["sim_seconds"],
                     "cycles_per_second": r["sim_cycles"] / r["sim_seconds"]}
    out["verilator_over_icarus"] = out["verilator"]["cycles_per_second"] / out["icarus"]["cycles_per_second"]
    out["native_over_cocotb_verilator"] = (out["verilator_native"]["cycles_per_second"]
                                           / out["verilator"]["cycles_per_second"])
    return out


def _mean(rows, key, **match):
    """Mean of ``key`` over the rows (dicts of numbers or CSV strings) matching ``match``."""
    vals = [float(r[key]) for r in rows if all(str(r[k]) == str(v) for k, v in match.items())]
    return float(np.mean(vals)) if vals else float("nan")


# (label, style, match): colour = index width rule, solid = the scanning front end, dotted = the
# old one; the default first (highlighted), the old front end at the same widths beside it
SERIES = [(f"default: front end {NEW}, cost model's index width", "C3-", {"frontend_width": NEW, "index_rule": "cost model"}),
          ("front end 1 (old), same widths", "C3:", {"frontend_width": OLD, "index_rule": "cost model"}),
          (f"front end {NEW}, 4-bit index (EIE's)", "C1-", {"frontend_width": NEW, "index_rule": "fixed", "index_bits": 4}),
          ("front end 1, 4-bit index", "C1:", {"frontend_width": OLD, "index_rule": "fixed", "index_bits": 4}),
          (f"front end {NEW}, 8-bit index", "C2-", {"frontend_width": NEW, "index_rule": "fixed", "index_bits": 8}),
          ("front end 1, 8-bit index", "C2:", {"frontend_width": OLD, "index_rule": "fixed", "index_bits": 8})]


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    ax = axes[0]
    pes = sorted({int(r["n_pes"]) for r in rows})
    names = list(dict.fromkeys(r["layer"] for r in rows))
    big = max(pes)
    bars = [SERIES[i] for i in (0, 1, 2, 4)]
    wd = 0.8 / len(bars)
    for i, (label, style, match) in enumerate(bars):
        at = np.arange(len(names)) + (i - (len(bars) - 1) / 2) * wd
        eff = [_mean(rows, "efficiency", layer=nm, n_pes=big, depth=8, mapping="interleaved", **match) for nm in names]
        ax.bar(at, eff, width=wd, label=label, color=style[:2], edgecolor="black" if i == 0 else style[:2],
               hatch="//" if style.endswith(":") else None, fill=not style.endswith(":"),
               alpha=1.0 if i < 2 else 0.6)
        if i == 0:  # the width the cost model chose, on the default's bar
            for a, e, nm in zip(at, eff, names):
                bits = _mean(rows, "index_bits", layer=nm, n_pes=big, depth=8, mapping="interleaved", **match)
                ax.text(a, e + 0.01, f"{bits:.0f}", ha="center", fontsize=7, color="C3")
    ax.set_xticks(np.arange(len(names)), names, rotation=30, fontsize=8)
    ax.set_ylabel("ideal / cycles")
    ax.set_ylim(0, 1.25)
    ax.set_title(f"per layer, {big} PEs, queue depth 8 (red digits: chosen index bits)", fontsize=10)
    ax.axhline(0.9, color="grey", ls=":", lw=1)
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax = axes[1]
    for i, (label, style, match) in enumerate(SERIES):
        ax.plot(pes, [_mean(rows, "efficiency", n_pes=n, depth=8, mapping="interleaved", **match) for n in pes],
                style, marker="o", lw=2.5 if i == 0 else 1.2, ms=6 if i == 0 else 4, label=label)
    ax.axhline(0.9, color="grey", ls=":", lw=1)
    ax.axhline(EIE_PAPER, color="black", ls="--", lw=1, label=f"EIE paper ({EIE_PAPER})")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0.5, 1.02)  # the legend below the 4-bit lines
    ax.set_xlabel("PEs (queue depth 8, interleaved)")
    ax.set_title("mean over the 9 layers at depth 8", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("EIE array, cycle model (exact vs RTL), EIE paper layers at full size, random pruning")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _key(mapping, k, rule, ib):
    return f"{mapping} K={k} index={'auto' if rule == 'cost model' else ib}"


def summarize(rows, pes) -> dict:
    """The depth-8 means per variant and PE count, the default's chosen widths and per-layer figures."""
    d8 = [r for r in rows if int(r["depth"]) == 8]
    variants = list(dict.fromkeys((r["mapping"], int(r["frontend_width"]), r["index_rule"],
                                   int(r["index_bits"]) if r["index_rule"] == "fixed" else AUTO) for r in d8))
    out = {}
    for key in ("efficiency", "work_eff", "bits_per_nz", "entry_bits_per_nz", "entry_bits_per_nz_cb4"):
        out[f"{key}_at_depth_8"] = {
            _key(mp, k, rule, ib): {str(n): round(_mean(d8, key, n_pes=n, mapping=mp, frontend_width=k, index_rule=rule,
                                                         **({} if ib == AUTO else {"index_bits": ib})), 3)
                                    for n in pes}
            for mp, k, rule, ib in variants}
    default = [r for r in d8 if r["mapping"] == "interleaved" and int(r["frontend_width"]) == NEW
               and r["index_rule"] == "cost model"]
    out["default_index_bits"] = {}
    for r in default:
        out["default_index_bits"].setdefault(r["layer"], {})[str(r["n_pes"])] = int(r["index_bits"])
    out["per_layer_depth_8"] = {
        f"{r['layer']} {r['n_pes']} {_key(r['mapping'], r['frontend_width'], r['index_rule'], r['index_bits'])}":
            {k: round(float(r[k]), 3) for k in ("index_bits", "efficiency", "work_eff", "padding_fraction",
                                                "bits_per_nz", "entry_bits_per_nz", "entry_bits_per_nz_cb4",
                                                "input_bound_eff", "nz_bound_eff")}
        for r in d8 if r["mapping"] == "interleaved" and int(r["frontend_width"]) in (OLD, NEW)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="three layers, fewer points")
    ap.add_argument("--no-rtl", action="store_true", help="skip the RTL validation subset")
    ap.add_argument("--no-speed", action="store_true", help="skip the simulator speed comparison")
    ap.add_argument("--no-full", action="store_true", help="skip the full-size RTL layers")
    ap.add_argument("--full-only", action="store_true",
                    help="only the full-size RTL layers, added to rtl_full_size in eie_summary.json")
    ap.add_argument("--full-pes", type=int, default=16, help="PEs of the full-size RTL layers (default 16)")
    ap.add_argument("--full-frontends", default=str(NEW), metavar="K,..",
                    help=f"front-end widths of the full-size RTL layers (default {NEW}; {NEW},{OLD}: also the old one)")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--col-scale", type=int, default=1, help="divide the model grid's columns (default 1: full size)")
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG from the CSV")
    ap.add_argument("--grid", action="store_true",
                    help="also every queue depth, the balanced rows and front-end widths 4 and 16")
    from scripts import farm
    farm.add_arguments(ap)  # given: layers and RTL points run as Dask tasks
    args = ap.parse_args(argv)
    if args.replot:
        with open(OUT / "eie_efficiency.csv") as f:
            plot(list(csv.DictReader(f)), OUT / "eie_efficiency.png")
        return
    t0 = time.perf_counter()

    def full_size():
        ks = [int(k) for k in args.full_frontends.split(",")]
        return rtl_validate([(name, args.full_pes, 8, k, AUTO) for name in ("Alex-8", "NT-We") for k in ks],
                            sim=args.sim, row_scale=1, col_scale=1, vectors=4, workers=args.workers,
                            cluster=args.cluster)

    if args.full_only:
        summary = json.loads((OUT / "eie_summary.json").read_text())
        summary["rtl_full_size"] = merge_points(summary.get("rtl_full_size"), full_size())
        (OUT / "eie_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary["rtl_full_size"], indent=2))
        return
    layers = ["Alex-8", "VGG-7", "NT-We"] if args.quick else list(LAYERS)
    pes, depths = ((4, 16, 64), (1, 8)) if args.quick else (PES, DEPTHS)
    rows = model_grid(layers, pes, depths, vectors=4, col_scale=args.col_scale,
                      variants=VARIANTS + (GRID if args.grid else []), workers=args.workers, cluster=args.cluster)
    summary = {"model_column_scale": args.col_scale, "rtl_row_scale": 4, "rtl_column_scale": 16,
               "layers": {k: LAYERS[k] for k in layers}, "eie_paper_efficiency": EIE_PAPER,
               "eie_paper_bits_per_nz": EIE_PAPER_BITS_PER_NONZERO}
    if not args.no_rtl:
        subset = [("Alex-8", 4, 8, NEW, AUTO), ("NT-We", 16, 8, NEW, AUTO), ("VGG-7", 16, 2, NEW, AUTO),
                  ("VGG-6", 64, 8, NEW, AUTO), ("VGG-6", 16, 8, OLD, AUTO), ("NT-LSTM", 8, 1, NEW, AUTO),
                  ("VGG-8", 4, 1, 4, 4)]
        summary["rtl_validation"] = rtl_validate(subset, sim=args.sim, workers=args.workers, cluster=args.cluster)
        if not args.no_full:
            summary["rtl_full_size"] = full_size()
    if not args.no_speed:
        summary["sim_speed"] = sim_speed()
    summary.update(summarize(rows, pes))
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "eie_efficiency.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        for r in rows:
            wr.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()})
    plot(rows, OUT / "eie_efficiency.png")
    (OUT / "eie_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("layers", "per_layer_depth_8")}, indent=2,
                     default=str))


if __name__ == "__main__":
    main()
