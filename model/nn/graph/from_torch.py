"""PyTorch front end: an ``nn.Module`` traced with ``torch.fx.symbolic_trace`` to a Graph.

Supported, as modules or functions: ``Linear``; ``Conv2d`` (any kernel and stride, zero
padding incl. ``'same'``/``'valid'``; ``groups = 1``, ``dilation = 1``); ``ReLU``
(``nn.ReLU``, ``F.relu``, ``torch.relu``, ``x.relu()``); ``MaxPool2d`` / ``AvgPool2d``
(``ceil_mode = False``, ``dilation = 1``, no ``divisor_override``); ``AdaptiveAvgPool2d(1)``
(global average pool); ``Flatten`` / ``torch.flatten(x, 1)`` / ``x.view(x.size(0), -1)`` /
``reshape``; ``BatchNorm1d``/``BatchNorm2d`` (running statistics, folded into the previous
Linear/Conv2d, else a host-side per-channel scale); ``Dropout``/``Identity`` (dropped); a final
``Softmax``/``LogSoftmax``. Anything else is refused naming the op and the node.
"""
from __future__ import annotations

import operator

import numpy as np

from model.errors import SparseFlowError
from model.nn.graph.builder import BATCH, Chain, refuse, reshape_node
from model.nn.graph.ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Softmax


class _Batch:
    """The batch size seen by the tracer (``x.size(0)``, ``x.shape[0]``)."""

    def __repr__(self):
        return "N"


_N = _Batch()
_SCALAR = (operator.getitem, operator.mul, operator.add, operator.sub, operator.floordiv, operator.neg)
_DROPPED = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "Identity")


def _np(t) -> np.ndarray:
    return t.detach().cpu().to(dtype=__import__("torch").float64).numpy()


def _conv_pads(op, name, padding, kernel, stride):
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            tot = [k - 1 for k in kernel]
            return (tot[0] // 2, tot[1] // 2, tot[0] - tot[0] // 2, tot[1] - tot[1] // 2)
        raise refuse(op, name, f"padding={padding!r} is not supported")
    return padding


def _first_layer_shape(gm):
    """``(in_features,)`` when the first operation is a Linear module, else None."""
    from torch import nn
    for node in gm.graph.nodes:
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            if isinstance(mod, nn.Linear):
                return (mod.in_features,)
            return None
        if node.op in ("call_function", "call_method") and _fname(node) not in ("size", "getattr", "getitem"):
            return None
    return None


def _fname(node) -> str:
    if node.op == "call_method":
        return node.target
    t = node.target
    if t is getattr:
        return "getattr"
    if t is operator.getitem:
        return "getitem"
    return getattr(t, "__name__", str(t)).lstrip("_")


def from_module(module, input_shape=None, name: str | None = None):
    """Import an ``nn.Module`` (evaluated as in ``eval()`` mode) as a float :class:`Graph`."""
    import torch
    from torch import fx, nn

    if not isinstance(module, nn.Module):
        raise SparseFlowError(f"not a torch.nn.Module: {type(module).__name__}")
    if isinstance(module, torch.jit.ScriptModule):
        from model.nn.graph.from_torchscript import from_scriptmodule
        return from_scriptmodule(module, input_shape, name)
    if type(module).__module__.startswith("torch.nn.modules") and not isinstance(module, nn.Sequential):
        module = nn.Sequential(module)  # a single layer: trace it as a leaf (named "0")
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise SparseFlowError(f"torch.fx could not trace {type(module).__name__} ({type(exc).__name__}: {first}); "
                              f"data-dependent control flow is not supported") from None
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        names = ", ".join(f"'{n.target}'" for n in placeholders)
        raise SparseFlowError(f"the model takes {len(placeholders)} inputs ({names}): only one input is supported")
    if input_shape is None:
        input_shape = _first_layer_shape(gm)
        if input_shape is None:
            raise SparseFlowError(f"give the input shape (batch excluded, e.g. 1,28,28) to import "
                                  f"{type(module).__name__}: its first layer is not a Linear")
    chain = Chain(input_shape, "torch.fx")
    cur = placeholders[0]
    env: dict = {}  # fx node -> python value (sizes, constants)
    shapes = {cur: chain.shape}  # activation node -> its shape (batch excluded)

    def val(a):
        if isinstance(a, fx.Node):
            if a is cur:
                return cur
            if a in env:
                return env[a]
            raise refuse(a.op, a.name, "its value is not known at import (not supported)")
        if isinstance(a, (list, tuple)):
            return type(a)(val(v) for v in a)
        return a

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            out = node.args[0]
            if out is not cur:
                raise SparseFlowError(f"the model's output '{getattr(out, 'name', out)}' is not the end of the "
                                      f"chain of operations (only one tensor output is supported)")
            break
        if node.op == "get_attr":
            raise refuse("get_attr", node.name, f"uses the tensor '{node.target}' directly (only layers as "
                                                f"modules or the functions listed in docs/networks.md)")
        fname = _fname(node) if node.op != "call_module" else None
        # size / shape queries of an activation (its shape is known at import)
        if node.op in ("call_method", "call_function") and fname in ("size", "getattr") and node.args \
                and node.args[0] in shapes:
            full = (_N, *shapes[node.args[0]])
            rest = [val(a) for a in node.args[1:]]
            if fname == "getattr" and rest[0] != "shape":
                raise refuse("getattr", node.name, f"reads '.{rest[0]}' of a tensor (not supported)")
            dim = rest[0] if fname == "size" and rest else node.kwargs.get("dim")
            env[node] = full if dim is None else full[dim]
            continue
        others = [a for a in list(node.all_input_nodes) if a is not cur and a not in env]
        if others:
            op = type(gm.get_submodule(node.target)).__name__ if node.op == "call_module" else fname
            other = others[0]
            kind = "a residual connection" if fname in ("add", "iadd", "cat", "mul", "sub") else "a branch"
            raise refuse(op, node.name, f"takes '{other.name}', which is not the output of the previous operation "
                                        f"({kind}: only a chain of operations is supported)")
        args = [val(a) for a in node.args]
        kwargs = {k: val(v) for k, v in node.kwargs.items()}
        acts = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, fx.Node) and a is cur]

        if node.op == "call_function" and not acts and node.target in _SCALAR:
            if any(a is _N for a in args):  # arithmetic on the batch size
                raise refuse(fname, node.name, "computes with the batch size (not supported: keep it as "
                                               "x.size(0) or -1 in view/reshape)")
            env[node] = node.target(*args)
            continue
        if not acts:
            op = fname or node.target
            raise refuse(op, node.name, "computes on constants only (not supported)")
        users = [u for u in cur.users if not (u.op in ("call_method", "call_function") and
                                              _fname(u) in ("size", "getattr"))]
        if len(users) > 1:
            raise refuse(fname or type(gm.get_submodule(node.target)).__name__, node.name,
                         f"its input '{cur.name}' also feeds {', '.join(u.name for u in users if u is not node)} "
                         f"(branches and residual connections are not supported)")

        if node.op == "call_module":
            _module(chain, gm.get_submodule(node.target), node.target, args, kwargs)
        else:
            _function(chain, fname, node.name, args, kwargs, cur)
        cur = node
        shapes[cur] = chain.shape
    return chain.graph(name or type(module).__name__, "torch.fx")



def _module(chain: Chain, mod, name: str, args, kwargs):
    from torch import nn
    op = type(mod).__name__
    if isinstance(mod, nn.Linear):
        chain.add(Linear(name, _np(mod.weight), None if mod.bias is None else _np(mod.bias)))
    elif isinstance(mod, nn.Conv2d) and type(mod) is nn.Conv2d:
        if mod.groups != 1:
            raise refuse(op, name, f"groups={mod.groups} (grouped convolution) is not supported (only 1)")
        if tuple(mod.dilation) != (1, 1):
            raise refuse(op, name, f"dilation={tuple(mod.dilation)} is not supported (only 1)")
        if mod.padding_mode != "zeros":
            raise refuse(op, name, f"padding_mode='{mod.padding_mode}' is not supported (only zeros)")
        pads = _conv_pads(op, name, mod.padding, mod.kernel_size, mod.stride)
        chain.add(Conv2d(name, _np(mod.weight), None if mod.bias is None else _np(mod.bias), mod.stride, pads))
    elif type(mod) is nn.ReLU:
        chain.add(ReLU(name))
    elif type(mod) is nn.MaxPool2d:
        _maxpool(chain, op, name, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode,
                 mod.return_indices)
    elif type(mod) is nn.AvgPool2d:
        _avgpool(chain, op, name, mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, mod.count_include_pad,
                 mod.divisor_override)
    elif type(mod) is nn.AdaptiveAvgPool2d:
        _adaptive(chain, op, name, mod.output_size)
    elif type(mod) is nn.Flatten:
        _flatten(chain, op, name, mod.start_dim, mod.end_dim)
    elif type(mod) in (nn.BatchNorm1d, nn.BatchNorm2d):
        if mod.running_mean is None or mod.running_var is None:
            raise refuse(op, name, "track_running_stats=False (batch statistics) is not supported")
        rank = 1 if isinstance(mod, nn.BatchNorm1d) else 3
        if len(chain.shape) not in ((1, 2) if rank == 1 else (3,)):
            raise refuse(op, name, f"input of shape (N, {', '.join(map(str, chain.shape))}) does not suit it")
        c = mod.num_features
        gamma = _np(mod.weight) if mod.weight is not None else np.ones(c)
        beta = _np(mod.bias) if mod.bias is not None else np.zeros(c)
        chain.fold_bn(op, name, gamma, beta, _np(mod.running_mean), _np(mod.running_var), float(mod.eps))
    elif op in _DROPPED and type(mod).__module__.startswith("torch.nn"):
        pass
    elif type(mod) in (nn.Softmax, nn.LogSoftmax):
        _softmax(chain, op, name, mod.dim, op == "LogSoftmax")
    else:
        raise refuse(op, name, "module not supported (supported layers: docs/networks.md)")


def _maxpool(chain, op, name, kernel, stride, padding, dilation, ceil_mode, return_indices):
    if ceil_mode:
        raise refuse(op, name, "ceil_mode=True is not supported (only floor)")
    if return_indices:
        raise refuse(op, name, "return_indices=True is not supported")
    d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    if d != (1, 1):
        raise refuse(op, name, f"dilation={d} is not supported (only 1)")
    _need3(chain, op, name)
    chain.add(MaxPool2d(name, kernel, stride if stride not in (None, ()) else None, padding))


def _avgpool(chain, op, name, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if ceil_mode:
        raise refuse(op, name, "ceil_mode=True is not supported (only floor)")
    if divisor_override is not None:
        raise refuse(op, name, f"divisor_override={divisor_override} is not supported")
    _need3(chain, op, name)
    chain.add(AvgPool2d(name, kernel, stride if stride not in (None, ()) else None, padding,
                        count_include_pad=count_include_pad))


def _adaptive(chain, op, name, size):
    s = (size, size) if isinstance(size, int) else tuple(size)
    if s != (1, 1):
        raise refuse(op, name, f"output_size={size} is not supported (only 1: global average pool)")
    _need3(chain, op, name)
    chain.add(AvgPool2d(name, None))


def _need3(chain, op, name):
    if len(chain.shape) != 3:
        raise refuse(op, name, f"needs an (N, C, H, W) input, got (N, {', '.join(map(str, chain.shape))})")


def _flatten(chain, op, name, start, end):
    rank = len(chain.shape) + 1
    end = end + rank if end < 0 else end
    start = start + rank if start < 0 else start
    if start != 1 or end != rank - 1:
        raise refuse(op, name, f"start_dim={start}, end_dim={end} is not supported (only 1 to the last: "
                               f"keep the batch, flatten the rest)")
    chain.add(Flatten(name))


def _softmax(chain, op, name, dim, log):
    if len(chain.shape) != 1:
        raise refuse(op, name, f"only over the classes of a (batch, classes) tensor, "
                               f"got (N, {', '.join(map(str, chain.shape))})")
    if dim not in (None, 1, -1):
        raise refuse(op, name, f"dim={dim} is not supported (only the class axis)")
    chain.add(Softmax(name, log=log))


def _arg(args, kwargs, i, key, default):
    if len(args) > i:
        return args[i]
    return kwargs.get(key, default)


def _function(chain: Chain, f: str, name: str, args, kwargs, cur):
    if f in ("relu", "relu_"):
        chain.add(ReLU(name))
    elif f in ("flatten",):
        _flatten(chain, f, name, _arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1))
    elif f in ("view", "reshape"):
        shape = list(args[1:]) if len(args) > 1 else list(kwargs.get("shape", kwargs.get("size", ())))
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = list(shape[0])
        if any(s == 0 and s is not _N for s in shape):
            raise refuse(f, name, f"target shape {shape} has a zero size")
        target = [BATCH if s is _N else int(s) for s in shape]
        chain.add(reshape_node(f, name, target, chain.shape))
    elif f in ("contiguous",):
        pass
    elif f in ("max_pool2d", "max_pool2d_with_indices"):
        k = _arg(args, kwargs, 1, "kernel_size", None)
        _maxpool(chain, f, name, k, _arg(args, kwargs, 2, "stride", None), _arg(args, kwargs, 3, "padding", 0),
                 _arg(args, kwargs, 4, "dilation", 1), _arg(args, kwargs, 5, "ceil_mode", False),
                 _arg(args, kwargs, 6, "return_indices", f == "max_pool2d_with_indices"))
    elif f == "avg_pool2d":
        _avgpool(chain, f, name, _arg(args, kwargs, 1, "kernel_size", None), _arg(args, kwargs, 2, "stride", None),
                 _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "ceil_mode", False),
                 _arg(args, kwargs, 5, "count_include_pad", True), _arg(args, kwargs, 6, "divisor_override", None))
    elif f == "adaptive_avg_pool2d":
        _adaptive(chain, f, name, _arg(args, kwargs, 1, "output_size", None))
    elif f in ("dropout", "dropout1d", "dropout2d", "feature_dropout", "alpha_dropout"):
        pass
    elif f in ("softmax", "log_softmax"):
        _softmax(chain, f, name, _arg(args, kwargs, 1, "dim", None), f == "log_softmax")
    else:
        raise refuse(f, name, "function not supported (supported operations: docs/networks.md)")
