"""Resource and Fmax sweep: each engine at several PE/lane counts on both FPGA targets.

Runs ``verif.synth.synthesize`` one configuration at a time (synthesis is CPU-heavy), appending
each result to ``docs/results/synth_sweep.csv`` as soon as it is measured (a design that does not
fit is recorded with ``fits=0`` and nextpnr's reason). Then fits the resource estimator
(``model.hw.estimator.fit``: per engine and target, with leave-one-out errors), writes it to
``docs/results/synth_fit.json`` and ``model/hw/resource_fit.json`` and plots resources and Fmax vs size to ``synth_sweep.png``.

    python -m benchmarks.synth_sweep                 # the default sweep (12 points, ~1 h on 2 busy cores)
    python -m benchmarks.synth_sweep --extra         # plus the ends of the ranges
    python -m benchmarks.synth_sweep --plot-only     # refit and replot the CSV
    python -m benchmarks.synth_sweep --workers 2     # two points at a time (or --cluster tcp://HOST:8786)
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "results"
CSV = OUT / "synth_sweep.csv"
FIELDS = ["target", "engine", "size", "fifo_depth", "rows", "cols", "density", "fits", "logic_cells", "lut4", "ffs", "bram",
          "dsp", "fmax_mhz", "goal_mhz", "meets_goal", "engine_cycles", "dense_macs", "throughput_gmacs",
          "throughput_per_cell", "critical_from", "critical_to", "critical_ns", "note"]
RESOURCES = ["logic_cells", "ffs", "bram", "dsp", "fmax_mhz"]

# Goal-relevant points first, so a partial sweep already answers the questions.
SWEEP = [
    ("ice40-up5k", "eie", 4), ("ice40-up5k", "2:4", 4), ("ice40-up5k", "dense", 4),
    ("ecp5-85f", "eie", 16), ("ecp5-85f", "2:4", 8), ("ecp5-85f", "dense", 8),
    ("ice40-up5k", "eie", 2), ("ice40-up5k", "2:4", 2), ("ice40-up5k", "dense", 2),
    ("ecp5-85f", "eie", 8), ("ecp5-85f", "2:4", 4), ("ecp5-85f", "dense", 4),
]
# Further points (``--extra``): the ends of the ranges.
EXTRA = [
    ("ice40-up5k", "eie", 1), ("ice40-up5k", "2:4", 1), ("ice40-up5k", "dense", 1),
    ("ice40-up5k", "eie", 8), ("ice40-up5k", "2:4", 8), ("ice40-up5k", "dense", 8),
    ("ecp5-85f", "eie", 4), ("ecp5-85f", "eie", 32), ("ecp5-85f", "2:4", 2), ("ecp5-85f", "dense", 2),
]


def synth_point(target: str, engine: str, size: int, rows: int, cols: int, density: float, seed: int) -> dict:
    """One CSV row: ``target``/``engine``/``size`` synthesized (a task: everything it needs is in its arguments)."""
    from model.errors import SparseFlowError
    from verif.synth import get_target, synthesize
    t0 = time.monotonic()
    row = {"target": target, "engine": engine, "size": size, "rows": rows, "cols": cols, "density": density,
           "fifo_depth": get_target(target).eie_fifo_depth if engine == "eie" else None}
    (ROOT / "build" / "sweep").mkdir(parents=True, exist_ok=True)  # synthesize() wants an existing parent
    try:
        r = synthesize(engine, size, target, rows=rows, cols=cols, density=density, seed=seed,
                       out=ROOT / "build" / "sweep" / f"{target}-{engine.replace(':', '')}-{size}")
        cp = r.get("critical_path") or {}
        row.update({k: r.get(k) for k in FIELDS if k in r}, fits=1, meets_goal=int(r["meets_goal"]),
                   critical_from=cp.get("from"), critical_to=cp.get("to"), critical_ns=cp.get("delay_ns"))
    except SparseFlowError as exc:
        row.update(fits=0 if "does not fit" in str(exc) else "error", note=str(exc))
    row["_seconds"] = time.monotonic() - t0
    return row


def run_sweep(points, rows, cols, density, seed, csv_path: Path, workers=None, cluster=None) -> None:
    """Synthesize ``points``, one task each (``scripts.farm``: in-process unless ``workers``/``cluster``),
    appending each row to the CSV as soon as it is measured."""
    from scripts import farm
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()

        def done(i, row):
            w.writerow(row)
            fh.flush()
            print(f"sweep: {row['target']} {row['engine']} x{row['size']}: {row.get('logic_cells', '-')} cells, "
                  f"{row.get('fmax_mhz', '-')} MHz, fits={row['fits']} ({row['_seconds']:.0f} s)",
                  file=sys.stderr, flush=True)

        farm.map_tasks(synth_point, [(t, e, s, rows, cols, density, seed) for t, e, s in points], workers, cluster,
                       desc="synth", on_result=done)


def load(csv_path: Path) -> list[dict]:
    """The CSV's rows; a point measured again replaces its earlier row."""
    with open(csv_path) as fh:
        latest = {(r["target"], r["engine"], r["size"]): r for r in csv.DictReader(fh)}
    return list(latest.values())


def fit(rows: list[dict]) -> dict:
    """The resource estimator's fit (``model.hw.estimator.fit``) over the rows that fit their device."""
    from model.hw.estimator import fit as fit_points
    return fit_points([r for r in rows if r["fits"] == "1"])


def holdout_table(fits: dict) -> str:
    """Markdown: the estimator's leave-one-out error per series against the goals (15 % logic, 20 % Fmax)."""
    lines = ["| target / engine | sizes fitted | logic cells: max (mean) error | FFs | Fmax: max (mean) error | "
             "goals (15 % / 20 %) |", "|---|---|---:|---:|---:|---|"]
    for name, res in fits.items():
        h = {k: res[k]["holdout"] for k in ("logic_cells", "ffs", "fmax_mhz")}
        if not all(h.values()):
            lines.append(f"| {name} | {res['logic_cells']['sizes']} | too few points to hold one out | | | |")
            continue
        cell = lambda k: f"{h[k]['max_rel_err']:.1%} ({h[k]['mean_rel_err']:.1%})"
        met = ("met" if h["logic_cells"]["max_rel_err"] <= 0.15 else "logic MISSED") + ", " + \
              ("met" if h["fmax_mhz"]["max_rel_err"] <= 0.20 else "Fmax MISSED")
        lines.append(f"| {name} | {', '.join(map(str, res['logic_cells']['sizes']))} | {cell('logic_cells')} | "
                     f"{cell('ffs')} | {cell('fmax_mhz')} | {met} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from model.hw.engines import NAMES
    targets = sorted({r["target"] for r in rows})
    keys = ["logic_cells", "ffs", "bram", "dsp", "fmax_mhz"]
    fig, axes = plt.subplots(len(targets), len(keys), figsize=(4 * len(keys), 3.3 * len(targets)), squeeze=False)
    for ti, target in enumerate(targets):
        for ki, key in enumerate(keys):
            ax = axes[ti][ki]
            for engine in NAMES:
                pts = sorted((int(r["size"]), float(r[key])) for r in rows if r["target"] == target
                             and r["engine"] == engine and r["fits"] == "1")
                if pts:
                    ax.plot(*zip(*pts), "o-", label=engine)
            if key == "fmax_mhz":
                goal = next((float(r["goal_mhz"]) for r in rows if r["target"] == target and r["goal_mhz"]), None)
                if goal:
                    ax.axhline(goal, ls="--", c="grey", lw=1, label="goal")
            ax.set_title(f"{target}: {key}")
            ax.set_xlabel("PEs / lanes")
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(rows: list[dict]) -> str:
    head = ("| target | engine | PEs/lanes | logic cells | FFs | BRAM | DSP | Fmax MHz | goal | cycles | "
            "GMAC/s | dense MAC/s per cell | critical path |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    from model.hw.engines import NAMES
    order = {e: i for i, e in enumerate(NAMES)}
    for r in sorted(rows, key=lambda r: (r["target"], order.get(r["engine"], 9), int(r["size"]))):
        if r["fits"] != "1":
            lines.append(f"| {r['target']} | {r['engine']} | {r['size']} | {r['note'] or 'error'} |" + " |" * 9)
            continue
        goal = "met" if r["meets_goal"] == "1" else "missed"
        size = r["size"] + (f" (queues {r['fifo_depth']} deep)" if r.get("fifo_depth") else "")
        lines.append(f"| {r['target']} | {r['engine']} | {size} | {r['logic_cells']} | {r['ffs']} | {r['bram']} | "
                     f"{r['dsp']} | {float(r['fmax_mhz']):.1f} | {goal} ({float(r['goal_mhz']):g}) | {r['engine_cycles']} | "
                     f"{float(r['throughput_gmacs']):.3f} | {float(r['throughput_per_cell']) / 1e3:.1f} k | "
                     f"`{r['critical_from']}` -> `{r['critical_to']}` ({r['critical_ns']} ns) |")
    return "\n".join(lines) + "\n"


def goals(rows: list[dict]) -> str:
    """The project's goals, checked against the measured rows (one bullet each)."""
    ok = [r for r in rows if r["fits"] == "1"]
    out = []
    for target, min_pes in (("ice40-up5k", 4), ("ecp5-85f", 16)):
        pts = [r for r in ok if r["target"] == target and r["engine"] == "eie" and int(r["size"]) >= min_pes]
        for r in pts:
            verdict = "met" if r["meets_goal"] == "1" else "MISSED"
            out.append(f"- {target}, EIE {r['size']} PEs: Fmax {float(r['fmax_mhz']):.1f} MHz vs goal "
                       f"{float(r['goal_mhz']):g} MHz: **{verdict}**; critical path `{r['critical_from']}` -> "
                       f"`{r['critical_to']}` ({r['critical_ns']} ns)")
        if not pts:
            out.append(f"- {target}, EIE >= {min_pes} PEs: no fitting point measured")
    for target in sorted({r["target"] for r in ok}):
        for size in sorted({int(r["size"]) for r in ok if r["target"] == target}):
            pair = {r["engine"]: r for r in ok if r["target"] == target and int(r["size"]) == size
                    and r["engine"] in ("2:4", "dense")}
            if len(pair) == 2:
                a, b = float(pair["2:4"]["throughput_per_cell"]), float(pair["dense"]["throughput_per_cell"])
                verdict = "above" if a > b else "NOT above"
                out.append(f"- {target}, {size} lanes: 2:4 {a / 1e3:.1f} k vs dense {b / 1e3:.1f} k dense-MAC/s "
                           f"per logic cell ({a / b:.2f}x): **{verdict}**")
    return "\n".join(out) + "\n"


def report(csv_path: Path) -> None:
    rows = load(csv_path)
    (OUT / "synth_goals.md").write_text(goals(rows))
    (OUT / "synth_table.md").write_text(markdown(rows))
    fits = fit(rows)
    text = json.dumps(fits, indent=2, sort_keys=True) + "\n"
    (OUT / "synth_fit.json").write_text(text)
    from model.hw.estimator import FIT_FILE
    FIT_FILE.write_text(text)  # what the estimator reads (packaged with model.hw)
    (OUT / "estimator_holdout.md").write_text(holdout_table(fits))
    plot(rows, OUT / "synth_sweep.png")
    for series, res in fits.items():
        print(series + ": " + ", ".join(
            f"{k} = {v['a']} + {v['b']}*{'log2(n)' if k == 'fmax_mhz' else 'n'}"
            + (f" (held out: max {v['holdout']['max_rel_err']:.1%})" if v["holdout"] else "") for k, v in res.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=32)
    p.add_argument("--cols", type=int, default=32)
    p.add_argument("--density", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--plot-only", action="store_true")
    p.add_argument("--fresh", action="store_true", help="start a new CSV instead of appending")
    p.add_argument("--extra", action="store_true", help="also the ends of the ranges (EXTRA)")
    p.add_argument("--only", help="comma-separated target/engine/size points, e.g. ice40-up5k/eie/4")
    from scripts import farm
    farm.add_arguments(p)  # given: the points are synthesized in parallel on Dask workers
    a = p.parse_args(argv)
    if not a.plot_only:
        if a.fresh and CSV.exists():
            CSV.unlink()
        points = SWEEP + (EXTRA if a.extra else [])
        if a.only:
            points = [(t, e, int(s)) for t, e, s in (x.split("/") for x in a.only.split(","))]
        run_sweep(points, a.rows, a.cols, a.density, a.seed, CSV, a.workers, a.cluster)
    report(CSV)
    return 0


if __name__ == "__main__":
    sys.exit(main())
