"""Compile your own network: prune + fine-tune, quantize, lower, choose engines, write a folder.

:func:`compile_network` takes a float :class:`~model.nn.graph.ir.Graph` (from
:func:`model.nn.graph.load_model`) and a data set (``x_train, y_train, x_test, y_test``) and
returns a :class:`Compiled` (the pruned float graph, the :class:`IntNetwork`, the report).

1. **Prune + fine-tune** with ``model.nn.prune.pipelines`` on a :class:`GraphNet` rebuilt from the
   graph, starting from the given (trained) weights: every criterion, granularity, schedule and
   scope; ``conv_sparsity`` gives convolutions their own target (layer scope). 2:4 pads short
   rows (a 25-element 5x5 patch) with zero columns.
2. **Quantize** per layer (:func:`quantize_graph`): int8 symmetric weights, int16 activations,
   a power-of-two requantization shift per layer calibrated on training images (the smallest
   that keeps their peak accumulator in range), bias rounded to the accumulator scale
   (``w_scale * in_scale``), input scale ``2**-input_frac``; optional ``share_bits`` weight
   sharing (k-means codebook per layer, entry 0 = 0; the report gives the held-out accuracy with
   and without it).
3. **Engines**: per layer, ``engine="auto"`` takes the cost model's cheapest (cycles per image
   over the output positions, then memory; ``model.network.engines``), or a forced engine; and
   the EIE relative-index width (``model.hw.costmodel.choose_index_bits``: fewest memory bits x
   cycles), unless ``index_bits`` forces one.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from model.errors import SparseFlowError
from model.nn.graph.ir import Conv2d, Graph, ReLU, Scale
from model.hw.config import DEFAULT_FRONTEND_WIDTH
from model.hw.engines import BSR, EIE, NAMES as ENGINES, SPARSE24
from model.network.engines import EIE_ENTRIES, MAX_COLS, MAX_ROWS, eie_entries, is_24, layer_costs
from model.network.intnet import IntLayer, IntNetwork, host_op

DATA_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class CompileOptions:
    method: str = "magnitude"
    taylor: str = "example"         # Taylor form (model.nn.prune.criteria): example | batch
    granularity: str = "unstructured"
    sparsity: float = 0.92          # of every Linear layer (and conv, unless conv_sparsity)
    conv_sparsity: float | None = None
    schedule: str = "iterative"
    reinit: bool = False            # iterative: keep the trained weights (Deep Compression); True: IMP re-init
    scope: str = "layer"
    rounds: int = 4
    epochs: int = 8                 # (re)training epochs per round (iterative/lth), dst training
    finetune_epochs: int = 8        # oneshot fine-tuning
    lr: float = 1e-3
    finetune_lr: float = 1e-3
    engine: str = "auto"
    shrink: bool = True             # remove all-zero rows (pruned channels) and their inputs (model.network.shrink)
    pes: int = 8
    lanes: int = 4
    block: int = 4                  # the BSR engine's blocks (2x2 or 4x4)
    fifo_depth: int = 8
    frontend_width: int = DEFAULT_FRONTEND_WIDTH  # EIE activations per input word (1: one-element front end)
    weight_bits: int = 8
    act_bits: int = 16
    bias_bits: int = 32
    share_bits: int | None = None
    index_bits: int | None = None   # EIE relative-index width of every layer; None: the cost model's per layer
    calib: int = 512                # training images used to calibrate the shifts
    percentile: float = 100.0
    eie_entries: int = EIE_ENTRIES
    seed: int = 0
    progress: bool = True

    def check(self) -> None:
        from model.nn.prune import check_pruning, check_target  # torch-free: a planning driver checks options
        check_pruning(self.method, self.schedule, self.granularity, self.sparsity, self.scope)
        if self.conv_sparsity is not None:
            check_target(self.granularity, self.conv_sparsity, self.scope)
            if self.scope != "layer":
                raise SparseFlowError("--conv-sparsity needs --scope layer")
        if self.engine not in ("auto", *ENGINES):
            raise SparseFlowError(f"unknown engine {self.engine!r} (choose from auto, {', '.join(ENGINES)})")
        for k in ("pes", "lanes", "fifo_depth", "frontend_width", "rounds", "calib", "eie_entries"):
            if not isinstance(getattr(self, k), int) or getattr(self, k) < 1:
                raise SparseFlowError(f"{k.replace('_', ' ')} must be an integer >= 1, not {getattr(self, k)!r}")
        for k in ("epochs", "finetune_epochs"):
            if getattr(self, k) < 0:
                raise SparseFlowError(f"{k.replace('_', ' ')} must be >= 0, not {getattr(self, k)}")
        if self.pes > 64 or self.lanes > 64:
            raise SparseFlowError("at most 64 PEs / lanes")
        if self.index_bits is not None and (not isinstance(self.index_bits, int) or not 1 <= self.index_bits <= 8):
            raise SparseFlowError(f"relative-index bits must be in 1..8, not {self.index_bits!r}")
        if self.share_bits is not None and not 1 <= self.share_bits <= 8:
            raise SparseFlowError(f"weight sharing bits must be in 1..8, not {self.share_bits}")
        if not 0 < self.percentile <= 100:
            raise SparseFlowError(f"calibration percentile must be in (0, 100], not {self.percentile}")
        if self.block not in (2, 4):
            raise SparseFlowError(f"block must be 2 or 4, not {self.block!r}")
        if self.engine == BSR.name:
            from model.hw.config import BSRConfig
            BSRConfig(lanes=self.lanes, block=self.block)  # the lanes' multipliers must tile the blocks
        if self.engine == SPARSE24.name and self.granularity != "2:4":
            raise SparseFlowError("--engine 2:4 runs 2:4-sparse layers only: add --granularity 2:4 --sparsity 0.5")


class TensorData:
    """The data set as the pruning pipelines take it (``float_train()`` / ``float_test()``)."""

    def __init__(self, data: dict):
        self.data = data

    def _pair(self, x, y):
        import torch
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(
            np.ascontiguousarray(y, dtype=np.int64))

    def float_train(self):
        return self._pair(self.data["x_train"], self.data["y_train"])

    def float_test(self):
        return self._pair(self.data["x_test"], self.data["y_test"])


def check_data(data, input_shape: tuple, classes: int, keys=DATA_KEYS) -> dict:
    """Validate a data set against a network (one-line errors); return it as plain arrays."""
    missing = [k for k in keys if k not in data]
    if missing:
        raise SparseFlowError(f"the data lack {', '.join(missing)} (need {', '.join(keys)})")
    out = {}
    for k in keys:
        a = np.asarray(data[k])
        if k.startswith("x"):
            if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise SparseFlowError(f"{k} must hold numbers, not {a.dtype}")
            if tuple(a.shape[1:]) != tuple(input_shape):
                raise SparseFlowError(f"{k} has shape {tuple(a.shape)} but the model's input is "
                                      f"(N, {', '.join(map(str, input_shape))})")
            if a.shape[0] < 1:
                raise SparseFlowError(f"{k} has no samples")
            if not np.all(np.isfinite(a)):
                raise SparseFlowError(f"{k} has non-finite values (NaN or inf)")
            a = a.astype(np.float32)
        else:
            if a.ndim != 1:
                raise SparseFlowError(f"{k} must be a 1-D array of labels, not shape {tuple(a.shape)}")
            if not np.issubdtype(a.dtype, np.integer):
                if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                    raise SparseFlowError(f"{k} must hold integer labels")
            a = a.astype(np.int64)
            if a.size and (a.min() < 0 or a.max() >= classes):
                bad = a[(a < 0) | (a >= classes)][0]
                raise SparseFlowError(f"{k} has label {bad}, out of range for the model's {classes} classes "
                                      f"(0..{classes - 1})")
        out[k] = a
    for s in ("train", "test"):
        if f"x_{s}" in out and f"y_{s}" in out and len(out[f"x_{s}"]) != len(out[f"y_{s}"]):
            raise SparseFlowError(f"x_{s} has {len(out[f'x_{s}'])} samples but y_{s} has {len(out[f'y_{s}'])} labels")
    return out


def load_data(path, keys=DATA_KEYS) -> dict:
    """A DATA.npz file as a dict of arrays (one-line errors; never unpickles)."""
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        raise SparseFlowError(f"{p}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile/pickle/ValueError: a corrupt or foreign file
        raise SparseFlowError(f"{p}: not a readable .npz data file ({type(exc).__name__})") from None


def graph_classes(graph: Graph) -> int:
    out = graph.output_shape
    if len(out) != 1:
        raise SparseFlowError(f"the network's output has shape {out}; compile needs a vector of class scores")
    return int(out[0])


def check_graph(graph: Graph) -> None:
    """What compile supports beyond the importers (one-line refusals)."""
    for n in graph.nodes:
        if isinstance(n, Scale):
            raise SparseFlowError(f"BatchNorm/Scale node '{n.name}' does not follow a Linear or Conv2d, so it cannot "
                                  f"be folded; compile supports BatchNorm only right after a layer")
    if not graph.layers():
        raise SparseFlowError("the network has no Linear or Conv2d layer to run on an engine")
    for l in graph.layers():
        rows, cols = l.matrix().shape
        if cols > MAX_COLS or rows > MAX_ROWS:
            raise SparseFlowError(f"layer '{l.name}' is a {rows}x{cols} matrix; the engine builds take at most "
                                  f"{MAX_ROWS} rows and {MAX_COLS} columns")


def _say(msg: str, progress: bool, t0: float) -> None:
    if progress:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def input_frac(x: np.ndarray, act_bits: int) -> int:
    """The largest ``f`` with ``max|x| * 2**f`` within the signed ``act_bits`` range."""
    peak = float(np.abs(x).max(initial=0.0))
    hi = (1 << (act_bits - 1)) - 1
    if peak == 0.0:
        return 0
    return int(max(-30, min(30, math.floor(math.log2(hi / peak)))))


def quantize_graph(graph: Graph, x_calib: np.ndarray, *, weight_bits: int = 8, act_bits: int = 16,
                   bias_bits: int = 32, percentile: float = 100.0, share_bits: int | None = None,
                   name: str = "") -> IntNetwork:
    """The integer network of ``graph`` (see the module docstring), calibrated on ``x_calib``."""
    from model.nn.quant import choose_shift, kmeans_codebook, quantize_weights
    from model.hw.reference import matvec
    from model.hw.config import Arith
    f = input_frac(x_calib, act_bits)
    net = IntNetwork(graph.input_shape, f, [], weight_bits, act_bits, bias_bits, name or graph.name,
                     graph_classes(graph))
    x = net.quantize_input(x_calib)
    in_scale = 2.0 ** -f
    shapes = graph.shapes()
    nodes = graph.nodes
    clipped = 0
    i = 0
    while i < len(nodes):
        n = nodes[i]
        if n.host:
            if isinstance(n, Scale):
                raise SparseFlowError(f"Scale node '{n.name}' cannot run on integers")
            net.ops.append(n)
            x = host_op(n, x, act_bits)
            i += 1
            continue
        relu = i + 1 < len(nodes) and isinstance(nodes[i + 1], ReLU)
        w_int, w_scale = quantize_weights(n.matrix().astype(np.float64), weight_bits)
        cb = idx = None
        if share_bits:
            cb, idx = kmeans_codebook(w_int, weight_bits, share_bits)
            w_int = cb[idx]
        bias = None
        if n.bias is not None:
            lo, hi = -(1 << (bias_bits - 1)), (1 << (bias_bits - 1)) - 1
            b = np.round(n.bias.astype(np.float64) / (w_scale * in_scale))
            clipped += int(np.count_nonzero((b < lo) | (b > hi)))
            bias = np.clip(b, lo, hi).astype(np.int64)
        conv = isinstance(n, Conv2d)
        lay = IntLayer(n.name, "conv" if conv else "linear", w_int, bias, 0, relu, float(w_scale), in_scale,
                       shapes[i][0], shapes[i][1], n.kernel if conv else (1, 1), n.stride if conv else (1, 1),
                       n.padding if conv else (0, 0, 0, 0), EIE.name, cb, idx)
        cols = lay.vectors(x)
        acc = matvec(w_int, cols, Arith(weight_bits, act_bits, max_cols=lay.cols, bias_bits=bias_bits), bias)
        lay.shift = choose_shift(acc, relu, act_bits, percentile)
        x = net.layer_forward(lay, x)
        in_scale = lay.out_scale
        net.ops.append(lay)
        i += 2 if relu else 1
    net.meta["bias_clipped"] = clipped
    return net


@dataclass
class Compiled:
    """The result of :func:`compile_network`."""

    graph: Graph                    # the imported float network
    pruned: Graph                   # pruned + fine-tuned float network
    net: IntNetwork                 # integer network (engines chosen)
    options: CompileOptions
    report: dict = field(default_factory=dict)


def _float_acc(graph: Graph, x, y) -> float:
    from model.nn.graph.evaluate import evaluate
    pred = []
    for s in range(0, len(x), 500):
        pred.append(np.argmax(evaluate(graph, x[s:s + 500], dtype=np.float32).reshape(min(500, len(x) - s), -1), 1))
    return float(np.mean(np.concatenate(pred) == y))


def compile_network(graph: Graph, data: dict, opts: CompileOptions | None = None) -> Compiled:
    """See the module docstring. ``data``: dict with ``x_train, y_train, x_test, y_test``."""
    import torch
    from model.nn.prune.pipelines import PruneConfig, run as prune_run
    from model.network.torchnet import GraphNet

    opts = opts or CompileOptions()
    opts.check()
    check_graph(graph)
    classes = graph_classes(graph)
    data = check_data(data, graph.input_shape, classes)
    t0 = time.perf_counter()
    say = lambda m: _say(m, opts.progress, t0)
    say(f"compile {graph.name or 'network'}: seed {opts.seed}, {len(data['x_train'])} train / "
        f"{len(data['x_test'])} test samples")
    torch.manual_seed(opts.seed)
    np.random.seed(opts.seed)
    dense = GraphNet(graph)
    names = dense.layer_names()
    layer_sparsity = None
    if opts.conv_sparsity is not None:
        layer_sparsity = {names[l.name]: opts.conv_sparsity for l in graph.layers() if isinstance(l, Conv2d)}
    cfg = PruneConfig(method=opts.method, taylor=opts.taylor, granularity=opts.granularity, sparsity=opts.sparsity,
                      schedule=opts.schedule, scope=opts.scope, seed=opts.seed, epochs=opts.epochs,
                      finetune_epochs=opts.finetune_epochs, rounds=opts.rounds, lr=opts.lr,
                      finetune_lr=opts.finetune_lr, progress=opts.progress, layer_sparsity=layer_sparsity,
                      pad_24=True, reinit=opts.reinit)
    td = TensorData(data)
    init_state = {k: v.detach().clone() for k, v in dense.state_dict().items()}
    say(f"prune: {opts.method}, {opts.granularity}, {opts.schedule}, sparsity {opts.sparsity}"
        + (f" (conv {opts.conv_sparsity})" if opts.conv_sparsity is not None else ""))
    res = prune_run(cfg, td, dense=dense, init_state=init_state, build=lambda seed: _fresh(graph, seed))
    pruned = res.model.to_graph()
    shrunk = []
    if opts.shrink:
        from model.network.shrink import shrink_channels
        pruned, shrunk = shrink_channels(pruned)
        for r in shrunk:
            if r["removed_rows"] or r["removed_inputs"]:
                say(f"shrink {r['name']}: {r['before'][0]}x{r['before'][1]} -> {r['after'][0]}x{r['after'][1]} "
                    f"({r['removed_rows']} pruned rows removed, {r['removed_inputs']} inputs)")
    say("quantize (int%d weights, int%d activations, power-of-two shifts)" % (opts.weight_bits, opts.act_bits))
    rng = np.random.default_rng(opts.seed)
    ncal = min(opts.calib, len(data["x_train"]))
    calib_idx = np.sort(rng.choice(len(data["x_train"]), ncal, replace=False))
    x_cal = data["x_train"][calib_idx]
    net = quantize_graph(pruned, x_cal, weight_bits=opts.weight_bits, act_bits=opts.act_bits,
                         bias_bits=opts.bias_bits, percentile=opts.percentile, share_bits=opts.share_bits,
                         name=graph.name)
    say("choose engines")
    layers_rep = choose_engines(net, x_cal[:64], opts)
    check_fit(net, opts)
    acc_dense = _float_acc(graph, data["x_test"], data["y_test"])
    acc_pruned = _float_acc(pruned, data["x_test"], data["y_test"])
    acc_int = float(np.mean(net.predict(data["x_test"]) == data["y_test"]))
    accuracy = {"dense_float": acc_dense, "pruned_float": acc_pruned, "integer_golden": acc_int}
    if opts.share_bits:  # the same network without weight sharing: what the codebook costs in accuracy
        plain = quantize_graph(pruned, x_cal, weight_bits=opts.weight_bits, act_bits=opts.act_bits,
                               bias_bits=opts.bias_bits, percentile=opts.percentile, name=graph.name)
        accuracy["integer_golden_unshared"] = float(np.mean(plain.predict(data["x_test"]) == data["y_test"]))
    for lr_, lay in zip(layers_rep, net.layers):
        src = next(l for l in pruned.layers() if l.name == lay.name)
        nz = int(np.count_nonzero(src.matrix()))
        lr_.update(density=nz / src.matrix().size, nonzeros=nz, shift=lay.shift, relu=lay.relu,
                   bias=lay.bias is not None)
        sr = next((r for r in shrunk if r["name"] == lay.name), None)
        if sr is not None and sr["before"] != sr["after"]:
            lr_["shrunk_from"] = sr["before"]
    report = {
        "network": graph.name, "source": graph.source, "seed": opts.seed,
        "options": {k: v for k, v in asdict(opts).items() if k != "progress"},
        "samples": {"train": len(data["x_train"]), "test": len(data["x_test"]), "calibration": ncal},
        "accuracy": accuracy,
        "sparsity": {k: v for k, v in res.sparsity.items()},
        "shrink": shrunk,
        "input_frac": net.input_frac, "bias_clipped": net.meta.get("bias_clipped", 0),
        "layers": layers_rep,
        "predicted_cycles_per_inference": {e: sum(l["costs"][e]["cycles"] for l in layers_rep if e in l["costs"])
                                           for e in ENGINES if all(e in l["costs"] for l in layers_rep)},
        "predicted_cycles_chosen": sum(l["costs"][l["engine"]]["cycles"] for l in layers_rep),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if any(r["before"] != r["after"] for r in shrunk):
        net.meta["shrunk_from"] = {r["name"]: r["before"] for r in shrunk if r["before"] != r["after"]}
    net.meta.update(pes=opts.pes, lanes=opts.lanes, block=opts.block, fifo_depth=opts.fifo_depth,
                    frontend_width=opts.frontend_width, seed=opts.seed,
                    accuracy=report["accuracy"])
    say(f"accuracy dense {acc_dense:.4f}, pruned float {acc_pruned:.4f}, integer golden {acc_int:.4f}")
    return Compiled(graph, pruned, net, opts, report)


def _fresh(graph: Graph, seed: int):
    """A re-initialised GraphNet (dense training / dst from scratch)."""
    from model.nn.nets import init_weights
    from model.network.torchnet import GraphNet
    m = GraphNet(graph)
    init_weights(m, seed)
    return m


def choose_engines(net: IntNetwork, x_sample: np.ndarray, opts: CompileOptions) -> list[dict]:
    """Set every layer's engine (``opts.engine``: auto or forced); return per-layer cost rows."""
    x = net.quantize_input(x_sample)
    rows = []
    rng = np.random.default_rng(opts.seed)
    for op in net.ops:
        if isinstance(op, IntLayer):
            vec = op.vectors(x)
            if vec.shape[1] > 64:
                vec = vec[:, np.sort(rng.choice(vec.shape[1], 64, replace=False))]
            costs = layer_costs(op, vec, net, opts.pes, opts.lanes, opts.index_bits, opts.block,
                                frontend_width=opts.frontend_width)
            op.index_bits = costs[EIE.name]["index_bits"]
            if opts.engine == "auto":
                from model.hw.costmodel import choose
                op.engine = choose(costs)
            else:
                if opts.engine not in costs:
                    raise SparseFlowError(f"layer '{op.name}' is not 2:4-sparse, so it cannot run on the 2:4 engine "
                                          f"(use --granularity 2:4)")
                op.engine = opts.engine
            rows.append({"name": op.name, "kind": op.kind, "matrix": [op.rows, op.cols], "positions": op.positions,
                         "engine": op.engine, "costs": costs, "is_24": is_24(op.weight),
                         "index_bits": op.index_bits, "bits_per_nonzero": costs[EIE.name]["bits_per_nonzero"]})
            x = net.layer_forward(op, x)
        else:
            x = host_op(op, x, net.act_bits)
    return rows


def check_fit(net: IntNetwork, opts: CompileOptions) -> None:
    """Every EIE layer must fit one PE's entry memory (``opts.eie_entries`` words)."""
    from model.hw.config import Arith, EIEConfig, pow2_ceil
    eie_layers = [l for l in net.layers if l.engine == EIE.name]
    if not eie_layers:
        return
    cfg = EIEConfig(n_pes=opts.pes, max_rows=pow2_ceil(max(l.rows for l in eie_layers)), max_entries=1,
                    arith=Arith(net.weight_bits, net.act_bits, max_cols=pow2_ceil(max(l.cols for l in eie_layers))))
    for l in eie_layers:
        need = eie_entries(l, cfg)
        if need > opts.eie_entries:
            pes = opts.pes
            while pes < 64 and eie_entries(l, cfg.with_(n_pes=pes, max_rows=max(cfg.max_rows, pes))) > opts.eie_entries:
                pes *= 2
            hint = f"--pes {pes}" if pes <= 64 and pes != opts.pes else "a higher --sparsity"
            raise SparseFlowError(f"layer '{l.name}' needs {need} weight entries in one EIE PE but a PE holds "
                                  f"{opts.eie_entries}: use {hint}, a higher --sparsity, --eie-entries {pow2_ceil(need)} "
                                  f"or --engine dense")
