"""The float reference of a :class:`~model.nn.graph.ir.Graph` in NumPy (batch first, NCHW).

Every importer is checked against this evaluator (and it against PyTorch / onnxruntime in
the tests). It computes in float64 by default, so that the importers' differences (float32
weight rounding of folded BatchNorm, say) are not hidden by accumulation order.
"""
from __future__ import annotations

import numpy as np

from model.errors import SparseFlowError
from model.nn.graph.ir import AvgPool2d, Conv2d, Flatten, Graph, Linear, MaxPool2d, ReLU, Reshape, Scale, Softmax
from model.nn.graph.lower import conv2d, pool2d


def check_input(graph: Graph, x) -> np.ndarray:
    """``x`` as a float array ``(N, *input_shape)``; a single sample without the batch is accepted."""
    try:
        x = np.asarray(x)
    except Exception:
        raise SparseFlowError("the input is not an array") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
                                 or x.dtype == np.bool_):
        raise SparseFlowError(f"the input must be numbers, not {x.dtype}")
    if tuple(x.shape) == graph.input_shape:
        x = x[None]
    if tuple(x.shape[1:]) != graph.input_shape or x.ndim != len(graph.input_shape) + 1:
        raise SparseFlowError(f"the input has shape {tuple(x.shape)}; the network takes "
                              f"(N, {', '.join(map(str, graph.input_shape))})")
    if x.shape[0] == 0:
        raise SparseFlowError("the input has no sample (batch of 0)")
    if not np.all(np.isfinite(x)):
        raise SparseFlowError("the input has non-finite values (NaN or inf)")
    return x


def run_node(node, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """One node on a batch."""
    n = x.shape[0]
    if isinstance(node, Linear):
        y = x.astype(dtype, copy=False) @ node.weight.astype(dtype).T
        return y + node.bias.astype(dtype) if node.bias is not None else y
    if isinstance(node, Conv2d):
        return conv2d(node, x, dtype)
    if isinstance(node, ReLU):
        return np.maximum(x, 0)
    if isinstance(node, (MaxPool2d, AvgPool2d)):
        return pool2d(node, x)
    if isinstance(node, Flatten):
        return x.reshape(n, -1)
    if isinstance(node, Reshape):
        return x.reshape(n, *node.shape)
    if isinstance(node, Scale):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * node.scale.astype(dtype).reshape(shape) + node.shift.astype(dtype).reshape(shape)
    if isinstance(node, Softmax):
        z = x - x.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z - lse if node.log else np.exp(z - lse)
    raise SparseFlowError(f"{node.op} node '{node.name}': no evaluator")  # pragma: no cover


def evaluate(graph: Graph, x, *, dtype=np.float64, upto: int | None = None, trace: bool = False):
    """The network's float output for ``x`` ``(N, *input_shape)``.

    ``upto``: stop after that many nodes. ``trace``: return the list of every node's output
    instead (the input first), e.g. for calibrating a quantizer.
    """
    x = check_input(graph, x).astype(dtype)
    outs = [x]
    for node in graph.nodes[:upto]:
        x = run_node(node, x, dtype)
        outs.append(x)
    return outs if trace else x
