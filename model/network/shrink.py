"""Remove pruned channels: a channel-pruned network becomes a physically smaller one.

After channel (row) pruning a layer has output units whose weights are all zero. Such a unit
(a row of a Linear layer, an output channel of a Conv2d, BatchNorm already folded into both
at import) outputs a constant: its bias (0 without one), through the host operations that
follow (ReLU, pooling, flatten). :func:`shrink_channels` removes it from the float graph:

* the layer's row (weight row / output channel) and its bias entry;
* the matching inputs of the next engine layer: its columns (a Linear after a ``Flatten`` loses
  the ``H*W`` features of the channel) or its input channels (a Conv2d), their contribution to
  the next layer (weight times the constant) folded into that layer's bias (created if needed).

The result computes the same function (float rounding aside) with smaller matrices, so the
compiled network runs in fewer cycles on the dense engine. Cascades work: a next-layer row whose
non-zero weights all sat on removed inputs is itself a constant row and goes in turn.

What stays: the last engine layer's rows (the network's outputs); a constant that is not the
same at every output position (a non-zero constant under a zero-padded next Conv2d or an
average pool counting zero padding) unless the constant is 0; every row whose path to the
next engine layer crosses a ``Reshape`` (its shape is fixed). Each layer's report row says what
was removed and what was kept.
"""
from __future__ import annotations

import copy

import numpy as np

from model.nn.graph.ir import AvgPool2d, Conv2d, Flatten, Graph, MaxPool2d, ReLU, Softmax


def _path(nodes: list, i: int) -> tuple[list, int | None]:
    """Host nodes after engine layer ``i`` and the index of the next engine layer (None: none)."""
    hosts = []
    for j in range(i + 1, len(nodes)):
        if not nodes[j].host:
            return hosts, j
        hosts.append(nodes[j])
    return hosts, None


def _carry(hosts: list, const: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """The constants after the host nodes, and whether a non-zero one stays constant everywhere
    (``None``: a ``Reshape`` or an unknown node on the way: nothing can be removed)."""
    uniform = True
    for h in hosts:
        if isinstance(h, ReLU):
            const = np.maximum(const, 0)
        elif isinstance(h, AvgPool2d):
            if not h.is_global and any(h.padding) and h.count_include_pad:
                uniform = False  # border windows divide zeros in
        elif not isinstance(h, (MaxPool2d, Flatten, Softmax)):
            return None, False
    return const, uniform


def _zero_rows(n) -> np.ndarray:
    return np.flatnonzero(~np.any(n.matrix() != 0, axis=1))


def shrink_channels(graph: Graph) -> tuple[Graph, list[dict]]:
    """The graph without its removable zero rows (module docstring), and one report row per
    engine layer: ``{"name", "before": [rows, cols], "after": [rows, cols], "removed_rows",
    "removed_inputs", "kept_zero_rows"}``."""
    nodes = [copy.copy(n) for n in graph.nodes]
    shapes = graph.shapes()
    before = {n.name: list(n.matrix().shape) for n in nodes if not n.host}
    removed_rows = {n.name: 0 for n in nodes if not n.host}
    removed_in = dict(removed_rows)
    kept_zero = dict(removed_rows)
    for i, n in enumerate(nodes):
        if n.host:
            continue
        zero = _zero_rows(n)
        hosts, j = _path(nodes, i)
        if not len(zero) or j is None:
            kept_zero[n.name] = len(zero)
            continue
        const = np.zeros(len(zero)) if n.bias is None else n.bias[zero].astype(np.float64)
        after, uniform = _carry(hosts, const)
        if after is None:
            kept_zero[n.name] = len(zero)
            continue
        nxt = nodes[j]
        if isinstance(nxt, Conv2d) and any(nxt.padding):
            uniform = False  # zero padding around the constant map: not constant at the borders
        ok = np.ones(len(zero), bool) if uniform else after == 0
        if len(zero) == n.matrix().shape[0] and ok.all():
            ok[np.argmax(np.abs(after))] = False  # keep one unit: a layer of no output has no engine build
        zero, after = zero[ok], after[ok]
        kept_zero[n.name] = int((~ok).sum())
        if not len(zero):
            continue
        keep = np.setdiff1d(np.arange(n.matrix().shape[0]), zero)
        n.weight = np.ascontiguousarray(n.weight[keep])
        n.bias = None if n.bias is None else np.ascontiguousarray(n.bias[keep])
        removed_rows[n.name] = len(zero)
        # The next layer: drop the inputs fed by the removed units, fold their constants into its bias.
        if isinstance(nxt, Conv2d):
            w = nxt.weight.astype(np.float64)
            fold = np.einsum("ochw,c->o", w[:, zero], after)
            nxt.weight = np.ascontiguousarray(nxt.weight[:, keep])
            removed_in[nxt.name] += len(zero) * w.shape[2] * w.shape[3]
        else:
            per = 1
            if any(isinstance(h, Flatten) for h in hosts):
                flat_in = shapes[next(k for k in range(i + 1, j) if isinstance(nodes[k], Flatten))][0]
                per = int(np.prod(flat_in[1:])) if len(flat_in) == 3 else 1
            cols_gone = (zero[:, None] * per + np.arange(per)).reshape(-1)
            w = nxt.weight.astype(np.float64)
            fold = w[:, cols_gone] @ np.repeat(after, per)
            nxt.weight = np.ascontiguousarray(np.delete(nxt.weight, cols_gone, axis=1))
            removed_in[nxt.name] += len(cols_gone)
        if np.any(fold != 0):
            base = np.zeros(nxt.weight.shape[0]) if nxt.bias is None else nxt.bias.astype(np.float64)
            nxt.bias = (base + fold).astype(np.float32)
    out = Graph(graph.input_shape, nodes, name=graph.name, source=graph.source)
    rows = [{"name": n.name, "before": before[n.name], "after": list(n.matrix().shape),
             "removed_rows": removed_rows[n.name], "removed_inputs": removed_in[n.name],
             "kept_zero_rows": kept_zero[n.name]} for n in out.nodes if not n.host]
    return out, rows
