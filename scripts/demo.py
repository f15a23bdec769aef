"""The end-to-end demo: a pruned digits MLP on the simulated hardware, bit-exact, with a report.

Stages (each timed, progress on stderr):

1. train the dense MLP on the digits training split;
2. prune it twice with the same criterion and fine-tune: unstructured (for the EIE array) and
   2:4 (for the 2:4 engine);
3. quantize both (``model.nn.quant``: int8 weights, int16 activations, per-layer shifts); with
   ``share_bits`` the unstructured net also gets EIE weight sharing (a ``2**share_bits``-entry
   codebook per layer) and runs on the array in codebook mode; the report gives its held-out
   accuracy with and without sharing. Each EIE layer's relative-index width is the cost
   model's (``model.hw.costmodel.choose_index_bits``, on training-set activations) unless
   ``index_bits`` forces one; the array's index field is as wide as the widest candidate;
4. emit each layer's memory image (EIE interleaved CSC; 2:4 compressed) with its manifest;
5. run every held-out test image through the RTL, layer by layer, each layer's outputs (ReLU and
   requantization done in hardware) feeding the next: the unstructured net on the EIE array, the
   2:4 net on the 2:4 engine, both nets on the dense baseline with the same multipliers;
6. pick an engine per layer from the cycle and memory model (``model.hw.costmodel``) for the 2:4
   net, and run that mixed network on the hardware too;
7. check every output against the golden integer model, and write the report.

Any RTL output that differs from the golden model makes the demo fail (exit 1).
"""
from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from model.hw.config import DEFAULT_FRONTEND_WIDTH, Arith, EIEConfig, Requant, Sparse24Config, pow2_ceil
from model.hw.engines import DENSE, EIE, SPARSE24
from model.errors import SparseFlowError
from model.outputs import json_default


@dataclass
class DemoOptions:
    hidden: tuple[int, ...] = (128, 64)
    sparsity: float = 0.9          # of the unstructured (EIE) network
    method: str = "taylor"
    schedule: str = "iterative"    # of the unstructured network (the 2:4 one is one-shot)
    scope: str = "layer"
    pes: int = 8                   # EIE PEs = multipliers
    lanes: int = 4                 # 2:4 / dense lanes (2 multipliers each)
    fifo_depth: int = 8
    frontend_width: int = DEFAULT_FRONTEND_WIDTH  # EIE activations per input word (1: one element)
    sim: str = "verilator"
    backend: str | None = None     # None: native on Verilator, cocotb on Icarus
    out: Path = Path("build/demo")
    seed: int = 0
    limit: int | None = None       # held-out images to run (default: all)
    epochs: int = 30
    finetune_epochs: int = 15
    sweep: bool = True             # the small accuracy-vs-sparsity sweep for the report
    dense_limit: int | None = None  # images run on the dense baselines (their timing is data-independent);
                                    # None: all with the native backend, 40 with cocotb
    share_bits: int | None = None  # EIE weight sharing: codebook bits (None: off)
    index_bits: int | None = None  # EIE relative-index width of every layer (None: the cost model's per layer)

    def check(self) -> None:
        from model.nn.prune.criteria import METHODS
        from verif.runner import SIMULATORS
        if self.schedule not in ("oneshot", "iterative", "lth"):
            raise SparseFlowError(f"the demo prunes with oneshot, iterative or lth, not {self.schedule!r}")
        if self.method not in METHODS:
            raise SparseFlowError(f"unknown pruning method {self.method!r} (choose from {', '.join(METHODS)})")
        if not 0.0 <= self.sparsity < 1.0:
            raise SparseFlowError(f"sparsity must be in [0, 1), not {self.sparsity}")
        if self.sim not in SIMULATORS:
            raise SparseFlowError(f"unknown simulator {self.sim!r}; choose one of {', '.join(SIMULATORS)}")
        from verif.native import check_backend
        self.backend = check_backend(self.backend, self.sim)
        for name in ("pes", "lanes", "fifo_depth", "frontend_width", "epochs", "dense_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SparseFlowError(f"{name.replace('_', ' ')} must be >= 1, not {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise SparseFlowError(f"limit must be >= 1, not {self.limit}")
        if self.share_bits is not None and not 1 <= self.share_bits <= 8:
            raise SparseFlowError(f"weight sharing bits must be in 1..8, not {self.share_bits}")
        if self.index_bits is not None and not 1 <= self.index_bits <= 16:
            raise SparseFlowError(f"index bits must be in 1..16, not {self.index_bits}")
        if any(h % 4 for h in self.hidden):
            raise SparseFlowError(f"hidden sizes must be multiples of 4 (2:4 groups), not {list(self.hidden)}")


class Stages:
    """Times each stage and prints progress lines on stderr."""

    def __init__(self, quiet: bool = False):
        self.t0 = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.quiet = quiet

    def say(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str):
        self.say(f"{name} ...")
        t = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t

    @property
    def total(self) -> float:
        return time.perf_counter() - self.t0


def _max_dims(shapes) -> tuple[int, int]:
    """Largest rows and columns over the layer shapes, rounded up to powers of two."""
    return pow2_ceil(max(r for r, _ in shapes)), pow2_ceil(max(c for _, c in shapes))


def eie_config(shapes, opts: DemoOptions, weight_bits: int, act_bits: int) -> EIEConfig:
    """One EIE build for every layer shape the demo runs on it (shift/ReLU are run-time registers).

    Sized from the shapes alone (a PE never holds more than ``rows_per_pe`` entries per column,
    padding included), so the build can start before the network is trained.
    """
    from model.hw.costmodel import INDEX_WIDTHS
    rows, cols = _max_dims(shapes)
    cfg = EIEConfig(n_pes=opts.pes, fifo_depth=opts.fifo_depth, max_rows=rows, max_entries=1,
                    frontend_width=opts.frontend_width,
                    arith=Arith(weight_bits, act_bits, max_cols=cols, requant=Requant()),
                    index_bits=opts.index_bits or max(INDEX_WIDTHS), codebook=opts.share_bits is not None,
                    codebook_bits=opts.share_bits or EIEConfig.codebook_bits)
    return cfg.with_(max_entries=pow2_ceil(cfg.rows_per_pe * cols))


def index_widths(q, calib: list[np.ndarray], cfg: EIEConfig, forced: int | None) -> list[dict]:
    """Per layer of ``q``: the relative-index width (``forced``, else the cost model's on the
    activations ``calib``) with the per-width costs compared (``model.hw.costmodel``)."""
    from model.hw.costmodel import INDEX_WIDTHS, choose_index_bits, index_width_costs
    candidates = (forced,) if forced else tuple(b for b in INDEX_WIDTHS if b <= cfg.index_bits)
    out = []
    for i, l in enumerate(q.layers):
        costs = index_width_costs(l.weight, calib[i], cfg, widths=candidates)
        bits = choose_index_bits(costs)
        out.append({"layer": i, "index_bits": bits, "bits_per_nonzero": costs[bits]["bits_per_nonzero"],
                    "padding_entries": costs[bits]["padding_entries"], "widths": costs})
    return out


def lane_config(shapes, lanes: int, weight_bits: int, act_bits: int) -> Sparse24Config:
    rows, cols = _max_dims(shapes)
    return Sparse24Config(lanes=lanes, max_rows=rows,
                          arith=Arith(weight_bits, act_bits, max_cols=max(cols, 4), requant=Requant()))


def _with_requant(cfg, layer):
    return cfg.with_(arith=replace(cfg.arith, requant=Requant(layer.shift, layer.relu)))


def run_layer(engine: str, layer, x: np.ndarray, cfgs: dict, sim: str, backend: str = "cocotb",
              index_bits: int | None = None) -> dict:
    """One layer on one engine; returns outputs and per-vector cycles (RTL-checked by the callee).
    On the EIE array: encoded at ``index_bits`` (default the build's), from its codebook indices
    when the build is in codebook mode."""
    if engine == EIE.name:
        from model.hw.cyclemodel import ideal_cycles
        from verif.spmv_eie import run_jobs
        cfg = cfgs[EIE.name]
        rq = Requant(layer.shift, layer.relu)
        job = ((layer.indices, x, rq, layer.codebook, None, index_bits) if cfg.codebook else
               (layer.weight, x, rq, None, None, index_bits))
        r = run_jobs([job], cfg, sim=sim, backend=backend)[0]
        ideal = [ideal_cycles(layer.weight, x[:, b], cfg.n_pes) for b in range(x.shape[1])]
        return {"y": r["y"], "cycles": r["cycles"], "ideal": ideal, "busy": r["busy"],
                "multipliers": cfg.n_pes}
    from verif.spmv_sparse24 import run_spmv
    cfg = _with_requant(cfgs[engine], layer)
    r = run_spmv(layer.weight, x, cfg, sim=sim, dense=(engine == DENSE.name), backend=backend)
    return {"y": r["y"], "cycles": r["cycles"], "multipliers": cfg.multipliers}


def run_network(qnet, engines: list[str], x_int: np.ndarray, golden: list[np.ndarray], cfgs: dict,
                sim: str, stages: Stages, label: str, backend: str = "cocotb", widths: list[dict] | None = None) -> dict:
    """Every layer on its engine, RTL outputs feeding the next layer; counts golden mismatches.
    ``widths``: :func:`index_widths` of ``qnet`` (EIE layers encoded at their chosen width)."""
    x = x_int
    layers, mismatches = [], 0
    for i, (layer, engine) in enumerate(zip(qnet.layers, engines)):
        stages.say(f"  {label}: layer {i} {layer.weight.shape[0]}x{layer.weight.shape[1]} on {engine}, "
                   f"{x.shape[1]} vectors")
        r = run_layer(engine, layer, x, cfgs, sim, backend, widths[i]["index_bits"] if widths else None)
        bad = int(np.count_nonzero(r["y"] != golden[i + 1]))
        mismatches += bad
        layers.append({"engine": engine, "shape": list(layer.weight.shape), "mismatches": bad,
                       "cycles_mean": float(np.mean(r["cycles"])),
                       "ideal_mean": float(np.mean(r["ideal"])) if "ideal" in r else None,
                       "multipliers": r["multipliers"], "cycles": r["cycles"]})
        x = r["y"]
    pred = np.argmax(x, axis=0)
    return {"layers": layers, "mismatches": mismatches, "predictions": pred,
            "cycles_per_inference": float(sum(l["cycles_mean"] for l in layers))}


def accuracy_sweep(data, dense, init_state, opts: DemoOptions, stages: Stages) -> list[dict]:
    """A small accuracy-vs-sparsity sweep (one-shot + fine-tune) for the report's plot."""
    from model.nn.prune.pipelines import PruneConfig, run
    rows = []
    for method in ("magnitude", "taylor", "random"):
        for s in (0.5, 0.8, 0.9, 0.95):
            cfg = PruneConfig(method=method, granularity="unstructured", sparsity=s, schedule="oneshot",
                              hidden=opts.hidden, seed=opts.seed, epochs=opts.epochs,
                              finetune_epochs=opts.finetune_epochs, progress=False)
            res = run(cfg, data, dense=dense, init_state=init_state)
            rows.append({"method": method, "sparsity": s, "accuracy": res.pruned_acc})
    stages.say(f"  sweep: {len(rows)} pruned networks")
    return rows


def run_demo(opts: DemoOptions, quiet: bool = False) -> dict:
    opts.check()
    import torch
    from model.hw.costmodel import choose, layer_costs
    from model.nn.data import load_digits
    from model.hw.formats import get as get_format
    from model.hw.images import write_image
    from model.nn.prune.pipelines import PruneConfig, run, train_dense
    from model.nn.quant import quantize, share_weights

    torch.set_num_threads(1)
    stages = Stages(quiet)
    out = Path(opts.out)
    data = load_digits()
    n = len(data.x_test) if opts.limit is None else min(opts.limit, len(data.x_test))
    x_test = data.x_test[:n].T.astype(np.int64)   # (64, n): columns are images
    y_test = np.asarray(data.y_test[:n])

    wb, ab = 8, 16  # model.nn.quant's defaults: int8 weights, int16 activations
    dims = (64, *opts.hidden, 10)
    shapes = [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]
    dense_lanes = max(1, opts.pes // 2)  # N EIE PEs are N multipliers: a dense engine of N/2 lanes
    cfgs = {EIE.name: eie_config(shapes, opts, wb, ab),
            SPARSE24.name: lane_config(shapes, opts.lanes, wb, ab),
            DENSE.name: lane_config(shapes, opts.lanes, wb, ab),
            "dense-eie": lane_config(shapes, dense_lanes, wb, ab)}
    if dense_lanes == opts.lanes:
        del cfgs["dense-eie"]
    pool = ThreadPoolExecutor(max_workers=2)
    # Verilator builds take a while: they run on the other core while the network trains.
    from verif.netrun import prebuild
    builds = pool.submit(prebuild, cfgs, opts.sim, opts.backend)

    base = dict(method=opts.method, hidden=opts.hidden, seed=opts.seed, epochs=opts.epochs,
                finetune_epochs=opts.finetune_epochs, progress=not quiet)
    with stages.stage("train dense MLP"):
        dense, init_state, _ = train_dense(PruneConfig(**base), data)
    with stages.stage("prune + fine-tune"):
        unstr = run(PruneConfig(granularity="unstructured", sparsity=opts.sparsity, schedule=opts.schedule,
                                scope=opts.scope, **base), data, dense=dense, init_state=init_state)
        s24 = run(PruneConfig(granularity="2:4", sparsity=0.5, **base), data, dense=dense, init_state=init_state)
    sweep = []
    if opts.sweep:
        with stages.stage("accuracy sweep"):
            sweep = accuracy_sweep(data, dense, init_state, opts, stages)
    with stages.stage("quantize"):
        q_plain = quantize(unstr.model, data.x_train, weight_bits=wb, act_bits=ab)
        # with sharing the EIE net is the codebook net (shifts recalibrated), else the plain one
        q_u = q_plain if opts.share_bits is None else share_weights(q_plain, data.x_train, bits=opts.share_bits)
        q_24 = quantize(s24.model, data.x_train, weight_bits=wb, act_bits=ab)
        gold_u = q_u.activations(x_test)
        gold_24 = q_24.activations(x_test)

    # Per-layer choices (relative-index width; engine for the 2:4 network), costed on
    # training-set activations (never the test set).
    with stages.stage("per-layer index width and engine choice"):
        x_cal = data.x_train[:64].T.astype(np.int64)
        widths = index_widths(q_u, q_u.activations(x_cal), cfgs[EIE.name], opts.index_bits)
        calib = q_24.activations(x_cal)
        plain = cfgs[EIE.name].with_(arith=Arith(wb, ab, max_cols=cfgs[EIE.name].max_cols), codebook=False)
        widths_24 = index_widths(q_24, calib, plain, opts.index_bits)
        choice = []
        for i, l in enumerate(q_24.layers):
            costs = layer_costs(l.weight, calib[i], plain.with_(index_bits=widths_24[i]["index_bits"]), opts.lanes)
            if cfgs[EIE.name].codebook:  # the array is built in codebook mode; this net has no codebooks
                del costs[EIE.name]
            choice.append({"layer": i, "costs": costs, "engine": choose(costs)})

    with stages.stage("emit memory images"):
        from model.hw.formats import eie as eie_fmt
        images = []
        for name, q, engine in (("eie", q_u, EIE), ("2to4", q_24, SPARSE24)):
            fmt, cfg = get_format(engine.image_format), cfgs[engine.name]
            for i, l in enumerate(q.layers):
                path = out / "images" / f"{name}_layer{i}"
                path.parent.mkdir(parents=True, exist_ok=True)
                if engine is EIE:
                    lcfg = cfg.with_(index_bits=widths[i]["index_bits"])
                    m = eie_fmt.encode(l.indices, lcfg, l.codebook) if cfg.codebook else eie_fmt.encode(l.weight, lcfg)
                    summary = write_image(path, m, lcfg)
                else:
                    summary = write_image(path, fmt.encode(l.weight, cfg), cfg)
                images.append({"path": str(path), "format": fmt.name, "summary": summary})

    with stages.stage("wait for the Verilator builds"):
        builds.result()
    runs = {}
    sim, be = opts.sim, opts.backend
    with stages.stage(f"RTL: EIE net on the EIE array || 2:4 net on the 2:4 engine ({sim}, {be})"):
        f_eie = pool.submit(run_network, q_u, [EIE.name] * len(q_u.layers), x_test, gold_u, cfgs, sim, stages,
                            "EIE", be, widths)
        f_24 = pool.submit(run_network, q_24, [SPARSE24.name] * len(q_24.layers), x_test, gold_24, cfgs, sim,
                           stages, "2:4", be)
        runs[EIE.name], runs[SPARSE24.name] = f_eie.result(), f_24.result()
    # The dense engine's timing depends only on the layer shapes (checked below: every vector of
    # a layer takes the same cycles), so it runs the first ``dense_limit`` images only.
    nd = min(opts.dense_limit or (n if be == "native" else 40), n)
    with stages.stage(f"RTL: dense baselines on {nd} images || mixed per-layer engines ({sim}, {be})"):
        f_mixed = pool.submit(run_network, q_24, [c["engine"] for c in choice], x_test, gold_24, cfgs, sim,
                              stages, "mixed", be, widths_24)
        runs["dense(2:4 net)"] = run_network(q_24, [DENSE.name] * len(q_24.layers), x_test[:, :nd],
                                             [g[:, :nd] for g in gold_24], cfgs, sim, stages, "dense", be)
        cfgs_e = dict(cfgs, **{DENSE.name: cfgs.get("dense-eie", cfgs[DENSE.name])})
        runs["dense(eie net)"] = run_network(q_u, [DENSE.name] * len(q_u.layers), x_test[:, :nd],
                                             [g[:, :nd] for g in gold_u], cfgs_e, sim, stages, "dense", be)
        runs["mixed"] = f_mixed.result()
    pool.shutdown()
    for k in ("dense(2:4 net)", "dense(eie net)"):
        for l in runs[k]["layers"]:
            first, rest = l["cycles"][0], set(l["cycles"][1:])
            if len(rest) > 1:
                raise RuntimeError(f"{k}: the dense engine's cycles vary between vectors ({sorted(rest)}); "
                                   f"its subset cannot stand for the whole test set")
            # Back to back, the counters add up to the batch time: the first vector carries the
            # pipeline fill, every later one the same steady-state count. Extrapolate to n images.
            steady = rest.pop() if rest else first
            l["cycles_mean"] = (first + (n - 1) * steady) / n
        runs[k]["cycles_per_inference"] = float(sum(l["cycles_mean"] for l in runs[k]["layers"]))
    dense_for_eie = runs["dense(eie net)"]["cycles_per_inference"]

    acc = lambda pred: float(np.mean(pred == y_test))
    result = {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "test_images": n,
        "accuracy": {
            "float_dense": unstr.dense_acc,
            "eie": {"float_pruned": unstr.pruned_acc, "integer_golden": q_u.accuracy(x_test, y_test),
                    "rtl": acc(runs[EIE.name]["predictions"]),
                    **({"integer_golden_unshared": q_plain.accuracy(x_test, y_test)} if opts.share_bits else {})},
            "2:4": {"float_pruned": s24.pruned_acc, "integer_golden": q_24.accuracy(x_test, y_test),
                    "rtl": acc(runs[SPARSE24.name]["predictions"])},
            "mixed": {"rtl": acc(runs["mixed"]["predictions"])},
        },
        "sparsity": {"eie": unstr.sparsity, "2:4": s24.sparsity},
        "shifts": {"eie": q_u.shifts, "2:4": q_24.shifts},
        "configs": {k: str(v) for k, v in cfgs.items()},
        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "predictions"} for k, v in runs.items()},
        "mismatches": int(sum(r["mismatches"] for r in runs.values())),
        "outputs_checked": int(sum(sum(l["shape"][0] * len(l["cycles"]) for l in r["layers"]) for r in runs.values())),
        "dense_images": nd,
        "speedup": {
            "eie_vs_dense": dense_for_eie / runs[EIE.name]["cycles_per_inference"],
            "2:4_vs_dense": runs["dense(2:4 net)"]["cycles_per_inference"] / runs[SPARSE24.name]["cycles_per_inference"],
            "mixed_vs_dense": runs["dense(2:4 net)"]["cycles_per_inference"] / runs["mixed"]["cycles_per_inference"],
        },
        "eie_efficiency": [
            (l["ideal_mean"] / l["cycles_mean"]) if l["cycles_mean"] else 1.0 for l in runs[EIE.name]["layers"]],
        "choice": choice,
        "index_widths": [{k: v for k, v in w.items() if k != "widths"} | {"candidates": w["widths"]} for w in widths],
        "index_bits_forced": opts.index_bits,
        "images": images,
        "sweep": sweep,
    }
    with stages.stage("report"):
        from scripts.demo_report import write_report
        write_report(out, result, q_u, q_24, cfgs, stages)
    result["seconds"] = dict(stages.seconds, total=stages.total)
    (out / "summary.json").write_text(json.dumps(result, indent=2, default=json_default) + "\n")
    return result
