"""A trainable PyTorch module rebuilt from a :class:`~model.nn.graph.ir.Graph`.

Pruning and fine-tuning (``model.nn.prune.pipelines``) need an ``nn.Module`` whose ``Linear`` and
``Conv2d`` layers they can mask and train, whatever front end the network came from (an
``nn.Module``, ONNX, TorchScript). :class:`GraphNet` holds one ``nn.Linear`` / ``nn.Conv2d`` per
engine layer of the graph (BatchNorm already folded into them at import, Dropout dropped) and
runs the host operations functionally, in the graph's order. A final Softmax / LogSoftmax is
left out: the module returns logits (cross-entropy training; the arg-max is the same).
:meth:`GraphNet.to_graph` writes the (pruned, fine-tuned) weights back into a copy of the graph.
"""
from __future__ import annotations

import copy
import re

import torch
import torch.nn.functional as F
from torch import nn

from model.errors import SparseFlowError
from model.nn.graph.ir import AvgPool2d, Conv2d, Flatten, Graph, Linear, MaxPool2d, ReLU, Reshape, Scale, Softmax


def _key(name: str, used: set) -> str:
    k = re.sub(r"\W", "_", name) or "layer"
    if k[0].isdigit():
        k = "l" + k
    base, i = k, 1
    while k in used:
        i += 1
        k = f"{base}_{i}"
    used.add(k)
    return k


class GraphNet(nn.Module):
    """The graph's float network as a trainable module (batch first, NCHW)."""

    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict()
        self.keys: list[str | None] = []  # per node: its module key (engine layers) or None
        used: set = set()
        for n in graph.nodes:
            if isinstance(n, Scale):
                raise SparseFlowError(f"BatchNorm/Scale node '{n.name}' does not follow a Linear or Conv2d, so it "
                                      f"cannot be folded: compile supports BatchNorm only right after a layer")
            if n.host:
                self.keys.append(None)
                continue
            k = _key(n.name, used)
            if isinstance(n, Linear):
                m = nn.Linear(n.in_features, n.out_features, bias=n.bias is not None)
            else:
                m = nn.Conv2d(n.in_channels, n.out_channels, n.kernel, stride=n.stride, bias=n.bias is not None)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(n.weight.copy()))
                if n.bias is not None:
                    m.bias.copy_(torch.from_numpy(n.bias.copy()))
            self.layers[k] = m
            self.keys.append(k)

    def layer_names(self) -> dict[str, str]:
        """Graph node name -> prunable-layer name (as ``model.nn.nets.prunable_layers`` lists it)."""
        return {n.name: f"layers.{k}" for n, k in zip(self.graph.nodes, self.keys) if k is not None}

    def forward(self, x):
        for n, k in zip(self.graph.nodes, self.keys):
            if k is not None:
                m = self.layers[k]
                if isinstance(n, Conv2d) and any(n.padding):
                    t, l, b, r = n.padding
                    x = F.pad(x, (l, r, t, b))
                x = m(x)
            elif isinstance(n, ReLU):
                x = F.relu(x)
            elif isinstance(n, MaxPool2d):
                if any(n.padding):
                    t, l, b, r = n.padding
                    x = F.pad(x, (l, r, t, b), value=-float("inf"))
                x = F.max_pool2d(x, n.kernel, n.stride)
            elif isinstance(n, AvgPool2d):
                if n.is_global:
                    x = x.mean(dim=(2, 3), keepdim=True)
                else:
                    t, l, b, r = n.padding
                    s = F.avg_pool2d(F.pad(x, (l, r, t, b)), n.kernel, n.stride) * (n.kernel[0] * n.kernel[1])
                    if n.count_include_pad or not any(n.padding):
                        x = s / (n.kernel[0] * n.kernel[1])
                    else:
                        ones = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))
                        x = s / (F.avg_pool2d(ones, n.kernel, n.stride) * (n.kernel[0] * n.kernel[1]))
            elif isinstance(n, Flatten):
                x = x.flatten(1)
            elif isinstance(n, Reshape):
                x = x.reshape(x.shape[0], *n.shape)
            elif isinstance(n, Softmax):
                pass  # logits out (see module docstring)
            else:  # pragma: no cover
                raise SparseFlowError(f"{n.op} node '{n.name}': not trainable")
        return x

    def to_graph(self) -> Graph:
        """A copy of the graph with this module's current weights."""
        nodes = []
        for n, k in zip(self.graph.nodes, self.keys):
            n2 = copy.copy(n)
            if k is not None:
                m = self.layers[k]
                n2.weight = m.weight.detach().cpu().numpy().astype("float32").copy()
                n2.bias = None if m.bias is None else m.bias.detach().cpu().numpy().astype("float32").copy()
            nodes.append(n2)
        return Graph(self.graph.input_shape, nodes, name=self.graph.name, source=self.graph.source)
