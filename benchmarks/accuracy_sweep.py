"""Accuracy of pruned digits MLPs on the held-out test set (360 images), float and integer.

Runs (all on the default 64-128-64-10 MLP, 30 dense epochs, 15 fine-tuning epochs):

* one-shot + fine-tune, unstructured, layer-wise: magnitude vs Taylor vs random at 50/80/90/95%,
  plus Taylor in its pre-issue-14 form (batch-mean gradient, rows may empty) at 80/90/95%;
* iterative pruning at 90/95% (4 rounds, 30 retraining epochs each): lottery ticket (rewind to
  init), late rewind (to step 50, about two epochs) and traditional IMP (random re-init);
* dynamic sparse training at 80/90% (SET random regrowth, RigL gradient regrowth), no dense phase;
* hardware structures: 2:4 (magnitude, Taylor), 4x4 and 2x2 blocks, channels (one-shot + fine-tune);
* every row: float dense, float pruned, 8-bit-weight / 16-bit-activation integer network
  (``model.nn.quant``) and the same with 4-bit EIE weight sharing.

Each configuration runs for ``--seeds`` seeds (init, batches, scores); the split is fixed.
Writes ``accuracy.csv`` (one row per run and seed), ``accuracy.md`` (mean and spread over seeds)
and ``accuracy.png`` into ``--out`` (default ``docs/results``).

    .venv/bin/python -m benchmarks.accuracy_sweep [--seeds 3] [--out docs/results] [--workers N | --cluster ADDR]
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from model.nn.data import load_digits
from model.nn.prune import PruneConfig, run
from model.nn.prune.pipelines import train_dense
from model.nn.quant import quantize, share_weights

REWIND_K = 50
FIELDS = ["experiment", "schedule", "method", "granularity", "sparsity", "seed", "float_dense",
          "float_pruned", "integer", "integer_shared", "measured_sparsity", "seconds"]


def experiments():
    """(experiment, PruneConfig kwargs) in table order."""
    for s in (0.5, 0.8, 0.9, 0.95):
        for m in ("magnitude", "taylor", "random"):
            yield "criteria", dict(method=m, sparsity=s)
        if s >= 0.8:
            yield "criteria", dict(method="taylor", sparsity=s, taylor="batch", keep_rows=False)
    for s in (0.9, 0.95):
        yield "iterative", dict(schedule="lth", sparsity=s)
        yield "iterative", dict(schedule="lth", sparsity=s, rewind_step=REWIND_K)
        yield "iterative", dict(schedule="iterative", sparsity=s)
    for s in (0.8, 0.9):
        for g in ("random", "gradient"):
            yield "dst", dict(schedule="dst", sparsity=s, dst_regrow=g)
    yield "structure", dict(method="magnitude", granularity="2:4", sparsity=0.5)
    yield "structure", dict(method="taylor", granularity="2:4", sparsity=0.5)
    yield "structure", dict(method="magnitude", granularity="block2x2", sparsity=0.8)
    for s in (0.5, 0.8):
        yield "structure", dict(method="magnitude", granularity="block4x4", sparsity=s)
    yield "structure", dict(method="magnitude", granularity="channel", sparsity=0.5)


def label(kw: dict) -> str:
    sch = kw.get("schedule", "oneshot")
    if sch == "dst":
        return "DST " + ("SET" if kw["dst_regrow"] == "random" else "RigL")
    if sch == "lth":
        return f"LTH rewind to step {kw['rewind_step']}" if kw.get("rewind_step") else "LTH rewind to init"
    if sch == "iterative":
        return "IMP re-init"
    if kw.get("taylor") == "batch":
        return "one-shot taylor (batch form)"
    return f"one-shot {kw.get('method', 'magnitude')}"


def integer_accuracies(model, data):
    q = quantize(model, data.x_train)
    s = share_weights(q, data.x_train)
    xt = data.x_test.T
    return q.accuracy(xt, data.y_test), s.accuracy(xt, data.y_test)


@lru_cache(maxsize=2)
def _dense(seed: int):
    """The dense network of ``seed`` (trained once per process: every experiment of a seed starts from it)."""
    from model.nn.train import accuracy
    data = load_digits()
    base = PruneConfig(seed=seed, rewind_step=REWIND_K, progress=False)
    t0 = time.time()
    dense, init, at_k = train_dense(base, data)
    return dense, init, at_k, accuracy(dense, *data.float_test()), time.time() - t0


def dense_row(seed: int) -> dict:
    """The dense baseline of ``seed`` (a task)."""
    import torch
    torch.set_num_threads(1)
    dense, _, _, dacc, seconds = _dense(seed)
    qi, qs = integer_accuracies(dense, load_digits())
    return dict(experiment="dense", schedule="dense", method="-", granularity="-", sparsity=0.0, seed=seed,
                float_dense=dacc, float_pruned=dacc, integer=qi, integer_shared=qs, measured_sparsity=0.0,
                seconds=round(seconds, 2))


def experiment_row(seed: int, exp: str, kw: dict) -> dict:
    """One experiment of one seed (a task; the dense network is retrained per worker process, seeded)."""
    import torch
    torch.set_num_threads(1)
    dense, init, at_k, dacc, _ = _dense(seed)
    data = load_digits()
    t0 = time.time()
    cfg = PruneConfig(seed=seed, progress=False, **kw)
    res = run(cfg, data, dense=dense, init_state=init, rewind_state=at_k)
    qi, qs = integer_accuracies(res.model, data)
    return dict(experiment=exp, schedule=label(kw), method=cfg.method if cfg.schedule != "dst" else "magnitude",
                granularity=cfg.granularity, sparsity=cfg.sparsity, seed=seed, float_dense=dacc,
                float_pruned=res.pruned_acc, integer=qi, integer_shared=qs,
                measured_sparsity=round(res.sparsity["total"], 4), seconds=round(time.time() - t0, 2))


def sweep(seeds: int, log, workers=None, cluster=None) -> list[dict]:
    """Every seed's dense row and experiments, one task each (``scripts.farm``: in-process unless
    ``workers``/``cluster``), in table order."""
    from scripts import farm
    tasks = []
    for seed in range(seeds):
        tasks.append((dense_row, (seed,)))
        tasks += [(experiment_row, (seed, exp, kw)) for exp, kw in experiments()]

    def say(i, r):
        log(f"seed {r['seed']}: {r['schedule']:<24} {r['granularity']:<12} {r['sparsity']:.2f}  float "
            f"{r['float_pruned']:.4f}  int {r['integer']:.4f}  int+share {r['integer_shared']:.4f}  ({r['seconds']:.1f} s)")

    return farm.map_tasks(_call, [(fn, args) for fn, args in tasks], workers, cluster, desc="accuracy", on_result=say)


def _call(fn, args):
    return fn(*args)


def aggregate(rows: list[dict]) -> list[dict]:
    keys = []
    groups: dict = {}
    for r in rows:
        k = (r["experiment"], r["schedule"], r["granularity"], r["sparsity"])
        if k not in groups:
            keys.append(k)
            groups[k] = []
        groups[k].append(r)
    out = []
    for k in keys:
        g = groups[k]
        agg = {"experiment": k[0], "schedule": k[1], "granularity": k[2], "sparsity": k[3], "n": len(g),
               "measured_sparsity": float(np.mean([r["measured_sparsity"] for r in g]))}
        for f in ("float_dense", "float_pruned", "integer", "integer_shared"):
            v = np.array([r[f] for r in g], dtype=float)
            agg[f] = float(v.mean())
            agg[f + "_std"] = float(v.std())
        out.append(agg)
    return out


def write_markdown(agg: list[dict], seeds: int, seconds: float, path: Path) -> None:
    lines = [
        "# Held-out accuracy of pruned digits MLPs",
        "",
        f"Generated by `python -m benchmarks.accuracy_sweep --seeds {seeds}` in {seconds:.0f} s (one thread, shared machine).",
        f"Mean ± standard deviation over {seeds} seeds (initialisation, batches, scores) on the fixed",
        "held-out test split (360 of 1797 scikit-learn digits, stratified, never used for training,",
        "fine-tuning or calibration). Network 64-128-64-10, no biases; 30 dense epochs (Adam 3e-3),",
        "15 fine-tuning epochs (Adam 1e-2); iterative schedules: 4 rounds of 30 epochs (1e-2);",
        "DST: 45 epochs sparse from scratch (3e-3), mask update every 25 steps.",
        "*integer*: 8-bit weights, 16-bit activations, shifts calibrated on training data (`model.nn.quant`);",
        "*+sharing*: the same with a 16-entry (4-bit) EIE codebook per layer. Sparsity: fraction of",
        "zero weights over all layers (channel pruning spares the classifier's rows). Discussion:",
        "[../pruning.md](../pruning.md#what-the-numbers-mean).",
        "",
        "| experiment | pipeline | granularity | target sparsity | measured | float dense | float pruned | integer | integer + sharing |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    pm = lambda a, f: f"{a[f]:.3f} ± {a[f + '_std']:.3f}"
    for a in agg:
        lines.append(f"| {a['experiment']} | {a['schedule']} | {a['granularity']} | {a['sparsity']:.2f} | "
                     f"{a['measured_sparsity']:.3f} | {pm(a, 'float_dense')} | {pm(a, 'float_pruned')} | "
                     f"{pm(a, 'integer')} | {pm(a, 'integer_shared')} |")
    path.write_text("\n".join(lines) + "\n")


def plot(agg: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    dense = next(a for a in agg if a["experiment"] == "dense")
    ax1.axhline(dense["float_pruned"], color="k", ls="--", lw=1, label="dense")
    for name, marker in (("one-shot magnitude", "o"), ("one-shot taylor", "s"), ("one-shot taylor (batch form)", "*"),
                         ("one-shot random", "^"),
                         ("LTH rewind to init", "D"), (f"LTH rewind to step {REWIND_K}", "d"), ("IMP re-init", "x"),
                         ("DST SET", "v"), ("DST RigL", "P")):
        pts = [a for a in agg if a["schedule"] == name and a["granularity"] == "unstructured"]
        if not pts:
            continue
        xs = [a["sparsity"] for a in pts]
        ax1.errorbar(xs, [a["float_pruned"] for a in pts], yerr=[a["float_pruned_std"] for a in pts],
                     marker=marker, capsize=3, label=name, ls="-" if name.startswith("one-shot") else ":")
    ax1.set_xlabel("sparsity (fraction of zero weights)")
    ax1.set_ylabel("held-out accuracy (float)")
    ax1.set_title("Unstructured pruning: criteria and schedules")
    ax1.legend(fontsize=8, loc="lower left")
    ax1.grid(alpha=0.3)

    rows = [a for a in agg if a["experiment"] == "dense"] + \
        [a for a in agg if a["experiment"] == "criteria" and a["schedule"] == "one-shot magnitude"
         and a["sparsity"] in (0.5, 0.8)] + [a for a in agg if a["experiment"] == "structure"]
    short = {"one-shot magnitude": "mag", "one-shot taylor": "taylor"}
    names = ["dense" if a["experiment"] == "dense" else
             f"{a['granularity']} {short.get(a['schedule'], a['schedule'])} {a['sparsity']:.0%}" for a in rows]
    x = np.arange(len(rows))
    wdt = 0.27
    for i, (f, lab) in enumerate((("float_pruned", "float"), ("integer", "integer 8/16"),
                                  ("integer_shared", "integer + 4-bit sharing"))):
        ax2.bar(x + (i - 1) * wdt, [a[f] for a in rows], wdt, yerr=[a[f + "_std"] for a in rows], capsize=2, label=lab)
    ax2.set_xticks(x, names, fontsize=8, rotation=35, ha="right")
    ax2.set_ylim(0.8, 1.0)
    ax2.set_ylabel("held-out accuracy")
    ax2.set_title("Structured sparsity, float vs integer")
    ax2.legend(fontsize=8, loc="lower left")
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    p.add_argument("--out", default="docs/results", help="output folder (default docs/results)")
    p.add_argument("--replot", action="store_true", help="rewrite accuracy.md/png from an existing accuracy.csv")
    from scripts import farm
    farm.add_arguments(p)  # given: the (seed, experiment) runs are Dask tasks
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        with open(out / "accuracy.csv", newline="") as f:
            rows = [{k: (v if k in ("experiment", "schedule", "method", "granularity") else float(v))
                     for k, v in r.items()} for r in csv.DictReader(f)]
        seconds = sum(r["seconds"] for r in rows)
        args.seeds = len({r["seed"] for r in rows})
    else:
        t0 = time.time()
        rows = sweep(args.seeds, lambda m: print(m, file=sys.stderr, flush=True), args.workers, args.cluster)
        seconds = time.time() - t0
        with open(out / "accuracy.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.4f}" if isinstance(v, float) and k not in ("sparsity", "seconds") else v)
                            for k, v in r.items()})
    agg = aggregate(rows)
    write_markdown(agg, args.seeds, seconds, out / "accuracy.md")
    plot(agg, out / "accuracy.png")
    print(f"wrote {out}/accuracy.csv, accuracy.md, accuracy.png ({seconds:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
