"""The data set: scikit-learn's bundled 8x8 digits (1797 images, 10 classes, no download).

Pixels are integers 0..16. The integer network consumes them *raw* (an ``act_bits`` signed
activation of value 0..16); the float network sees ``pixels * INPUT_SCALE`` (= pixels / 16,
so inputs lie in [0, 1]). ``model.nn.quant`` folds ``INPUT_SCALE`` into the scale of the first
layer, so no pre-processing stands between the raw pixels and the hardware.

The split is fixed and stratified: ``TEST_FRACTION`` of the images are the held-out test set
(never used for training, fine-tuning, calibration or model selection), drawn with
``SPLIT_SEED`` whatever the training seed, so every run is scored on the same images.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from model.errors import SparseFlowError

INPUT_SCALE = 1.0 / 16.0  # float input = raw pixel * INPUT_SCALE
PIXEL_MAX = 16
TEST_FRACTION = 0.2
SPLIT_SEED = 0
N_FEATURES = 64
N_CLASSES = 10


@dataclass(frozen=True)
class Digits:
    """Train / held-out test split. ``x_*`` are raw integer pixels, shape ``(n, 64)``, int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def float_train(self):
        """(X, y) torch tensors of the training set, X scaled by ``INPUT_SCALE``."""
        return to_float(self.x_train), _labels(self.y_train)

    def float_test(self):
        return to_float(self.x_test), _labels(self.y_test)


def to_float(x_int: np.ndarray):
    """Raw pixels (n, 64) -> float32 tensor the float network takes."""
    import torch
    return torch.tensor(np.asarray(x_int, dtype=np.float32) * INPUT_SCALE)


def _labels(y: np.ndarray):
    import torch
    return torch.tensor(np.asarray(y, dtype=np.int64))


@lru_cache(maxsize=4)
def load_digits(test_fraction: float = TEST_FRACTION, split_seed: int = SPLIT_SEED) -> Digits:
    """The fixed stratified split (cached: every caller gets the same arrays; do not mutate)."""
    if not 0.0 < test_fraction < 1.0:
        raise SparseFlowError(f"test fraction must be in (0, 1), not {test_fraction}")
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    ds = _load()
    x = ds.data.astype(np.int64)
    y = ds.target.astype(np.int64)
    assert x.min() >= 0 and x.max() <= PIXEL_MAX and x.shape[1] == N_FEATURES
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y)
    for a in (x_tr, x_te, y_tr, y_te):
        a.setflags(write=False)
    return Digits(x_tr, y_tr, x_te, y_te)
