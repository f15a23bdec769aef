"""Importance scores: one non-negative tensor per prunable layer, shaped like its weight.

* ``magnitude``: ``|w|``.
* ``taylor``: first-order Taylor saliency ``|dL/dw * w|``, the estimated loss change of
  zeroing ``w`` (lecture 4), accumulated over ``n_batches`` training mini-batches as the mean of
  the per-batch values ``|g_b * w|`` (per-batch absolute values, so that gradients of opposite
  sign on different batches do not cancel out a weight that matters to both).
* ``random``: i.i.d. uniform scores from ``seed``: the baseline any criterion must beat.

Low score = pruned first.
"""
from __future__ import annotations

import torch
from torch import nn

from model.errors import SparseFlowError
from model.nn.nets import prunable_layers
from model.nn.prune import METHODS


def magnitude_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: m.weight.detach().abs().clone() for name, m in prunable_layers(model).items()}


def taylor_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, n_batches: int = 8,
                  batch_size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """Mean over ``n_batches`` seeded mini-batches of ``|dL/dw * w|`` (cross-entropy loss)."""
    if n_batches < 1:
        raise SparseFlowError(f"Taylor scoring needs at least one batch, not {n_batches}")
    layers = prunable_layers(model)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=gen)
    acc = {name: torch.zeros_like(m.weight) for name, m in layers.items()}
    was_training = model.training
    model.eval()
    loss_fn = nn.CrossEntropyLoss()
    for b in range(n_batches):
        # Wrap around the shuffled set if it is smaller than n_batches * batch_size.
        idx = perm[torch.arange(b * batch_size, (b + 1) * batch_size) % x.shape[0]]
        model.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        with torch.no_grad():
            for name, m in layers.items():
                acc[name] += (m.weight.grad * m.weight).abs()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {name: a / n_batches for name, a in acc.items()}


def random_scores(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.rand(m.weight.shape, generator=gen) for name, m in prunable_layers(model).items()}


def scores(method: str, model: nn.Module, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
           *, seed: int = 0, n_batches: int = 8) -> dict[str, torch.Tensor]:
    """Dispatch on ``method`` (one of :data:`METHODS`); Taylor needs training data ``x, y``."""
    if method == "magnitude":
        return magnitude_scores(model)
    if method == "taylor":
        if x is None or y is None:
            raise SparseFlowError("Taylor scores need training data")
        return taylor_scores(model, x, y, n_batches=n_batches, seed=seed)
    if method == "random":
        return random_scores(model, seed)
    raise SparseFlowError(f"unknown pruning method {method!r} (choose from {', '.join(METHODS)})")
