"""What the three front ends share: building the chain node by node, BatchNorm folding, refusals."""
from __future__ import annotations

import threading

import numpy as np

from model.errors import SparseFlowError
from model.nn.graph.ir import Conv2d, Flatten, Graph, Linear, Node, Reshape, Scale, Softmax

BATCH = 0  # the batch in folded shape arithmetic: ONNX Reshape's "copy this dimension"


_current = threading.local()  # the chain being built (what ``inspect`` shows of a refused model)


def refuse(op: str, name: str, why: str) -> SparseFlowError:
    """The one-line refusal: ``<op> node '<name>': <why>`` (``.op``, ``.node`` set for tools)."""
    exc = SparseFlowError(f"{op} node '{name}': {why}")
    exc.op, exc.node = op, name
    return exc


def last_chain():
    """The chain the latest import built before it stopped (or None)."""
    return getattr(_current, "chain", None)


def reset_chain():
    _current.chain = None


def fold_bn(layer: Node, gamma, beta, mean, var, eps: float) -> None:
    """Fold an inference BatchNorm into the Linear / Conv2d ``layer`` in place (float64 maths).

    ``y = gamma * (W x + b - mean) / sqrt(var + eps) + beta`` = ``W' x + b'`` with
    ``W' = W * s`` (per output row / channel) and ``b' = (b - mean) * s + beta``, ``s = gamma /
    sqrt(var + eps)``.
    """
    c = layer.weight.shape[0]
    arrs = [np.asarray(a, dtype=np.float64).reshape(-1) for a in (gamma, beta, mean, var)]
    if any(a.size != c for a in arrs):
        raise SparseFlowError(f"BatchNorm after {layer.op} '{layer.name}' has {arrs[0].size} channels, "
                              f"the layer {c}")
    gamma, beta, mean, var = arrs
    if np.any(var + eps <= 0):
        raise SparseFlowError(f"BatchNorm after {layer.op} '{layer.name}': variance + eps is not positive")
    s = gamma / np.sqrt(var + eps)
    w = layer.weight.astype(np.float64) * s.reshape((c,) + (1,) * (layer.weight.ndim - 1))
    b = layer.bias.astype(np.float64) if layer.bias is not None else np.zeros(c)
    layer.weight = w.astype(np.float32)
    layer.bias = ((b - mean) * s + beta).astype(np.float32)


class Chain:
    """Nodes appended one by one, each checked against the running shape."""

    def __init__(self, input_shape, what: str):
        self.input_shape = tuple(int(s) for s in input_shape)
        self.shape = self.input_shape
        self.nodes: list[Node] = []
        self.what = what            # "ONNX", "torch.fx", "TorchScript": for messages
        self._names: set[str] = set()
        _current.chain = self

    def unique(self, name: str) -> str:
        base, k = name or "node", 1
        while name in self._names or not name:
            name = f"{base}_{k}"
            k += 1
        return name

    def add(self, node: Node) -> Node:
        if self.nodes and isinstance(self.nodes[-1], Softmax):
            last = self.nodes[-1]
            raise refuse(node.op, node.name, f"follows the softmax '{last.name}': only a final softmax is supported")
        node.name = self.unique(node.name)
        self.shape = tuple(int(s) for s in node.out_shape(self.shape))
        self.nodes.append(node)
        self._names.add(node.name)
        return node

    def last_layer(self, op: str, name: str, what: str) -> Node:
        """The previous node if it is a Linear / Conv2d (for folding BatchNorm or a bias into it)."""
        prev = self.nodes[-1] if self.nodes else None
        if not isinstance(prev, (Linear, Conv2d)):
            after = f"{prev.op} '{prev.name}'" if prev is not None else "the input"
            raise refuse(op, name, f"{what} must directly follow a Linear/Conv2d layer to be folded, "
                                   f"but follows {after}")
        return prev

    def fold_bn(self, op, name, gamma, beta, mean, var, eps):
        """Fold into the previous Linear/Conv2d, or else keep as a host-side per-channel Scale."""
        prev = self.nodes[-1] if self.nodes else None
        if isinstance(prev, (Linear, Conv2d)):
            fold_bn(prev, gamma, beta, mean, var, eps)
            return
        g, b, m, v = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (gamma, beta, mean, var))
        if np.any(v + eps <= 0):
            raise refuse(op, name, "variance + eps is not positive")
        s = g / np.sqrt(v + eps)
        self.add(Scale(name, s, b - m * s))

    def add_bias(self, op: str, name: str, const) -> None:
        """Fold a constant added after a layer (MatMul + Add, Conv + Add) into its bias."""
        layer = self.last_layer(op, name, "a constant add")
        c = np.asarray(const, dtype=np.float64)
        n = layer.weight.shape[0]
        core = c.shape
        while core and core[0] == 1 and len(core) > (1 if isinstance(layer, Linear) else 3):
            core = core[1:]
        if c.size == 1:
            vec = np.full(n, float(c.reshape(-1)[0]))
        elif core == ((n,) if isinstance(layer, Linear) else (n, 1, 1)):
            vec = c.reshape(n)
        else:
            raise refuse(op, name, f"adds a constant of shape {c.shape} that is not one value per output "
                                   f"of {layer.op} '{layer.name}' (a bias)")
        b = layer.bias.astype(np.float64) if layer.bias is not None else np.zeros(n)
        layer.bias = (b + vec).astype(np.float32)

    def graph(self, name: str, source: str) -> Graph:
        if not self.nodes:
            raise SparseFlowError(f"the {self.what} model has no supported operation between input and output")
        return Graph(self.input_shape, self.nodes, name=name, source=source)


def reshape_node(op, nname, target, shape, export_batch=None):
    """A Reshape to ``target`` (batch included) that keeps the batch, as a Flatten or a Reshape node.

    ``target[0]`` must be :data:`BATCH` (copy the batch), ``-1`` with every other size known, or
    the batch size the model was exported with (``export_batch``); ``0`` elsewhere copies that
    dimension (ONNX), ``-1`` is inferred.
    """
    total = int(np.prod(shape))
    if not target:
        raise refuse(op, nname, "empty target shape")
    first, rest = target[0], list(target[1:])
    keeps_batch = first == BATCH or (first == -1 and -1 not in rest) or (export_batch and first == export_batch)
    if not keeps_batch:
        raise refuse(op, nname, f"target shape {target} changes the batch dimension (not supported)")
    full_in = list(shape)
    res = []
    for i, s in enumerate(rest):
        if s == 0:
            if i >= len(full_in):
                raise refuse(op, nname, f"target shape {target}: 0 copies a missing dimension")
            s = full_in[i]
        res.append(s)
    if res.count(-1) > 1:
        raise refuse(op, nname, f"target shape {target} has more than one -1")
    known = int(np.prod([s for s in res if s != -1])) if res else 1
    if -1 in res:
        if known <= 0 or total % known:
            raise refuse(op, nname, f"cannot reshape (N, {', '.join(map(str, shape))}) to {target}")
        res[res.index(-1)] = total // known
    if int(np.prod(res)) != total:
        raise refuse(op, nname, f"target shape {target} changes the batch dimension (not supported)")
    if len(res) == 1:
        return Flatten(nname)
    return Reshape(nname, tuple(res))
