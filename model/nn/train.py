"""Seeded, deterministic CPU training with optional weight masks.

``train`` runs Adam on mini-batches drawn by a seeded generator, on one thread (the machine
is shared; these nets are tiny). With ``masks`` (name -> 0/1 tensor shaped like the layer's
weight, see ``model.nn.prune``), pruned weights stay *exactly* zero: their gradient is zeroed
before each step and the mask is multiplied in again after it (Adam's moments could
otherwise move a zero weight).

Hooks let pipelines look inside the loop without copying it: ``on_grad(step, model)`` runs
after ``backward`` and before the masked update (dynamic sparse training reads dense
gradients and rewrites ``masks`` in place there); ``on_step(step, model)`` runs after the
update (lottery-ticket rewinding records the weights at step k there).
"""
from __future__ import annotations

import sys
from typing import Callable

import numpy as np
import torch
from torch import nn

from model.errors import SparseFlowError
from model.nn.nets import prunable_layers

Hook = Callable[[int, nn.Module], None]


def set_determinism(seed: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(seed)


def apply_masks(model: nn.Module, masks: dict | None) -> None:
    """Zero the pruned weights in place."""
    if not masks:
        return
    layers = prunable_layers(model)
    with torch.no_grad():
        for name, m in masks.items():
            layers[name].weight.mul_(m.to(layers[name].weight.dtype))


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 30, lr: float = 3e-3,
          batch_size: int = 64, seed: int = 0, masks: dict | None = None, weight_decay: float = 0.0,
          on_grad: Hook | None = None, on_step: Hook | None = None, progress: bool = True,
          tag: str = "train") -> nn.Module:
    """Train ``model`` in place on ``(x, y)``; returns it. Deterministic for a given ``seed``."""
    if epochs < 0:
        raise SparseFlowError(f"epochs must be >= 0, not {epochs}")
    if batch_size < 1:
        raise SparseFlowError(f"batch size must be >= 1, not {batch_size}")
    set_determinism(seed)
    gen = torch.Generator().manual_seed(seed)
    layers = prunable_layers(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    steps_per_epoch = -(-n // batch_size)
    apply_masks(model, masks)
    model.train()
    step = 0
    report_every = max(1, epochs // 5)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total, correct = 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            opt.zero_grad(set_to_none=False)
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            if on_grad is not None:
                on_grad(step, model)
            if masks:
                for name, m in masks.items():
                    layers[name].weight.grad.mul_(m)
            opt.step()
            apply_masks(model, masks)
            step += 1
            if on_step is not None:
                on_step(step, model)
            total += loss.item() * len(idx)
            correct += int((out.argmax(1) == y[idx]).sum())
        if (epoch + 1) % report_every == 0 or epoch + 1 == epochs:
            _log(f"{tag}: epoch {epoch + 1}/{epochs} loss {total / n:.4f} train-acc {correct / n:.4f}", progress)
    model.eval()
    return model


def steps_for(n: int, epochs: int, batch_size: int = 64) -> int:
    """Optimizer steps ``train`` takes for ``n`` samples."""
    return epochs * -(-n // batch_size)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return model(x).argmax(1).numpy()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict(model, x) == np.asarray(y)).mean())
