"""Networks for the digits task, and the view of any module that the pruning code uses.

:class:`MLP` is ``Linear -> ReLU -> ... -> Linear`` with ``bias=False`` everywhere: the
hardware engines compute ``requant(W @ x)`` and have no bias adder, so the float model is
trained without one and the integer network is exactly a chain of
``model.hw.reference.layer`` calls. Every layer's input width is a multiple of 4 so that 2:4
(groups of four consecutive inputs) applies to every layer.

Pruning works on any ``torch.nn.Module``: :func:`prunable_layers` lists its ``Linear`` and
``Conv2d`` layers; a Conv2d weight ``(out, in, kh, kw)`` is seen as its lowered
``(out, in*kh*kw)`` matrix (:func:`as_matrix`), the one an im2col engine multiplies by.
"""
from __future__ import annotations

import torch
from torch import nn

from model.nn.data import N_CLASSES, N_FEATURES
from model.errors import SparseFlowError

DEFAULT_HIDDEN = (128, 64)


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"128,64"`` -> ``(128, 64)``, with a one-line error for anything else."""
    try:
        sizes = tuple(int(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise SparseFlowError(f"hidden sizes must be comma-separated integers, not {text!r}") from None
    if not sizes:
        raise SparseFlowError("at least one hidden layer is needed")
    return sizes


class MLP(nn.Module):
    """``in_features -> hidden[0] -> ... -> classes``, ReLU between layers, no biases."""

    def __init__(self, hidden=DEFAULT_HIDDEN, in_features: int = N_FEATURES, classes: int = N_CLASSES):
        super().__init__()
        hidden = tuple(hidden)
        widths = (in_features, *hidden, classes)
        for w in widths:
            if not isinstance(w, int) or w < 1:
                raise SparseFlowError(f"layer widths must be positive integers, not {w!r}")
        # Widths that feed a layer (inputs and hidden) must suit 2:4 groups of four.
        for w in widths[:-1]:
            if w % 4:
                raise SparseFlowError(f"layer input widths must be multiples of 4 (for 2:4), not {w}")
        for w in hidden:
            if w > 1024:
                raise SparseFlowError(f"hidden width {w} is too large (at most 1024)")
        self.hidden = hidden
        self.widths = widths
        self.linears = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x):
        for i, lin in enumerate(self.linears):
            x = lin(x)
            if i < len(self.linears) - 1:
                x = torch.relu(x)
        return x


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module of every Linear and Conv2d layer, in definition order."""
    out = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    if not out:
        raise SparseFlowError("the model has no Linear or Conv2d layer to prune")
    return out


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """A weight-shaped tensor as the ``(out, fan_in)`` matrix (a view for Linear/Conv2d)."""
    return t.reshape(t.shape[0], -1)


def init_weights(model: nn.Module, seed: int) -> None:
    """Fresh (PyTorch default) initialisation of every prunable layer from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in prunable_layers(model).values():
            # kaiming_uniform(a=sqrt(5)) bound == 1/sqrt(fan_in): torch's default for Linear/Conv.
            bound = 1.0 / as_matrix(m.weight).shape[1] ** 0.5
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()


def build_mlp(hidden=DEFAULT_HIDDEN, seed: int = 0) -> MLP:
    """A seeded MLP: the same ``seed`` gives the same initial weights."""
    net = MLP(hidden)
    init_weights(net, seed)
    return net
