"""Importance scores: one non-negative tensor per prunable layer, shaped like its weight.

* ``magnitude``: ``|w|``.
* ``taylor``: first-order Taylor saliency of ``w``, the estimated loss change of zeroing it
  (lecture 4: ``dL/dw * w``), in one of two forms (:data:`TAYLOR_MODES`):

  - ``"example"`` (default; Molchanov et al., CVPR 2019): ``sum_b (g_b * w)**2`` over the whole
    training set in micro-batches of ``micro_batch`` examples (1 = per example), then every output
    unit's scores (a row of the ``(out, fan_in)`` matrix) divided by their sum. Squaring per
    small batch keeps the contribution of each example (a batch-mean gradient averages the
    residuals ``p - y`` of many examples towards 0 on a converged network), and the per-row
    normalisation removes the factor every weight of a row shares (that unit's back-propagated
    error, tiny for a well-learned class), so the ranking *within* a unit decides and the
    layer's budget is not spent on the worst-learned units only. With ``normalize=False`` the
    raw sums (for channel pruning, where whole rows are compared).
  - ``"batch"``: the mean over ``n_batches`` seeded mini-batches of ``batch_size`` of
    ``|g_b * w|`` with ``g_b`` the gradient of the batch-mean loss (the form before issue 14;
    kept for comparison, docs/pruning.md).
* ``random``: i.i.d. uniform scores from ``seed``: the baseline any criterion must beat.

Low score = pruned first.
"""
from __future__ import annotations

import torch
from torch import nn

from model.errors import SparseFlowError
from model.nn.nets import prunable_layers
from model.nn.prune import METHODS, TAYLOR_MODES


def magnitude_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: m.weight.detach().abs().clone() for name, m in prunable_layers(model).items()}


def taylor_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, mode: str = "example",
                  n_batches: int = 8, batch_size: int = 64, micro_batch: int = 8, normalize: bool = True,
                  seed: int = 0) -> dict[str, torch.Tensor]:
    """First-order Taylor saliency (cross-entropy loss), ``mode`` ``"example"`` or ``"batch"`` (module docstring)."""
    if mode == "example":
        return _taylor_example(model, x, y, micro_batch, normalize, seed)
    if mode != "batch":
        raise SparseFlowError(f"unknown Taylor form {mode!r} (choose from {', '.join(TAYLOR_MODES)})")
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


def _taylor_example(model, x, y, micro_batch: int, normalize: bool, seed: int) -> dict[str, torch.Tensor]:
    if micro_batch < 1:
        raise SparseFlowError(f"Taylor micro-batch must be at least one example, not {micro_batch}")
    layers = prunable_layers(model)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    acc = {name: torch.zeros_like(m.weight, dtype=torch.float64) for name, m in layers.items()}
    was_training = model.training
    model.eval()
    loss_fn = nn.CrossEntropyLoss()
    for s in range(0, x.shape[0], micro_batch):
        idx = perm[s:s + micro_batch]
        model.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        with torch.no_grad():
            for name, m in layers.items():
                acc[name] += (m.weight.grad * m.weight).double() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    out = {}
    for name, a in acc.items():
        if normalize:
            rows = a.reshape(a.shape[0], -1)
            a = (rows / rows.sum(1, keepdim=True).clamp_min(1e-300)).reshape(a.shape)
        out[name] = a.to(layers[name].weight.dtype)
    return out


def random_scores(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.rand(m.weight.shape, generator=gen) for name, m in prunable_layers(model).items()}


def scores(method: str, model: nn.Module, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
           *, seed: int = 0, n_batches: int = 8, taylor: str = "example", micro_batch: int = 8,
           normalize: bool = True) -> dict[str, torch.Tensor]:
    """Dispatch on ``method`` (one of :data:`METHODS`); Taylor needs training data ``x, y``
    (``taylor``: its form, ``normalize``: per-row normalisation of the ``"example"`` form)."""
    if method == "magnitude":
        return magnitude_scores(model)
    if method == "taylor":
        if x is None or y is None:
            raise SparseFlowError("Taylor scores need training data")
        return taylor_scores(model, x, y, mode=taylor, n_batches=n_batches, micro_batch=micro_batch,
                             normalize=normalize, seed=seed)
    if method == "random":
        return random_scores(model, seed)
    raise SparseFlowError(f"unknown pruning method {method!r} (choose from {', '.join(METHODS)})")
