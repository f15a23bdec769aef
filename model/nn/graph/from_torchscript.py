"""TorchScript front end: a ``torch.jit`` file (traced or scripted) to a Graph.

The module is loaded with ``torch.jit.load`` (TorchScript's own format: code + tensors, no
arbitrary Python objects) and its inlined graph is *interpreted*: constants, attribute reads,
lists, the shape queries and the ``if`` statements of scripted PyTorch code are evaluated at
import (with ``training = False``), and each ``aten::`` operation on the activation becomes a
node. The operations are those of :mod:`model.nn.graph.from_torch`. A ``.pt`` file written by
``torch.save`` (a pickled state dict or module) is refused: it is never unpickled beyond
``torch.load(weights_only=True)``, used only to say which of the two it is. A TorchScript file
does not record its input shape; ``sparseflow zoo`` stores it as the extra file
``sparseflow.json`` (``{"input_shape": [1, 28, 28]}``), read when no shape is given.
"""
from __future__ import annotations

import json
import operator
import warnings
import zipfile
from pathlib import Path

import numpy as np

from model.errors import SparseFlowError
from model.nn.graph.builder import BATCH, Chain, refuse, reshape_node
from model.nn.graph.ir import Conv2d, Linear, ReLU
from model.nn.graph.from_torch import _conv_pads, _N


META = "sparseflow.json"  # optional extra file in a TorchScript archive: {"input_shape": [C, H, W]}


class _Act:
    """The current activation (a token: only the latest one may be used)."""

    def __init__(self, k: int, vname: str):
        self.k, self.vname = k, vname


_SCALAR_OPS = {
    "aten::eq": operator.eq, "aten::ne": operator.ne, "aten::lt": operator.lt, "aten::gt": operator.gt,
    "aten::le": operator.le, "aten::ge": operator.ge, "aten::add": operator.add, "aten::sub": operator.sub,
    "aten::mul": operator.mul, "aten::floordiv": operator.floordiv, "aten::__and__": operator.and_,
    "aten::__or__": operator.or_, "aten::__is__": operator.is_, "aten::__isnot__": operator.is_not,
    "aten::__not__": operator.not_, "aten::neg": operator.neg, "aten::__getitem__": operator.getitem,
    "aten::len": len, "aten::remainder": operator.mod, "aten::div": operator.truediv,
}
_PASS = ("prim::unchecked_cast", "aten::Int", "prim::NumToTensor", "aten::IntImplicit", "aten::ScalarImplicit",
         "aten::Float", "aten::FloatImplicit", "prim::Uninitialized")


def _load_file(path):
    """``torch.jit.load`` a TorchScript file; refuse ``torch.save`` pickles in one line."""
    import torch
    p = Path(path)
    if not p.is_file():
        raise SparseFlowError(f"{path}: no such file")
    names = []
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            names = []
    is_script = any(n.endswith("/constants.pkl") or "/code/" in n for n in names)
    if not is_script:
        raise SparseFlowError(_what_pickle(p, torch))
    extra = {META: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sm = torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise SparseFlowError(f"{path}: not a readable TorchScript file ({first})") from None
    meta = {}
    if extra.get(META):
        try:
            meta = json.loads(extra[META])
        except (ValueError, UnicodeDecodeError):
            meta = {}
    return sm, meta if isinstance(meta, dict) else {}


def _what_pickle(p: Path, torch) -> str:
    """The refusal line for a file that is not TorchScript (never unpickled beyond weights_only)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "WeightsUnpickler" in str(exc):
            return (f"{p}: a pickled PyTorch object (torch.save of a module?) is refused: unpickling it could run "
                    f"arbitrary code; save the model with torch.jit.trace/script(...).save() or export it to ONNX")
        return f"{p}: not a TorchScript, ONNX or PyTorch file"
    import torch as _t
    if isinstance(obj, dict) and obj and all(isinstance(v, _t.Tensor) for v in obj.values()):
        kind = "a state dict (weights without the network) written by torch.save"
    else:
        kind = f"a pickled {type(obj).__name__}"
    return (f"{p}: {kind}, not a TorchScript file: save the model with "
            f"torch.jit.trace/script(...).save() or export it to ONNX")


def from_torchscript(path, input_shape=None, name: str | None = None):
    sm, meta = _load_file(path)
    if input_shape is None and meta.get("input_shape"):
        input_shape = tuple(int(v) for v in meta["input_shape"])
    return from_scriptmodule(sm, input_shape, name or Path(path).stem, source=str(path))


def from_scriptmodule(sm, input_shape=None, name=None, source="torchscript"):
    """Interpret ``sm``'s inlined graph (see the module docstring)."""
    g = sm.inlined_graph
    ins = list(g.inputs())
    if len(ins) != 2:
        raise SparseFlowError(f"the TorchScript model takes {len(ins) - 1} inputs "
                              f"({', '.join(repr(v.debugName()) for v in ins[1:])}): only one input is supported")
    it = _Interp(sm, input_shape)
    it.run(g, ins)
    return it.chain.graph(name or sm.original_name, f"torchscript:{source}")


class _Interp:
    def __init__(self, sm, input_shape):
        self.sm = sm
        self.input_shape = input_shape
        self.chain: Chain | None = None
        self.env: dict = {}
        self.vpath: dict = {}  # value id -> module path of a module / the owner of a parameter
        self.k = 0
        self.act_shapes: dict = {}

    # -- values ---------------------------------------------------------------------------
    def v(self, value):
        try:
            return self.env[value.unique()]
        except KeyError:
            raise SparseFlowError(f"TorchScript value '%{value.debugName()}' is not known at import") from None

    def set(self, value, x):
        self.env[value.unique()] = x

    def run(self, g, ins):
        self.set(ins[0], self.sm)
        self.x_in = ins[1]
        self.set(ins[1], _Act(0, ins[1].debugName()))
        self.cur = 0
        self.block(g.nodes())
        out = list(g.outputs())
        if len(out) != 1 or not isinstance(self.v(out[0]), _Act) or self.v(out[0]).k != self.cur:
            raise SparseFlowError("the TorchScript model's output is not the end of the chain of operations "
                                  "(only one tensor output is supported)")

    def block(self, nodes):
        for n in nodes:
            self.node(n)

    def _name(self, n, params=()) -> str:
        for p in params:
            path = self.vpath.get(p.unique())
            if path:
                return path
        return n.kind().split("::", 1)[-1].strip("_")  # made unique by the chain: relu, relu_1, ...

    def node(self, n):
        kind = n.kind()
        outs = list(n.outputs())
        ins = list(n.inputs())
        if kind == "prim::Constant":
            try:
                val = outs[0].toIValue()
            except Exception:
                val = None
            self.set(outs[0], val)
            return
        if kind == "prim::GetAttr":
            obj = self.v(ins[0])
            attr = n.s("name")
            val = False if attr == "training" else getattr(obj, attr)
            base = self.vpath.get(ins[0].unique(), "")
            path = f"{base}.{attr}" if base else attr
            is_module = hasattr(val, "_c")
            self.vpath[outs[0].unique()] = path if is_module else base
            self.set(outs[0], val)
            return
        if kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            self.set(outs[0], [self.v(i) for i in ins])
            return
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            for o, x in zip(outs, self.v(ins[0])):
                self.set(o, x)
            return
        if kind == "prim::If":
            cond = self.v(ins[0])
            if not isinstance(cond, bool):
                raise refuse(kind, self._name(n), "a condition that depends on the data (not supported)")
            blk = list(n.blocks())[0 if cond else 1]
            self.block(blk.nodes())
            for o, r in zip(outs, blk.returnNode().inputs()):
                self.set(o, self.v(r))
            return
        if kind == "prim::RaiseException":
            raise refuse(kind, self._name(n), "the model raises an exception for this input shape")
        if kind in ("aten::warn", "prim::Print"):
            return
        if kind in _PASS:
            self.set(outs[0], self.v(ins[0]))
            return
        vals = [self.v(i) for i in ins]
        acts = [x for x in vals if isinstance(x, _Act)]
        if not acts:
            if kind in _SCALAR_OPS and not any(x is _N for x in vals):
                self.set(outs[0], _SCALAR_OPS[kind](*vals))
                return
            if kind == "aten::format":
                self.set(outs[0], str(vals[0]))
                return
            if kind == "aten::t" and len(vals) == 1:
                self.set(outs[0], vals[0].t())
                return
            raise refuse(kind, self._name(n), "computes on constants (not supported)")
        if kind in ("aten::size", "aten::dim", "aten::len"):
            shape = self._shape() if acts[0].k == 0 else self.act_shapes[acts[0].k]
            full = [_N, *shape]
            if kind == "aten::dim":
                self.set(outs[0], len(full))
            elif kind == "aten::size":
                self.set(outs[0], full if len(vals) == 1 else full[vals[1]])
            else:
                self.set(outs[0], len(full))
            return
        if self.chain is None:
            self._start(kind, vals)
        for x in acts:
            if x.k != self.cur:
                raise refuse(kind, self._name(n), f"takes '%{x.vname}', which is not the output of the previous "
                                                  f"operation (a residual connection or branch: only a chain of "
                                                  f"operations is supported)")
        if len(acts) > 1 or not isinstance(vals[0], _Act):
            raise refuse(kind, self._name(n), "combines two computed tensors (a residual connection: not supported)")
        self._op(n, kind, vals, ins)
        self.k += 1
        self.cur = self.k
        self.act_shapes[self.k] = self.chain.shape
        self.set(outs[0], _Act(self.k, outs[0].debugName()))

    def _shape(self):
        if self.chain is None:
            if self.input_shape is None:
                raise SparseFlowError("give the input shape (batch excluded) to import this TorchScript model")
            self.chain = Chain(self.input_shape, "TorchScript")
        return self.chain.shape

    def _start(self, kind, vals):
        if self.input_shape is None:
            if kind in ("aten::linear",) and hasattr(vals[1], "shape"):
                self.input_shape = (int(vals[1].shape[1]),)
            else:
                raise SparseFlowError("give the input shape (batch excluded, e.g. 1,28,28) to import this "
                                      "TorchScript model: its first layer is not a Linear")
        self.chain = Chain(self.input_shape, "TorchScript")

    def _op(self, n, kind, a, ins):
        from model.nn.graph.from_torch import _adaptive, _avgpool, _flatten, _maxpool, _np, _softmax
        chain = self.chain
        op = kind.split("::", 1)[1]
        name = self._name(n, [v for v, x in zip(ins[1:3], a[1:3]) if hasattr(x, "shape")])
        if op == "linear":
            chain.add(Linear(name, _np(a[1]), None if a[2] is None else _np(a[2])))
        elif op in ("conv2d", "_convolution", "_convolution_mode"):
            w, b, stride, pad, dil = a[1], a[2], a[3], a[4], a[5]
            if op == "_convolution":
                if a[6]:
                    raise refuse(kind, name, "transposed convolution is not supported")
                groups = a[8]
            else:
                groups = a[6]
            if w.dim() != 4:
                raise refuse(kind, name, f"only 2-D convolutions are supported (weight of rank {w.dim()})")
            if groups != 1:
                raise refuse(kind, name, f"groups={groups} (grouped convolution) is not supported (only 1)")
            if tuple(dil) != (1, 1):
                raise refuse(kind, name, f"dilation={tuple(dil)} is not supported (only 1)")
            pads = _conv_pads(kind, name, pad, tuple(w.shape[2:]), stride)
            chain.add(Conv2d(name, _np(w), None if b is None else _np(b), stride, pads))
        elif op in ("relu", "relu_"):
            chain.add(ReLU(name))
        elif op == "max_pool2d":
            _maxpool(chain, kind, name, a[1], a[2] or None, a[3], a[4], a[5], False)
        elif op == "avg_pool2d":
            _avgpool(chain, kind, name, a[1], a[2] or None, a[3], a[4], a[5], a[6])
        elif op == "adaptive_avg_pool2d":
            _adaptive(chain, kind, name, a[1])
        elif op == "flatten":
            _flatten(chain, kind, name, a[1], a[2])
        elif op in ("view", "reshape"):
            shape = list(a[1])
            if any(s == 0 and s is not _N for s in shape):
                raise refuse(kind, name, f"target shape {shape} has a zero size")
            chain.add(reshape_node(kind, name, [BATCH if s is _N else int(s) for s in shape], chain.shape))
        elif op == "batch_norm":
            x, w, b, rm, rv, training, _, eps = a[:8]
            if rm is None or rv is None:
                raise refuse(kind, name, "batch statistics (track_running_stats=False) are not supported")
            c = rm.shape[0]
            chain.fold_bn(kind, name, _np(w) if w is not None else np.ones(c), _np(b) if b is not None else np.zeros(c),
                          _np(rm), _np(rv), float(eps))
        elif op in ("dropout", "dropout_", "feature_dropout", "alpha_dropout", "contiguous", "detach"):
            pass
        elif op in ("softmax", "log_softmax"):
            _softmax(chain, kind, name, a[1], op == "log_softmax")
        else:
            raise refuse(kind, name, "operation not supported (supported operations: docs/networks.md)")
