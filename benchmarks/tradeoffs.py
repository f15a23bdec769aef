"""The lecture's pruning trade-offs, measured: granularity x engine on two networks and one FPGA.

Lecture 4 (Han, EfficientML) ends with: unstructured = most sparsity but needs special hardware
(EIE); structured (channels) = speed-up on standard hardware but less sparsity; block-wise =
the best compromise. This benchmark puts a number on each claim. Rows (``ROWS``):

* unstructured 90 % on the EIE array; 2:4 (50 %) on the 2:4 engine;
* 2x2 and 4x4 blocks (90 %) on the block engine ``bsr``, when ``model.hw.engines`` has one
  (built on another branch; otherwise the rows show their accuracy and "not available");
* channels (50 % of the hidden units) on the dense engine, the pruned channels removed from the
  compiled matrices (``model.network.shrink``); dense (0 %) on the dense engine.

Each row compiles (``model.network.compile``: magnitude, iterative, the compile defaults) the
digits MLP (64-128-64-10, trained here) and LeNet-300-100 (``sparseflow zoo``, MNIST subset)
with the engine forced, at equal multipliers (``MULTIPLIERS``: 16 EIE PEs, 8 lanes of two), and
measures: sparsity (zero weights over all layers), held-out accuracy of the integer golden model
(every test image), weight memory bits including indices and pointers (the cost model's image
size, ``model.hw.costmodel``), RTL cycles per inference (the native Verilator run of ``--images``
test images through every layer; each output checked against the golden model), and the ECP5-85F
synthesis of the engine at that size (``verif.synth`` through ``benchmarks.synth_sweep``: its
32x32 self-test top, nextpnr seed 1; a point already in ``docs/results/synth_sweep.csv`` is
reused). Speed-ups are inferences per second (Fmax / cycles) per multiplier and per logic cell,
over the dense row's.

    python -m benchmarks.tradeoffs [--quick] [--images 100] [--seed 0] [--out docs/results]

``--quick``: 2 epochs per round, 1 round, 5 images, synthesis only from the CSV (a few minutes);
writes to ``build/tradeoffs_quick`` unless ``--out`` is given.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MULTIPLIERS = 16
TARGET = "ecp5-85f"
BLOCK_ENGINE = "bsr"

# (label, granularity, sparsity, engine, block size of the block engine)
ROWS = [
    ("unstructured", "unstructured", 0.9, "eie", None),
    ("2:4", "2:4", 0.5, "2:4", None),
    ("2x2 blocks", "block2x2", 0.9, BLOCK_ENGINE, 2),
    ("4x4 blocks", "block4x4", 0.9, BLOCK_ENGINE, 4),
    ("channels", "channel", 0.5, "dense", None),
    ("dense", "unstructured", 0.0, "dense", None),
]
FIELDS = ["network", "row", "granularity", "engine", "size", "block", "multipliers", "available", "target_sparsity",
          "sparsity", "acc_dense_float", "acc_pruned_float", "acc_integer", "memory_bits", "cycles", "images",
          "mismatches", "shapes", "logic_cells", "ffs", "bram", "dsp", "fmax_mhz", "speedup_per_multiplier",
          "speedup_per_cell", "compile_seconds", "run_seconds"]


def log(msg: str) -> None:
    print(f"[tradeoffs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def engine_size(name: str) -> int | None:
    """The build size (PEs, lanes, ...) with ``MULTIPLIERS`` multipliers, or None if the engine is unknown."""
    from model.hw.engines import ENGINES
    e = ENGINES.get(name)
    if e is None:
        return None
    size = 1
    while e.multipliers(size) < MULTIPLIERS:
        size *= 2
    return size


def compile_options(engine: str, size: int | None, block: int | None) -> dict:
    """CompileOptions keywords sizing ``engine`` at ``size`` (and its block size, if it takes one)."""
    from model.hw.engines import ENGINES
    from model.network.compile import CompileOptions
    fields = {f.name for f in dataclasses.fields(CompileOptions)}
    kw = {}
    if size is not None and engine in ENGINES and ENGINES[engine].size_option in fields:
        kw[ENGINES[engine].size_option] = size
    if block is not None:
        kw["block"] = block
    return kw


def networks(quick: bool, seed: int, work: Path) -> dict:
    """``{name: (model or path, data dict)}``: the digits MLP (trained here) and LeNet-300-100 (zoo)."""
    from model.nn.data import load_digits
    from model.nn.prune import PruneConfig
    from model.nn.prune.pipelines import train_dense
    from model.nn.mnist import load_mnist
    from model.nn.zoo import write_zoo
    d = load_digits()
    (xtr, ytr), (xte, yte) = d.float_train(), d.float_test()
    digits = {"x_train": xtr.numpy(), "y_train": ytr.numpy(), "x_test": xte.numpy(), "y_test": yte.numpy()}
    log("training the digits MLP (64-128-64-10)")
    mlp, _, _ = train_dense(PruneConfig(seed=seed, epochs=5 if quick else 30, progress=False), d)
    mlp.eval()
    log("training LeNet-300-100 on the MNIST subset (sparseflow zoo)")
    zoo = work / "zoo"
    write_zoo(zoo, ["lenet300100"], epochs=2 if quick else 10, seed=seed, progress=False)
    return {"digits MLP": (mlp, digits), "LeNet-300-100": (zoo / "lenet300100.onnx", dict(load_mnist()))}


def compile_net(model, data: dict, **options):
    """``sparseflow.compile`` from below the API layer: import, check the data, compile."""
    from model.nn.graph import load_model
    from model.network.compile import CompileOptions, check_data, compile_network, graph_classes
    graph = load_model(model, tuple(np.asarray(data["x_train"]).shape[1:]))
    data = check_data(data, graph.input_shape, graph_classes(graph))
    return compile_network(graph, data, CompileOptions(progress=False, **options))


def measure_row(net_name, model, data, row, args) -> dict:
    from model.hw.engines import ENGINES
    from model.network.folder import engine_configs
    from verif.netrun import prebuild, run_network
    label, gran, sparsity, engine, block = row
    available = engine in ENGINES
    size = engine_size(engine)
    out = {"network": net_name, "row": label, "granularity": gran, "engine": engine, "size": size, "block": block,
           "multipliers": ENGINES[engine].multipliers(size) if available else MULTIPLIERS,
           "available": int(available), "target_sparsity": sparsity}
    epochs = dict(epochs=2, rounds=1) if args.quick else {}
    kw = dict(granularity=gran, sparsity=sparsity, seed=args.seed, **epochs)
    if available:
        kw.update(engine=engine, **compile_options(engine, size, block))
    else:  # accuracy and sparsity do not depend on the engine: compile for the dense engine
        kw.update(engine="dense")
    log(f"{net_name} / {label}: compile ({gran}, sparsity {sparsity}, engine {kw['engine']})")
    t0 = time.time()
    net = compile_net(model, data, **kw)
    rep = net.report
    out.update(compile_seconds=round(time.time() - t0, 1), sparsity=round(rep["sparsity"]["total"], 4),
               acc_dense_float=rep["accuracy"]["dense_float"], acc_pruned_float=rep["accuracy"]["pruned_float"],
               acc_integer=rep["accuracy"]["integer_golden"],
               shapes=" ".join(f"{l['matrix'][0]}x{l['matrix'][1]}" for l in rep["layers"]))
    if not available:
        log(f"{net_name} / {label}: engine {engine!r} not available on this branch")
        return out
    out["memory_bits"] = sum(l["costs"][engine]["memory_bits"] for l in rep["layers"])
    m = net.net.meta
    cfgs = engine_configs(net.net, m.get("pes", 8), m.get("lanes", 4), m.get("fifo_depth", 8), kinds={engine})
    n = min(args.images, len(data["x_test"]))
    log(f"{net_name} / {label}: RTL ({engine} x{size}, Verilator native), {n} images")
    t0 = time.time()
    prebuild(cfgs, "verilator", "native")
    x = net.net.quantize_input(np.asarray(data["x_test"][:n]))
    res = run_network(net.net, x, cfgs, engines=[engine] * len(net.net.layers), sim="verilator", backend="native",
                      progress=False)
    out.update(cycles=round(sum(l["cycles"][engine]["per_inference"] for l in res["layers"]), 1), images=n,
               mismatches=res["mismatches"], run_seconds=round(time.time() - t0, 1))
    log(f"{net_name} / {label}: accuracy {out['acc_integer']:.4f}, {out['cycles']:.0f} cycles/inference, "
        f"{out['memory_bits']} weight bits, {res['mismatches']} mismatches")
    return out


SYNTH_CACHE = ROOT / "docs" / "results" / "tradeoffs_synth.json"


def synthesis(points: set, quick: bool) -> dict:
    """``{(engine, block): synthesis result}`` at ``TARGET`` for ``points`` {(engine, size, block)}.
    Engines without a block size come from ``docs/results/synth_sweep.csv`` (missing points are
    synthesized into it unless ``quick``); the block engine is synthesized at each row's block
    size (``verif.synth.synthesize(block=)``, cached in :data:`SYNTH_CACHE`): the sweep's CSV
    has one build per engine and size, with the default 4x4 blocks."""
    from benchmarks import synth_sweep

    def sweep_rows():
        return {(r["target"], r["engine"], int(r["size"])): r for r in synth_sweep.load(synth_sweep.CSV)
                if r["fits"] == "1"} if synth_sweep.CSV.exists() else {}

    have = sweep_rows()
    cache = json.loads(SYNTH_CACHE.read_text()) if SYNTH_CACHE.exists() else {}
    out = {}
    for engine, size, block in sorted(points, key=str):
        if block is None:
            key = (TARGET, engine, size)
            if key not in have and not quick:
                log(f"synthesis: {TARGET} {engine} x{size} (not in {synth_sweep.CSV.name}; this takes minutes)")
                synth_sweep.run_sweep([key], 32, 32, 0.25, 1, synth_sweep.CSV)
                have = sweep_rows()
            r = have.get(key)
        else:
            ckey = f"{TARGET}/{engine}/{size}/{block}x{block}"
            if ckey not in cache and not quick:
                from verif.synth import synthesize
                log(f"synthesis: {TARGET} {engine} x{size}, {block}x{block} blocks (this takes minutes)")
                (ROOT / "build").mkdir(exist_ok=True)
                with tempfile.TemporaryDirectory(prefix="tradeoffs-synth-", dir=ROOT / "build") as tmp:
                    res = synthesize(engine, size, TARGET, block=block, sim=None, bitstream=False,
                                     out=Path(tmp) / "flow")
                cache[ckey] = {k: res[k] for k in ("logic_cells", "ffs", "bram", "dsp", "fmax_mhz")}
                SYNTH_CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
            r = cache.get(ckey)
        if r:
            out[engine, block] = r
            log(f"synthesis: {TARGET} {engine} x{size}{f' {block}x{block}' if block else ''}: "
                f"{r['logic_cells']} cells, {float(r['fmax_mhz']):.1f} MHz")
    return out


def speedups(rows: list[dict], synth: dict) -> None:
    """Inferences per second (Fmax / cycles) per multiplier and per logic cell, over the dense row's."""
    for r in rows:
        s = synth.get((r["engine"], r.get("block"))) if r["available"] else None
        if s:
            r.update(logic_cells=int(s["logic_cells"]), ffs=int(s["ffs"]), bram=int(s["bram"]), dsp=int(s["dsp"]),
                     fmax_mhz=float(s["fmax_mhz"]))
    for net in {r["network"] for r in rows}:
        base = next((r for r in rows if r["network"] == net and r["row"] == "dense"), None)
        for r in rows:
            if r["network"] != net or not base or not r.get("cycles") or not r.get("fmax_mhz") or not base.get("fmax_mhz"):
                continue
            rate = r["fmax_mhz"] / r["cycles"]
            brate = base["fmax_mhz"] / base["cycles"]
            r["speedup_per_multiplier"] = round(rate / r["multipliers"] / (brate / base["multipliers"]), 3)
            r["speedup_per_cell"] = round(rate / r["logic_cells"] / (brate / base["logic_cells"]), 3)


def _cell(v, fmt="{}", na="n/a"):
    return na if v is None or v == "" else fmt.format(v)


def markdown(rows: list[dict], args, seconds: float) -> str:
    head = ("| pruning | engine (size) | sparsity | held-out accuracy (integer) | weight memory bits | "
            "RTL cycles / inference | logic cells | FFs | BRAM | DSP | Fmax MHz | speed-up per multiplier | "
            "speed-up per logic cell |")
    lines = ["# The lecture's pruning trade-offs, measured", "",
             f"Generated by `python -m benchmarks.tradeoffs{' --quick' if args.quick else ''} --images {args.images} "
             f"--seed {args.seed}` in {seconds:.0f} s. One seed. Every engine at {MULTIPLIERS} multipliers; "
             f"synthesis on {TARGET.upper()} (the engine's 32x32 self-test top, `benchmarks.synth_sweep`). "
             "Accuracy: the integer golden model on every held-out image (digits: 360, MNIST subset: 1,000); "
             "cycles: the RTL counters (Verilator, native harness), mean over the first images, every output "
             "checked against the golden model. Memory: weight image bits with indices and pointers. "
             "Speed-ups: inferences per second (Fmax / cycles) per multiplier and per logic cell, relative to "
             "the dense row. \"n/a\": the engine is not in the registry. Details: "
             "[../pruning.md](../pruning.md#the-trade-offs-measured).", ""]
    for net in dict.fromkeys(r["network"] for r in rows):
        rs = [r for r in rows if r["network"] == net]
        dense = next((r for r in rs if r["row"] == "dense"), {})
        lines += [f"## {net}", "", f"Dense float {dense.get('acc_dense_float', float('nan')):.3f} before "
                  "compile's retraining. Matrix shapes per row in `tradeoffs.csv`.", "", head,
                  "|" + "---|" * (head.count("|") - 1)]
        for r in rs:
            eng = f"{r['engine']} ({r['size']})" if r["available"] else f"{r['engine']} (not available)"
            mism = "" if not r.get("mismatches") else f" **{r['mismatches']} mismatches**"
            lines.append(
                f"| {r['row']} | {eng} | {r['sparsity']:.3f} | {r['acc_integer']:.3f} | "
                f"{_cell(r.get('memory_bits'), '{:,}')} | {_cell(r.get('cycles'), '{:,.0f}')}{mism} | "
                f"{_cell(r.get('logic_cells'))} | {_cell(r.get('ffs'))} | {_cell(r.get('bram'))} | "
                f"{_cell(r.get('dsp'))} | {_cell(r.get('fmax_mhz'), '{:.1f}')} | "
                f"{_cell(r.get('speedup_per_multiplier'), '{:.2f}x')} | {_cell(r.get('speedup_per_cell'), '{:.2f}x')} |")
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    nets = list(dict.fromkeys(r["network"] for r in rows))
    labels = list(dict.fromkeys(r["row"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    x = np.arange(len(labels))
    wdt = 0.8 / len(nets)
    panels = (("acc_integer", "held-out accuracy (integer)", None), ("memory_bits", "weight memory (kbit)", 1e-3),
              ("speedup_per_cell", "speed-up per logic cell vs dense", None))
    for ax, (key, title, scale) in zip(axes, panels):
        for i, net in enumerate(nets):
            vals = []
            for lab in labels:
                r = next((r for r in rows if r["network"] == net and r["row"] == lab), {})
                v = r.get(key)
                vals.append(np.nan if v in (None, "") else float(v) * (scale or 1))
            bars = ax.bar(x + (i - (len(nets) - 1) / 2) * wdt, np.nan_to_num(vals), wdt, label=net)
            for b, v in zip(bars, vals):
                if np.isnan(v):
                    ax.annotate("n/a", (b.get_x() + b.get_width() / 2, 0.01), xycoords=("data", "axes fraction"),
                                ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
        if key == "acc_integer":
            lo = min((float(r["acc_integer"]) for r in rows), default=0.8)
            ax.set_ylim(max(0.0, lo - 0.05), 1.0)
        if key == "memory_bits":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(f"Pruning granularity x engine at {MULTIPLIERS} multipliers ({TARGET.upper()})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short training, 5 images, synthesis from the CSV only")
    p.add_argument("--images", type=int, default=None, help="test images through the RTL per row (default 100; quick 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default docs/results; quick: build/tradeoffs_quick)")
    p.add_argument("--only", default=None, help="comma-separated row labels (e.g. 'dense,channels')")
    p.add_argument("--replot", action="store_true", help="redraw tradeoffs.png from the folder's tradeoffs.csv")
    p.add_argument("--rehardware", type=float, default=None, metavar="SECONDS",
                   help="recompute only the hardware columns (synthesis, speed-ups) of the folder's tradeoffs.csv; "
                        "SECONDS: the measuring run's time, for the report")
    args = p.parse_args(argv)
    args.images = args.images or (5 if args.quick else 100)
    if args.images < 1:
        p.error("--images must be >= 1")
    out = Path(args.out or (ROOT / ("build/tradeoffs_quick" if args.quick else "docs/results")))
    out.mkdir(parents=True, exist_ok=True)
    if args.replot or args.rehardware is not None:
        blocks = {r[0]: r[4] for r in ROWS}
        with open(out / "tradeoffs.csv", newline="") as fh:
            rows = [{k: (v if k in ("network", "row", "granularity", "engine", "shapes") else (float(v) if v not in ("", None) else None))
                     for k, v in r.items()} for r in csv.DictReader(fh)]
        if args.replot:
            plot(rows, out / "tradeoffs.png")
            return 0
        for r in rows:
            r.update(block=blocks.get(r["row"]))
            for k in ("size", "available", "multipliers", "memory_bits", "images", "mismatches"):
                if r.get(k) is not None:
                    r[k] = int(r[k])
        write_outputs(rows, args, out, args.rehardware)
        return 0
    rows_cfg = [r for r in ROWS if not args.only or r[0] in args.only.split(",")]
    import torch
    torch.set_num_threads(1)
    t0 = time.time()
    (ROOT / "build").mkdir(exist_ok=True)
    # A private folder for the zoo network: two runs side by side must not overwrite each other's.
    with tempfile.TemporaryDirectory(prefix="tradeoffs-", dir=ROOT / "build") as work:
        nets = networks(args.quick, args.seed, Path(work))
        rows = []
        total = len(nets) * len(rows_cfg)
        for name, (model, data) in nets.items():
            for row in rows_cfg:
                log(f"row {len(rows) + 1}/{total}")
                rows.append(measure_row(name, model, data, row, args))
    seconds = time.time() - t0
    write_outputs(rows, args, out, seconds)
    bad = sum(int(r.get("mismatches") or 0) for r in rows)
    if bad:
        log(f"{bad} RTL outputs differ from the golden model")
    print(json.dumps({"rows": len(rows), "mismatches": bad, "seconds": round(seconds)}))
    return 1 if bad else 0


def write_outputs(rows: list[dict], args, out: Path, seconds: float) -> None:
    """The hardware columns (synthesis and speed-ups), then the CSV, markdown and plot."""
    speedups(rows, synthesis({(r["engine"], r["size"], r.get("block")) for r in rows if r["available"]}, args.quick))
    with open(out / "tradeoffs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in FIELDS})
    (out / "tradeoffs.md").write_text(markdown(rows, args, seconds))
    plot(rows, out / "tradeoffs.png")
    log(f"wrote {out}/tradeoffs.csv, tradeoffs.md, tradeoffs.png")


if __name__ == "__main__":
    sys.exit(main())
