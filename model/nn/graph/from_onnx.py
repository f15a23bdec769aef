"""ONNX front end: an ``.onnx`` file (or ``onnx.ModelProto``) to a :class:`~model.nn.graph.ir.Graph`.

Supported (one float input, one output, a chain): ``Gemm`` (``transA = 0``; ``transB``,
``alpha``, ``beta`` folded into the weight and bias), ``MatMul`` by a constant (+ ``Add`` of a
per-output constant: the bias), ``Conv`` (2-D, ``group = 1``, ``dilations = 1``, explicit
``pads`` or ``auto_pad``), ``Relu``, ``MaxPool`` / ``AveragePool`` (2-D, ``ceil_mode = 0``,
``dilations = 1``), ``GlobalAveragePool``, ``Flatten`` (``axis = 1``), ``Reshape`` (keeping
the batch), ``BatchNormalization`` (inference; folded into the previous Linear/Conv),
``Dropout`` / ``Identity`` (dropped), a final ``Softmax`` / ``LogSoftmax``; weights from
initializers and ``Constant`` nodes, and the shape arithmetic PyTorch's exporter emits for
``x.view(x.size(0), -1)`` (``Shape``, ``Gather``, ``Unsqueeze``, ``Squeeze``, ``Concat``, ``Cast``,
``Transpose`` on constants). Anything else is refused with ``<op> node '<name>': <why>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.errors import SparseFlowError
from model.nn.graph.builder import BATCH, Chain, refuse, reshape_node
from model.nn.graph.ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Softmax

SUPPORTED = ("Gemm", "MatMul", "Add", "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
             "Reshape", "BatchNormalization", "Dropout", "Identity", "Softmax", "LogSoftmax", "Constant",
             "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Transpose")


def load_onnx_model(path):
    """``onnx.load`` with one-line errors; external data is refused (never read from other files)."""
    import onnx
    p = Path(path)
    if not p.is_file():
        raise SparseFlowError(f"{path}: no such file")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise SparseFlowError(f"{path}: not a readable ONNX model ({first})") from None
    if not model.graph.node and not model.graph.input:
        raise SparseFlowError(f"{path}: not a readable ONNX model (empty graph)")
    return model


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _tensor(t, where: str) -> np.ndarray:
    from onnx import TensorProto, numpy_helper
    if t.data_location == TensorProto.EXTERNAL:
        raise SparseFlowError(f"{where}: tensor '{t.name}' is stored in an external data file (not supported)")
    return numpy_helper.to_array(t)


def _same_pads(shape_hw, kernel, stride, mode: str):
    pads = []
    for size, k, s in zip(shape_hw, kernel, stride):
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2) if mode == "SAME_UPPER" else (total - total // 2, total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def from_onnx(model, input_shape=None, name: str | None = None):
    """Import an ONNX model (path or ``ModelProto``) as a float :class:`Graph`."""
    import onnx

    src = "onnx"
    if not isinstance(model, onnx.ModelProto):
        src = str(model)
        model = load_onnx_model(model)
    try:
        return _import(model, input_shape, name, src)
    except SparseFlowError:
        raise
    except Exception as exc:  # a malformed model (missing attribute, wrong arity, ...)
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise SparseFlowError(f"{src}: malformed ONNX model ({type(exc).__name__}: {first})") from None


def _import(model, input_shape, name, src):
    from onnx import TensorProto

    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    consts: dict[str, np.ndarray] = {}
    for t in g.initializer:
        consts[t.name] = _tensor(t, "initializer")
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        names = ", ".join(f"'{i.name}'" for i in inputs)
        raise SparseFlowError(f"the ONNX graph has {len(inputs)} inputs ({names}): only one input is supported")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type != TensorProto.FLOAT:
        raise SparseFlowError(f"ONNX input '{inp.name}' must be a float32 tensor")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") else None
    if input_shape is None:
        if not dims or len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            raise SparseFlowError(f"ONNX input '{inp.name}' has shape {dims}: give the input shape "
                                  f"(batch excluded) to import it")
        input_shape = tuple(dims[1:])
    elif dims and len(dims) >= 2 and all(d for d in dims[1:]) and tuple(dims[1:]) != tuple(input_shape):
        raise SparseFlowError(f"input shape {tuple(input_shape)} disagrees with the ONNX input's {tuple(dims[1:])}")
    export_batch = dims[0] if dims and dims[0] else None
    if len(g.output) != 1:
        raise SparseFlowError(f"the ONNX graph has {len(g.output)} outputs: only one output is supported")

    consumers: dict[str, list] = {}
    for n in g.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    chain = Chain(input_shape, "ONNX")
    cur = inp.name
    act_shapes = {inp.name: chain.shape}  # activation -> its shape (batch excluded), for Shape

    for idx, node in enumerate(g.node):
        op = node.op_type
        nname = node.name or (node.output[0] if node.output else f"{op}_{idx}")
        if node.domain not in ("", "ai.onnx"):
            raise refuse(op, nname, f"operator domain '{node.domain}' is not supported")
        a = _attrs(node)
        ins = list(node.input)
        data = [t for t in ins if t and t not in consts]

        # -- constants and shape arithmetic --------------------------------------------------
        if op == "Constant":
            consts[node.output[0]] = _constant(a, op, nname)
            continue
        if op == "Shape":
            if ins[0] not in act_shapes:
                raise refuse(op, nname, f"takes the shape of '{ins[0]}', which is not an activation")
            full = np.array([BATCH, *act_shapes[ins[0]]], dtype=np.int64)
            start, end = a.get("start", 0), a.get("end", None)
            consts[node.output[0]] = full[start:end]
            continue
        if not data and op in ("Gather", "Unsqueeze", "Concat", "Cast", "Identity", "Squeeze", "Transpose"):
            consts[node.output[0]] = _fold(op, nname, a, [consts[t] if t else None for t in ins], opset)
            continue

        # -- one activation in, one out ---------------------------------------------------------
        if not data:
            raise refuse(op, nname, "computes on constants only (not supported)")
        if len(data) > 1 or data[0] != cur:
            other = next(t for t in data if t != cur) if cur in data else data[0]
            kind = "a residual connection or branch" if op in ("Add", "Sum", "Mul", "Concat", "Sub") else \
                "a branch"
            raise refuse(op, nname, f"takes '{other}', which is not the output of the previous operation "
                                    f"({kind}: only a chain of operations is supported)")
        uses = [c for c in consumers.get(cur, []) if c.op_type != "Shape"]
        if len(uses) > 1:
            raise refuse(op, nname, f"'{cur}' feeds {len(uses)} operations (branches are not supported)")
        for extra in node.output[1:]:
            if extra and (consumers.get(extra) or any(o.name == extra for o in g.output)):
                raise refuse(op, nname, f"its second output '{extra}' is used (not supported)")

        try:
            _convert(op, nname, a, ins, consts, chain, opset, export_batch)
        except SparseFlowError:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            raise refuse(op, nname, f"malformed ({type(exc).__name__}: {first})") from None
        cur = node.output[0]
        act_shapes[cur] = chain.shape

    if g.output[0].name != cur:
        raise SparseFlowError(f"the ONNX output '{g.output[0].name}' is not the end of the chain of operations")
    gname = name or g.name or (Path(src).stem if src != "onnx" else "onnx")
    return chain.graph(gname, f"onnx:{src}")


def _constant(a: dict, op, nname):
    from onnx import numpy_helper
    if "value" in a:
        return numpy_helper.to_array(a["value"])
    for k, dt in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                  ("value_ints", np.int64)):
        if k in a:
            return np.asarray(a[k], dtype=dt)
    raise refuse(op, nname, f"constant kind {sorted(a)} is not supported")


def _fold(op, nname, a, vals, opset):
    """Shape arithmetic on constants (what exporters emit around Reshape)."""
    x = vals[0]
    if op in ("Identity",):
        return x
    if op == "Transpose":
        return np.transpose(x, a.get("perm"))
    if op == "Cast":
        from onnx import helper
        return x.astype(helper.tensor_dtype_to_np_dtype(a["to"]))
    if op == "Gather":
        return np.take(x, vals[1], axis=a.get("axis", 0))
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes") if opset < 13 else (vals[1] if len(vals) > 1 else None)
        if op == "Unsqueeze":
            for ax in sorted(int(v) for v in np.atleast_1d(axes)):
                x = np.expand_dims(x, ax if ax >= 0 else ax + x.ndim + 1)
            return x
        return np.squeeze(x, axis=None if axes is None else tuple(int(v) for v in np.atleast_1d(axes)))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in vals], axis=a.get("axis", 0))
    raise refuse(op, nname, "not supported on constants")  # pragma: no cover


def _need_const(op, nname, consts, ins, i, what):
    if len(ins) <= i or not ins[i]:
        return None
    if ins[i] not in consts:
        raise refuse(op, nname, f"its {what} '{ins[i]}' is computed, not a constant (not supported)")
    return consts[ins[i]]


def _no_dilation(op, nname, a):
    d = a.get("dilations")
    if d is not None and any(int(v) != 1 for v in d):
        raise refuse(op, nname, f"dilations={list(d)} is not supported (only 1)")


def _window(op, nname, a, chain, kernel):
    """strides and (top, left, bottom, right) pads of a 2-D Conv / pool."""
    if len(chain.shape) != 3:
        raise refuse(op, nname, f"only 2-D (N, C, H, W) inputs are supported, got (N, {', '.join(map(str, chain.shape))})")
    if a.get("ceil_mode", 0):
        raise refuse(op, nname, "ceil_mode=1 is not supported (only floor)")
    _no_dilation(op, nname, a)
    strides = tuple(a.get("strides", (1, 1)))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        p = tuple(a.get("pads", (0, 0, 0, 0)))
        if len(p) != 4:
            raise refuse(op, nname, f"pads {list(p)} are not 2-D")
        pads = (p[0], p[1], p[2], p[3])
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(chain.shape[1:], kernel, strides, auto)
    else:
        raise refuse(op, nname, f"auto_pad={auto} is not supported")
    if len(strides) != 2:
        raise refuse(op, nname, f"strides {list(strides)} are not 2-D")
    return strides, pads


def _convert(op, nname, a, ins, consts, chain: Chain, opset, export_batch):
    if op == "Gemm":
        if a.get("transA", 0):
            raise refuse(op, nname, "transA=1 is not supported (the input must be (batch, features))")
        b = _need_const(op, nname, consts, ins, 1, "weight B")
        if b is None or b.ndim != 2:
            raise refuse(op, nname, "weight B must be a 2-D constant")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        w = b.astype(np.float64) if a.get("transB", 0) else b.astype(np.float64).T
        w = alpha * w
        c = _need_const(op, nname, consts, ins, 2, "bias C")
        bias = None
        if c is not None:
            c = np.asarray(c, dtype=np.float64)
            if c.ndim == 2 and c.shape[0] != 1:
                raise refuse(op, nname, f"bias C of shape {c.shape} differs per batch row (not supported)")
            try:
                bias = beta * np.broadcast_to(c.reshape(-1) if c.ndim else c, (w.shape[0],))
            except ValueError:
                raise refuse(op, nname, f"bias C of shape {c.shape} does not fit {w.shape[0]} outputs") from None
        chain.add(Linear(nname, w, bias))
    elif op == "MatMul":
        b = _need_const(op, nname, consts, ins, 1, "weight")
        if ins[0] not in consts and ins[1] in consts and b.ndim == 2:
            chain.add(Linear(nname, b.astype(np.float64).T, None))
        else:
            raise refuse(op, nname, "only (activation) x (2-D constant weight) is supported")
    elif op in ("Add", "Sum") and len(ins) == 2:
        const = next(consts[t] for t in ins if t in consts)
        chain.add_bias(op, nname, const)
    elif op == "Conv":
        w = _need_const(op, nname, consts, ins, 1, "weight")
        if w is None or w.ndim != 4:
            raise refuse(op, nname, f"only 2-D convolutions are supported (weight of rank {None if w is None else w.ndim})")
        if a.get("group", 1) != 1:
            raise refuse(op, nname, f"group={a['group']} (grouped convolution) is not supported (only 1)")
        strides, pads = _window(op, nname, a, chain, w.shape[2:])
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != tuple(w.shape[2:]):
            raise refuse(op, nname, f"kernel_shape {list(a['kernel_shape'])} disagrees with the weight")
        bias = _need_const(op, nname, consts, ins, 2, "bias")
        chain.add(Conv2d(nname, w, bias, strides, pads))
    elif op == "Relu":
        chain.add(ReLU(nname))
    elif op in ("MaxPool", "AveragePool"):
        k = tuple(a.get("kernel_shape", ()))
        if len(k) != 2:
            raise refuse(op, nname, f"kernel_shape {list(k)} is not 2-D (only 2-D pooling is supported)")
        if op == "MaxPool" and a.get("storage_order", 0):
            raise refuse(op, nname, "storage_order=1 is not supported")
        strides, pads = _window(op, nname, a, chain, k)
        if op == "MaxPool":
            chain.add(MaxPool2d(nname, k, strides, pads))
        else:
            chain.add(AvgPool2d(nname, k, strides, pads, count_include_pad=bool(a.get("count_include_pad", 0))))
    elif op == "GlobalAveragePool":
        if len(chain.shape) != 3:
            raise refuse(op, nname, f"only 2-D (N, C, H, W) inputs are supported, got {chain.shape}")
        chain.add(AvgPool2d(nname, None))
    elif op == "Flatten":
        rank = len(chain.shape) + 1
        axis = a.get("axis", 1)
        axis = axis + rank if axis < 0 else axis
        if axis != 1:
            raise refuse(op, nname, f"axis={a.get('axis')} is not supported (only 1: keep the batch)")
        chain.add(Flatten(nname))
    elif op == "Reshape":
        target = _need_const(op, nname, consts, ins, 1, "shape")
        if a.get("allowzero", 0):
            raise refuse(op, nname, "allowzero=1 is not supported")
        chain.add(reshape_node(op, nname, [int(v) for v in np.asarray(target).reshape(-1)], chain.shape, export_batch))
    elif op == "BatchNormalization":
        if a.get("training_mode", 0):
            raise refuse(op, nname, "training_mode=1 is not supported (inference only)")
        vals = [_need_const(op, nname, consts, ins, i, w) for i, w in
                enumerate(("input", "scale", "bias", "mean", "variance")) if i]
        if any(v is None for v in vals):
            raise refuse(op, nname, "needs constant scale, bias, mean and variance")
        chain.fold_bn(op, nname, *vals, float(a.get("epsilon", 1e-5)))
    elif op == "Dropout":
        tm = _need_const(op, nname, consts, ins, 2, "training_mode")
        if a.get("is_test", 1) == 0 and opset < 7 or (tm is not None and bool(np.asarray(tm).reshape(-1)[0])):
            raise refuse(op, nname, "training-mode dropout is not supported")
    elif op == "Identity":
        pass
    elif op in ("Softmax", "LogSoftmax"):
        if len(chain.shape) != 1:
            raise refuse(op, nname, f"only over the classes of a (batch, classes) tensor, got (N, {chain.shape})")
        axis = a.get("axis", 1 if opset < 13 else -1)
        if axis not in (1, -1):
            raise refuse(op, nname, f"axis={axis} is not supported (only the class axis)")
        chain.add(Softmax(nname, log=op == "LogSoftmax"))
    else:
        raise refuse(op, nname, "operation not supported (supported ops: docs/networks.md)")


def verify_onnx(model, graph, *, n: int = 4, seed: int = 0, x=None, rtol: float = 1e-4, atol: float = 1e-5):
    """Run ``model`` with onnxruntime and ``graph`` with the NumPy evaluator on the same inputs.

    Inputs are ``x`` or ``n`` standard-normal samples (seeded). Returns the largest absolute
    difference; raises :class:`SparseFlowError` when ``|ours - ort| > atol + rtol * |ort|``
    anywhere (float32 in both, so only accumulation order differs).
    """
    import onnx
    import onnxruntime as ort
    from model.nn.graph.evaluate import evaluate

    if not isinstance(model, onnx.ModelProto):
        model = load_onnx_model(model)
    if x is None:
        batch = next((d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[:1]
                      if d.HasField("dim_value")), None)
        x = np.random.default_rng(seed).standard_normal((batch or n, *graph.input_shape)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        ref = sess.run(None, {name: np.asarray(x, dtype=np.float32)})[0]
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise SparseFlowError(f"onnxruntime cannot run the model to cross-check the import ({first}); "
                              f"import without the check: --no-check / load_model(..., check=False)") from None
    ours = evaluate(graph, x)
    if ref.shape != ours.shape:
        raise SparseFlowError(f"the imported graph gives shape {ours.shape}, onnxruntime {ref.shape}")
    diff = np.abs(ours - ref)
    if np.any(diff > atol + rtol * np.abs(ref)):
        raise SparseFlowError(f"the imported graph differs from onnxruntime by up to {diff.max():.3g} "
                              f"(tolerance {atol} + {rtol} x |value|)")
    return float(diff.max())
