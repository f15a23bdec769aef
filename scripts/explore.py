"""Design-space exploration (``sparseflow explore``): the tasks, the sweep and its report.

A point is (sparsity, granularity, engine, size, queue depth, target). Work is split where it
is shared, and each piece is one task (a pure function of its configuration and input bytes,
:mod:`scripts.farm`) whose result is one row of the store (:mod:`scripts.store`):

* ``graph`` (once): the float network: the digits MLP trained densely from the seed, or the
  imported file (``--layer``: the matrix);
* ``compile`` (per sparsity and granularity): prune, fine-tune and quantize the network
  (``model.network.compile``, one-shot), held-out accuracy of the integer golden model;
  the integer network travels on as pickled bytes;
* ``cost`` (per compiled network, engine, size, queue depth): cycles per inference on a sample
  of training images (``model.hw.costmodel``; exact for EIE), weight-memory bits; for a sampled
  few, the same images through the simulated RTL (``verif.netrun``), whose cycles are stored
  beside the model's;
* ``point`` (per cost row and target, in the driving process: it is arithmetic): the resource
  estimator's logic cells, FFs, BRAM, DSP and Fmax (``model.hw.estimator``), latency = cycles /
  Fmax, whether the build fits the device;
* ``synth`` (``--synth-top K``): real synthesis of the Pareto-optimal engine builds.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.errors import SparseFlowError
from model.hw.config import DEFAULT_FRONTEND_WIDTH
from model.hw.engines import EIE

DIGITS = "digits-mlp"
SAMPLE = 64          # training images the cycle model averages over
FILES = ("results.sqlite", "results.sqlite-journal", "points.csv", "pareto.png", "report.md")
POINT_FIELDS = ["target", "engine", "size", "fifo_depth", "sparsity", "granularity", "status", "accuracy",
                "cycles", "latency_us", "memory_bits", "logic_cells", "ffs", "bram", "weight_bram", "dsp",
                "fmax_mhz", "fits", "extrapolated", "pareto", "rtl_cycles", "rtl_mismatches", "note", "key"]


@dataclass
class Grid:
    """What ``sparseflow explore`` sweeps (the options, checked)."""

    engines: list[str]
    sizes: list[int]
    sparsity: list[float]
    targets: list[str]
    fifo_depths: list = field(default_factory=lambda: ["auto"])  # "auto": each target's default depth
    granularities: list[str] = field(default_factory=lambda: ["auto"])
    seed: int = 0
    finetune_epochs: int = 8
    rtl_check: int = 2       # points whose cycles are also measured on the simulated RTL
    rtl_images: int = 4
    synth_top: int = 0
    quality: str = "held-out accuracy (integer golden model)"  # what the accuracy column is


def parse_list(text: str, kind, opt: str) -> list:
    vals = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            vals.append(kind(part))
        except ValueError:
            raise SparseFlowError(f"{opt}: {part!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not vals:
        raise SparseFlowError(f"{opt} is empty")
    return list(dict.fromkeys(vals))


def check_grid(g: Grid) -> None:
    from model.hw.engines import get as get_engine
    from model.nn.prune import GRANULARITIES
    from verif.synth import get_target
    for e in g.engines:
        get_engine(e)
    for t in g.targets:
        get_target(t)
    for n in g.sizes + [d for d in g.fifo_depths if d != "auto"]:
        if n < 1 or n > 64:
            raise SparseFlowError(f"sizes and queue depths must be in 1..64, not {n}")
    for s in g.sparsity:
        if not 0.0 <= s < 1.0:
            raise SparseFlowError(f"--sparsity values must be in [0, 1), not {s}")
    for gr in g.granularities:
        if gr != "auto" and gr not in GRANULARITIES:
            raise SparseFlowError(f"unknown granularity {gr!r} (choose from auto, {', '.join(GRANULARITIES)})")
    lows = {"rtl_check": 0, "synth_top": 0, "finetune_epochs": 0, "rtl_images": 1}
    bad = next((k for k, lo in lows.items() if getattr(g, k) < lo), None)
    if bad:
        raise SparseFlowError(f"--{bad.replace('_', '-')} must be >= {lows[bad]}, not {getattr(g, bad)}")


# ----------------------------------------------------------------------------- inputs as bytes

def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def npz_load(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def digits_data() -> dict:
    """The digits split as float inputs in [0, 1] (what the digits MLP takes)."""
    from model.nn.data import INPUT_SCALE, load_digits
    d = load_digits()
    return {"x_train": (d.x_train * INPUT_SCALE).astype(np.float32), "y_train": d.y_train,
            "x_test": (d.x_test * INPUT_SCALE).astype(np.float32), "y_test": d.y_test}


def layer_inputs(path: str) -> tuple[dict, bytes, dict]:
    """``inputs`` for ``--layer W.npy``: one weight matrix (float or integer), no data set."""
    from scripts.npyio import load_npy
    w = load_npy(path, "--layer")
    if w.ndim != 2 or 0 in w.shape or not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise SparseFlowError(f"--layer {path}: expected a 2-D real matrix, not shape {w.shape} {w.dtype}")
    if not np.all(np.isfinite(w)):
        raise SparseFlowError(f"--layer {path}: the matrix has non-finite values")
    b = npz_bytes({"w": w.astype(np.float64)})
    return {"kind": "layer", "bytes": b}, b"", {"layer": hashlib.sha256(b).hexdigest()[:16]}


def inputs(model: str | None, data: str | None) -> tuple[dict, bytes, dict]:
    """``(source, data_bytes, identity)``: what the compile tasks take, read here once.

    ``source`` is ``{"kind": "digits"}`` (the built-in MLP, trained on the workers from its seed)
    or ``{"kind": "file", "suffix": ".onnx", "bytes": ...}``; ``identity`` names both by hash for
    the store keys."""
    if (model is None) != (data is None):
        raise SparseFlowError("--model and --data go together (neither: the built-in digits MLP)")
    if model is None:
        b = npz_bytes(digits_data())
        return {"kind": "digits"}, b, {"model": DIGITS, "data": hashlib.sha256(b).hexdigest()[:16]}
    from model.network.compile import load_data
    load_data(data)  # a readable data set with the keys, checked before any work
    try:
        mb, db = Path(model).read_bytes(), Path(data).read_bytes()
    except OSError as exc:
        raise SparseFlowError(f"{exc.filename}: {exc.strerror}") from None
    return ({"kind": "file", "suffix": Path(model).suffix, "bytes": mb}, db,
            {"model": hashlib.sha256(mb).hexdigest()[:16], "data": hashlib.sha256(db).hexdigest()[:16]})


def _digits_graph(seed: int):
    """The digits MLP trained densely (seeded: the same network on every worker), as a float graph."""
    from model.nn.data import load_digits
    from model.nn.graph import load_model
    from model.nn.prune import PruneConfig
    from model.nn.prune.pipelines import train_dense
    dense, _, _ = train_dense(PruneConfig(seed=seed, progress=False), load_digits())
    return load_model(dense, (64,), name=DIGITS)


def _graph(source: dict, seed: int):
    if source["kind"] == "layer":
        return npz_load(source["bytes"])["w"]
    if source["kind"] == "digits":
        return _digits_graph(seed)
    import tempfile
    from model.nn.graph import load_model
    with tempfile.TemporaryDirectory() as tmp:  # the importers read files; this one is the worker's own
        p = Path(tmp) / ("net" + source["suffix"])
        p.write_bytes(source["bytes"])
        g = load_model(str(p))
    g.source = g.source.replace(str(p), p.name)  # not the worker's temporary path: the same graph anywhere
    return g


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)  # one worker process per core: no oversubscription


# ----------------------------------------------------------------------------- tasks

def warm_task() -> None:
    """Import what the tasks need (torch above all) and take torch's first optimizer step: run on
    every worker after the first tasks are placed, it fills the wait of the workers that idle
    while the first network trains (their first compile then runs without the imports)."""
    _one_thread()
    import torch

    import importlib
    for name in ("model.network.compile", "model.network.engines", "model.nn.prune.pipelines", "model.nn.quant"):
        importlib.import_module(name)
    m = torch.nn.Linear(2, 2)  # a first optimizer step: torch imports more on first use (~1 s)
    opt = torch.optim.Adam(m.parameters())
    m(torch.zeros(1, 2)).sum().backward()
    opt.step()


def graph_task(source: dict, seed: int) -> dict:
    """The float network: the digits MLP trained densely from ``seed``, or the imported file."""
    _one_thread()
    return {"status": "ok", "_blob": pickle.dumps(_graph(source, seed))}


def compile_task(graph_blob: bytes, data_bytes: bytes, cfg: dict) -> dict:
    """Prune/fine-tune/quantize the pickled float graph at ``cfg`` (sparsity, granularity, seed,
    finetune_epochs)."""
    _one_thread()
    from model.network.compile import check_data, compile_network, graph_classes
    if "layer" in cfg:
        return layer_compile(pickle.loads(graph_blob), cfg)
    opts = _options(cfg)
    try:
        graph = pickle.loads(graph_blob)
        data = check_data(npz_load(data_bytes), graph.input_shape, graph_classes(graph))
        c = compile_network(graph, data, opts)
    except SparseFlowError as exc:
        return {"status": "infeasible", "note": str(exc)}
    rng = np.random.default_rng(cfg["seed"])
    idx = np.sort(rng.choice(len(data["x_train"]), min(SAMPLE, len(data["x_train"])), replace=False))
    a = c.report["accuracy"]
    return {"status": "ok", "accuracy": a["integer_golden"], "float_pruned": a["pruned_float"], "float_dense": a["dense_float"],
            "measured_sparsity": c.report["sparsity"].get("total"),
            "_blob": pickle.dumps({"net": c.net, "x_sample": c.net.quantize_input(data["x_train"][idx]),
                                   "x_check": c.net.quantize_input(data["x_test"][:64])})}


LAYER_GRANULARITIES = ("unstructured", "2:4")


def layer_compile(w: np.ndarray, cfg: dict) -> dict:
    """``--layer``: ``w`` quantized to int8 (one scale), pruned by magnitude to ``cfg``'s sparsity
    (unstructured, or 2:4 over zero-padded groups of four), as a one-layer integer network; the
    activations are seeded random int16 vectors with half of them zero (a ReLU layer's input).
    Its "accuracy" is the weight fidelity, 1 - |W - W_pruned| / |W| (Frobenius)."""
    from model.hw.formats import nm
    from model.network.engines import pad_weight
    from model.network.intnet import IntLayer, IntNetwork
    rows, cols = w.shape
    scale = float(np.abs(w).max()) / 127 or 1.0
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int64)
    if cfg["granularity"] == "2:4":
        q = nm.keep_largest_24(pad_weight(q))[:, :cols]
    else:
        k = int(round(cfg["sparsity"] * q.size))
        order = np.argsort(np.abs(q), axis=None, kind="stable")  # the k smallest magnitudes go
        q.reshape(-1)[order[:k]] = 0
    rng = np.random.default_rng(cfg["seed"])
    x = rng.integers(-(1 << 15), 1 << 15, (SAMPLE + 64, cols)) * (rng.random((SAMPLE + 64, cols)) < 0.5)
    acc = np.abs(q) @ np.abs(x.T)
    shift = max(0, int(np.ceil(np.log2(float(acc.max()) + 1))) - 15)
    lay = IntLayer(name="layer", kind="linear", weight=q, bias=None, shift=shift, relu=False, w_scale=scale,
                   in_scale=1.0, in_shape=(cols,), out_shape=(rows,), engine="dense")
    net = IntNetwork(input_shape=(cols,), input_frac=0, ops=[lay], name="layer")
    fidelity = 1.0 - float(np.linalg.norm(w - q * scale) / (np.linalg.norm(w) or 1.0))
    return {"status": "ok", "accuracy": fidelity, "measured_sparsity": float(np.mean(q == 0)),
            "_blob": pickle.dumps({"net": net, "x_sample": x[:SAMPLE], "x_check": x[SAMPLE:]})}


def cost_task(blob: bytes, cfg: dict) -> dict:
    """Cycles per inference and memory bits of the compiled network on ``cfg`` (engine, size,
    fifo_depth); ``rtl_images`` > 0: also that many test images through the simulated RTL."""
    from model.hw.engines import get as get_engine
    from model.network.engines import is_24, layer_costs
    from model.network.intnet import IntLayer, host_op
    b = pickle.loads(blob)
    net, x = b["net"], b["x_sample"]
    eng = get_engine(cfg["engine"])
    if eng.needs_24:
        bad = [l.name for l in net.layers if not is_24(l.weight)]
        if bad:
            return {"status": "infeasible", "note": f"layer {bad[0]} is not 2:4-sparse"}
    cycles, bits = 0.0, 0
    for op in net.ops:
        if isinstance(op, IntLayer):
            c = layer_costs(op, op.vectors(x), net, cfg["size"], cfg["size"], fifo_depth=cfg["fifo_depth"] or 8,
                            frontend_width=DEFAULT_FRONTEND_WIDTH)
            if eng.name not in c:
                return {"status": "infeasible", "note": f"no cost model of {eng.name} for layer {op.name}"}
            cycles += c[eng.name]["cycles"]
            bits += c[eng.name]["memory_bits"]
            x = net.layer_forward(op, x)
        else:
            x = host_op(op, x, net.act_bits)
    out = {"status": "ok", "cycles": cycles, "memory_bits": bits}
    if cfg.get("rtl_images"):
        out.update(_rtl_check(net, b["x_check"][:cfg["rtl_images"]], eng.name, cfg))
    return out


def _rtl_check(net, x_int, engine: str, cfg: dict) -> dict:
    """The images through the simulated RTL: measured cycles per inference and mismatches."""
    from model.network.engines import layer_costs
    from model.network.folder import engine_configs
    from model.network.intnet import IntLayer, host_op
    from verif.netrun import prebuild, run_network
    cfgs = engine_configs(net, cfg["size"], cfg["size"], cfg["fifo_depth"] or 8, kinds={engine},
                          frontend_width=DEFAULT_FRONTEND_WIDTH)
    prebuild(cfgs, "verilator", "native")
    r = run_network(net, x_int, cfgs, engines=[engine] * len(net.layers), sim="verilator", backend="native",
                    progress=False)
    # the model's cycles on the same images, for the comparison
    model_cycles, x = 0.0, x_int
    for op in net.ops:
        if isinstance(op, IntLayer):
            model_cycles += layer_costs(op, op.vectors(x), net, cfg["size"], cfg["size"], fifo_depth=cfg["fifo_depth"] or 8,
                                        frontend_width=DEFAULT_FRONTEND_WIDTH)[engine]["cycles"]
            x = net.layer_forward(op, x)
        else:
            x = host_op(op, x, net.act_bits)
    return {"rtl_cycles": sum(l["cycles"][engine]["per_inference"] for l in r["layers"]),
            "rtl_model_cycles": model_cycles, "rtl_mismatches": r["mismatches"], "rtl_images_run": len(x_int)}


def synth_task(cfg: dict) -> dict:
    """Real synthesis of one engine build (the board self-test, as the estimator was fitted)."""
    import tempfile
    from verif.synth import synthesize
    with tempfile.TemporaryDirectory() as tmp:  # the flow's files stay on the worker; the numbers travel
        r = synthesize(cfg["engine"], cfg["size"], cfg["target"], sim=None, bitstream=False,
                       out=Path(tmp) / "flow", fifo_depth=cfg["fifo_depth"],
                       frontend_width=DEFAULT_FRONTEND_WIDTH if cfg["engine"] == EIE.name else None)
    return {k: r.get(k) for k in ("logic_cells", "ffs", "bram", "dsp", "fmax_mhz", "meets_goal")}


# ----------------------------------------------------------------------------- the sweep

def _options(cfg: dict):
    from model.network.compile import CompileOptions
    return CompileOptions(schedule="oneshot", granularity=cfg["granularity"], sparsity=cfg["sparsity"],
                          seed=cfg["seed"], finetune_epochs=cfg["finetune_epochs"], engine="dense", progress=False)


def _refused(cfg: dict) -> str | None:
    """The compiler's one-line refusal of ``cfg``'s options, or None."""
    if "layer" in cfg and cfg["granularity"] not in LAYER_GRANULARITIES:
        return f"--layer prunes {' or '.join(LAYER_GRANULARITIES)} only, not {cfg['granularity']}"
    try:
        _options(cfg).check()
    except SparseFlowError as exc:
        return str(exc)
    return None


def _granularity(gr: str, engine) -> str:
    return ("2:4" if engine.needs_24 else "unstructured") if gr == "auto" else gr


def plan(g: Grid, ident: dict) -> tuple[list[dict], list[dict]]:
    """``(compile configs, cost configs)`` of the grid; a cost config names its compile config."""
    from model.hw.engines import get as get_engine
    from verif.synth import get_target
    depths = sorted({d for d in g.fifo_depths if d != "auto"}
                    | ({get_target(t).eie_fifo_depth for t in g.targets} if "auto" in g.fifo_depths else set()))
    compiles: dict = {}
    costs = []
    for gr in g.granularities:
        for s in g.sparsity:
            for e in g.engines:
                eng = get_engine(e)
                cg = _granularity(gr, eng)
                ccfg = {**ident, "sparsity": s, "granularity": cg, "seed": g.seed,
                        "finetune_epochs": g.finetune_epochs}
                cid = json.dumps(ccfg, sort_keys=True)
                compiles.setdefault(cid, ccfg)
                for n in g.sizes:
                    for f in (depths if eng.per_cycle is None else [None]):  # only EIE has queues
                        costs.append({"compile": ccfg, "engine": e, "size": n, "fifo_depth": f,
                                      "granularity_option": gr})
    uniq = list({json.dumps(c, sort_keys=True): c for c in costs}.values())
    # RTL check: a seeded sample of the points the compiler accepts, at most one per engine
    # (distinct builds: no two workers compile the same one at once)
    rng = np.random.default_rng(g.seed)
    picked, seen = [], set()
    for i in rng.permutation(len(uniq)):
        c = uniq[i]
        if len(picked) < g.rtl_check and c["engine"] not in seen and not _refused(c["compile"]):
            seen.add(c["engine"])
            picked.append(int(i))
    for i, c in enumerate(uniq):
        c["rtl_images"] = g.rtl_images if i in picked else 0
    return list(compiles.values()), uniq


def sweep(g: Grid, source: dict, data_bytes: bytes, ident: dict, store, *, workers=None, cluster_address=None,
          progress: bool = True, log=None, cost_fn=None, cluster=None) -> dict:
    """Run every task the store does not hold yet; then the points, Pareto set and synthesis.
    ``cost_fn``: the cost task (default :func:`cost_task`; the tests wrap it to kill a worker).
    ``cluster``: a :class:`scripts.farm.Cluster` the caller started (and closes; this function
    closes it in the background once no task is left); default: one of ``workers`` /
    ``cluster_address``, started when a task needs it and closed here."""
    cost_fn = cost_fn or cost_task
    from scripts import farm
    own = cluster is None
    cl = farm.Cluster(workers, cluster_address, eager=False) if own else cluster
    try:
        return _sweep(g, source, data_bytes, ident, store, progress, log, cost_fn, cl)
    finally:
        if own:
            cl.close()


def _sweep(g: Grid, source: dict, data_bytes: bytes, ident: dict, store, progress, log, cost_fn, cl) -> dict:
    from scripts import farm
    from scripts.store import config_key
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    compiles, costs = plan(g, ident)
    ckey = {json.dumps(c, sort_keys=True): config_key("compile", c) for c in compiles}
    keyof = lambda c: ckey[json.dumps(c, sort_keys=True)]
    cost_key = lambda c: config_key("cost", c)
    by_compile: dict = {}
    for c in costs:
        by_compile.setdefault(keyof(c["compile"]), []).append(c)

    def cost_tasks(comp_key):
        row = store.get(comp_key)
        if row["result"].get("status") != "ok":
            return []
        return [(cost_key(c), cost_fn, (row["blob"], c)) for c in by_compile[comp_key] if not store.has(cost_key(c))]

    for c in compiles:  # options the compiler refuses (2:4 at a sparsity other than 0.5): stored, no task
        if not store.has(keyof(c)):
            note = _refused(c)
            if note:
                store.put(keyof(c), "compile", c, {"status": "infeasible", "note": note})
    gcfg = {**ident, "seed": g.seed}
    gkey = config_key("graph", gcfg)
    comp_by_key = {keyof(c): c for c in compiles}

    def compile_tasks():
        # the networks with the most engine builds waiting on them first: less idle tail
        blob = store.get(gkey)["blob"]
        todo_ = [(k, compile_task, (blob, data_bytes, c)) for k, c in comp_by_key.items() if not store.has(k)]
        return sorted(todo_, key=lambda t: -len(by_compile.get(t[0], ())))

    todo = []
    if not store.has(gkey):
        if any(not store.has(k) for k in comp_by_key):
            todo = [(gkey, graph_task, (source, g.seed))]
    else:
        todo = compile_tasks()
    for c in compiles:
        if store.has(keyof(c)):
            todo += cost_tasks(keyof(c))
    ok = {keyof(c) for c in compiles if not store.has(keyof(c)) or store.get(keyof(c))["result"]["status"] == "ok"}
    pending_costs = sum(1 for c in costs if keyof(c["compile"]) in ok and not store.has(cost_key(c)))
    pending = (not store.has(gkey) and bool(todo)) + sum(not store.has(k) for k in comp_by_key) + pending_costs
    done = {"compile": len(compiles) - sum(not store.has(k) for k in comp_by_key), "cost": len(costs) - pending_costs}
    log(f"explore: {len(compiles)} networks, {len(costs)} engine builds x {len(g.targets)} targets; to compute: "
        f"{len(compiles) - done['compile']} networks, {pending_costs} engine builds (the rest is stored or infeasible)")
    computed = {"compile": 0, "cost": 0, "synth": 0}
    if todo:
        by_key = {cost_key(c): c for c in costs}

        def on_result(key, result, seconds):
            blob = result.pop("_blob", None)
            if key == gkey:
                store.put(key, "graph", gcfg, result, blob, seconds)
                return compile_tasks()
            if key in comp_by_key:
                if store.put(key, "compile", comp_by_key[key], result, blob, seconds):
                    computed["compile"] += 1
                return cost_tasks(key)
            if store.put(key, "cost", by_key[key], result, None, seconds):
                computed["cost"] += 1
            return []

        farm.run_tasks(cl.client, todo, on_result, desc="explore", progress=progress, total=pending, warm=warm_task)
    if not g.synth_top:
        cl.close(wait=False)  # nothing more to run: the workers stop while the points are made
    points = make_points(g, store, compiles, costs, keyof, cost_key)
    synth = synth_pareto(g, store, points, cl, progress, computed)
    return {"points": points, "synth": synth, "computed": computed, "reused": done}


def _pairs(g: Grid, c: dict, target: str) -> bool:
    """Whether cost row ``c`` is a point on ``target``: with ``--fifo-depth auto`` an EIE build
    pairs with its target's default queue depth only (the depth the estimator was fitted at)."""
    from verif.synth import get_target
    if c["fifo_depth"] is None:
        return True
    explicit = [d for d in g.fifo_depths if d != "auto"]
    return c["fifo_depth"] in explicit or ("auto" in g.fifo_depths
                                           and c["fifo_depth"] == get_target(target).eie_fifo_depth)


def make_points(g: Grid, store, compiles, costs, keyof, cost_key) -> list[dict]:
    """One stored ``point`` per cost row and target (estimator, latency, fit), Pareto flags set."""
    from model.hw import estimator
    from scripts.store import config_key
    points = []
    for c in costs:
        comp = store.get(keyof(c["compile"]))
        cost = store.get(cost_key(c))
        for t in (t for t in g.targets if _pairs(g, c, t)):
            cfg = {"cost": cost_key(c), "target": t}
            key = config_key("point", cfg)
            row = store.get(key)
            if row is None:
                res = _point(c, comp, cost, t, estimator)
                store.put(key, "point", cfg, res)
            else:
                res = row["result"]
            points.append({**res, "key": key})
    for t in g.targets:
        mark_pareto([p for p in points if p["target"] == t])
    return points


def _point(c: dict, comp: dict | None, cost: dict | None, target: str, estimator) -> dict:
    base = {"target": target, "engine": c["engine"], "size": c["size"], "fifo_depth": c["fifo_depth"],
            "sparsity": c["compile"]["sparsity"], "granularity": c["compile"]["granularity"]}
    comp_r = (comp or {}).get("result", {})
    cost_r = (cost or {}).get("result", {})
    if comp_r.get("status") != "ok" or cost_r.get("status") != "ok":
        return {**base, "status": "infeasible", "note": comp_r.get("note") or cost_r.get("note") or "not computed"}
    est = estimator.estimate(c["engine"], c["size"], target, c["fifo_depth"])
    out = {**base, "status": "ok", "accuracy": comp_r["accuracy"], "cycles": round(cost_r["cycles"], 1),
           "memory_bits": cost_r["memory_bits"],
           **{k: cost_r[k] for k in ("rtl_cycles", "rtl_model_cycles", "rtl_mismatches") if k in cost_r}}
    if est is None:
        return {**out, "note": f"no resource fit for {c['engine']} on {target} (run benchmarks.synth_sweep)"}
    wb = estimator.weight_brams(cost_r["memory_bits"], target)
    out.update({k: est[k] for k in estimator.RESOURCES}, extrapolated=est["extrapolated"], weight_bram=wb,
               latency_us=round(cost_r["cycles"] / est["fmax_mhz"], 3) if est["fmax_mhz"] > 0 else None,
               fits=estimator.fits_device(est, target, wb))
    return out


def mark_pareto(points: list[dict]) -> None:
    """``pareto``: no other fitting point is at least as accurate, as fast and as small, and better in one."""
    ok = [p for p in points if p.get("status") == "ok" and p.get("fits") and p.get("latency_us") is not None]
    for p in points:
        p["pareto"] = False
    for p in ok:
        v = (-p["accuracy"], p["latency_us"], p["logic_cells"])
        p["pareto"] = not any(all(a <= b for a, b in zip(w, v)) and w != v
                              for w in ((-q["accuracy"], q["latency_us"], q["logic_cells"]) for q in ok))


def recommend(points: list[dict], target: str, tolerance: float = 0.01) -> dict | None:
    """The recommended point on ``target``: among the fitting Pareto points within ``tolerance``
    of the best accuracy, the lowest latency, then the fewest logic cells."""
    par = [p for p in points if p["target"] == target and p.get("pareto")]
    if not par:
        return None
    best = max(p["accuracy"] for p in par)
    near = [p for p in par if p["accuracy"] >= best - tolerance]
    return min(near, key=lambda p: (p["latency_us"], p["logic_cells"]))


def synth_pareto(g: Grid, store, points, cl, progress, computed) -> list[dict]:
    """Synthesize the ``synth_top`` most accurate Pareto builds per target (stored like the rest)
    on the sweep's cluster ``cl`` (a :class:`scripts.farm.Cluster`)."""
    if not g.synth_top:
        return []
    from scripts import farm
    from scripts.store import config_key
    cfgs = []
    for t in g.targets:
        par = sorted((p for p in points if p["target"] == t and p.get("pareto")),
                     key=lambda p: (-p["accuracy"], p["latency_us"]))
        builds = []
        for p in par:
            b = {"engine": p["engine"], "size": p["size"], "target": t, "fifo_depth": p["fifo_depth"]}
            if b not in builds:
                builds.append(b)
        cfgs += builds[:g.synth_top]
    todo = [(config_key("synth", c), synth_task, (c,)) for c in cfgs if not store.has(config_key("synth", c))]
    if todo:
        cfg_of = {config_key("synth", c): c for c in cfgs}

        def on_result(key, result, seconds):
            if store.put(key, "synth", cfg_of[key], result, None, seconds):
                computed["synth"] += 1

        farm.run_tasks(cl.client, todo, on_result, desc="synth", progress=progress)
    from model.hw import estimator
    out = []
    for c in cfgs:
        r = store.get(config_key("synth", c))["result"]
        est = estimator.estimate(c["engine"], c["size"], c["target"]) or {}
        out.append({**c, **{f"measured_{k}": r.get(k) for k in estimator.RESOURCES},
                    **{f"predicted_{k}": est.get(k) for k in estimator.RESOURCES}})
    return out


# ----------------------------------------------------------------------------- outputs

def write_outputs(out: Path, g: Grid, result: dict, seconds: float) -> None:
    """``points.csv``, ``pareto.png`` and ``report.md`` in ``out`` (the store is there already)."""
    from scripts.store import write_csv
    points = result["points"]
    write_csv(points, out / "points.csv", POINT_FIELDS)
    plot(points, g.targets, out / "pareto.png", g.quality)
    (out / "report.md").write_text(report_md(g, result, seconds))


def plot(points: list[dict], targets: list[str], path: Path, quality: str = Grid.quality) -> None:
    """Accuracy vs latency, colour = predicted logic cells, one panel per target; Pareto points ringed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from model.hw.engines import NAMES
    markers = dict(zip(NAMES, "osD^vP*X"))
    fig, axes = plt.subplots(1, len(targets), figsize=(6.2 * len(targets), 4.8), squeeze=False)
    ok = [p for p in points if p.get("status") == "ok" and p.get("latency_us") is not None]
    lo = min((p["logic_cells"] for p in ok), default=1)
    hi = max((p["logic_cells"] for p in ok), default=2)
    sc = None
    for ax, t in zip(axes[0], targets):
        for e in NAMES:
            pts = [p for p in ok if p["target"] == t and p["engine"] == e]
            if not pts:
                continue
            sc = ax.scatter([p["latency_us"] for p in pts], [p["accuracy"] for p in pts],
                            c=[p["logic_cells"] for p in pts], cmap="viridis", vmin=lo, vmax=hi,
                            marker=markers.get(e, "o"), s=[28 if p["fits"] else 10 for p in pts],
                            alpha=[1.0 if p["fits"] else 0.35 for p in pts], label=e)
        par = sorted((p for p in ok if p["target"] == t and p.get("pareto")), key=lambda p: p["latency_us"])
        if par:
            ax.scatter([p["latency_us"] for p in par], [p["accuracy"] for p in par], s=110, facecolors="none",
                       edgecolors="red", linewidths=1.2, label="Pareto (fits)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide on a log axis
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel("latency per inference, us (cycle model / predicted Fmax)")
        ax.set_ylabel(quality)
        ax.set_title(f"{t} (small, faded: predicted not to fit)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if sc is not None:
        fig.colorbar(sc, ax=axes[0].tolist(), label="predicted logic cells")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(p: dict) -> str:
    """A point's build in words: engine, size, queue depth, sparsity and granularity."""
    q = f", queues {p['fifo_depth']}" if p.get("fifo_depth") else ""
    return f"{p['engine']} x{p['size']}{q}, sparsity {p['sparsity']:g} ({p['granularity']})"


def report_md(g: Grid, result: dict, seconds: float) -> str:
    points = result["points"]
    ok = [p for p in points if p.get("status") == "ok"]
    lines = ["# Design-space exploration", "",
             f"{len(points)} points ({len(ok)} feasible): engines {', '.join(g.engines)}; sizes "
             f"{', '.join(map(str, g.sizes))}; sparsity {', '.join(f'{s:g}' for s in g.sparsity)}; targets "
             f"{', '.join(g.targets)}; seed {g.seed}. This run: {result['computed']['compile']} networks compiled, "
             f"{result['computed']['cost']} engine builds costed, {result['computed']['synth']} synthesized; "
             f"the rest from the store; {seconds:.1f} s.", "",
             f"Accuracy: {g.quality}. Cycles: cycle model (exact for EIE, first-order "
             "for the lane engines), averaged over sample inputs. Logic cells, FFs, BRAM, DSP, Fmax: "
             "**predicted** by `model.hw.estimator` (fitted on the synthesis sweep; `extrapolated` = outside "
             "the fitted sizes). Latency = cycles / predicted Fmax. *Fits*: predicted logic, DSP and "
             "max(BRAM, weight BRAM) within the device.", "",
             "Recommendation per target: among the Pareto points that fit, those within 1 % of the best "
             "accuracy; of them the lowest latency, then the fewest logic cells.", ""]
    for t in g.targets:
        r = recommend(points, t)
        lines.append(f"## {t}")
        lines.append("")
        if r is None:
            lines += ["No feasible point fits this target.", ""]
            continue
        lines.append(f"**Recommended: {describe(r)}**: accuracy {r['accuracy']:.4f}, {r['cycles']:.0f} cycles, "
                     f"{r['latency_us']:.2f} us at {r['fmax_mhz']:.1f} MHz (predicted), {r['logic_cells']} logic "
                     f"cells, {r['dsp']} DSP, {max(r['bram'], r['weight_bram'])} BRAM.")
        lines += ["", "| Pareto point | accuracy | cycles | latency us | logic cells | FFs | BRAM (weights) | DSP | "
                  "Fmax MHz |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in sorted((p for p in points if p["target"] == t and p.get("pareto")),
                        key=lambda p: (-p["accuracy"], p["latency_us"])):
            lines.append(f"| {describe(p)}{' (extrapolated)' if p['extrapolated'] else ''} | {p['accuracy']:.4f} | "
                         f"{p['cycles']:.0f} | {p['latency_us']:.2f} | {p['logic_cells']} | {p['ffs']} | "
                         f"{p['bram']} ({p['weight_bram']}) | {p['dsp']} | {p['fmax_mhz']:.1f} |")
        lines.append("")
    rtl = [p for p in points if p.get("rtl_cycles") is not None]
    if rtl:
        lines += ["## RTL check of the cycle model (sampled points, simulated RTL)", "",
                  "| point | images | RTL cycles | model cycles (same images) | mismatches |", "|---|---:|---:|---:|---:|"]
        seen = set()
        for p in rtl:
            k = (p["engine"], p["size"], p["fifo_depth"], p["sparsity"])
            if k in seen:
                continue
            seen.add(k)
            lines.append(f"| {describe(p)} | {g.rtl_images} | {p['rtl_cycles']:.1f} | {p['rtl_model_cycles']:.1f} | "
                         f"{p['rtl_mismatches']} |")
        lines.append("")
    if result["synth"]:
        lines += ["## Synthesized Pareto builds: measured vs predicted", "",
                  "| build | target | logic cells | FFs | BRAM | DSP | Fmax MHz |", "|---|---|---:|---:|---:|---:|---:|"]
        for s in result["synth"]:
            cell = lambda k: f"{s[f'measured_{k}']} / {s[f'predicted_{k}']}"
            lines.append(f"| {s['engine']} x{s['size']} | {s['target']} | " + " | ".join(
                cell(k) for k in ("logic_cells", "ffs", "bram", "dsp", "fmax_mhz")) + " |")
        lines += ["", "(measured / predicted; the self-test build of a 32x32 matrix, as the estimator was fitted)", ""]
    bad = [p for p in points if p.get("status") != "ok"]
    if bad:
        notes = sorted({p.get("note", "") for p in bad})
        lines += ["## Infeasible points", "", f"{len(bad)} points: " + "; ".join(notes), ""]
    return "\n".join(lines)
