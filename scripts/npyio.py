"""Reading and writing the CLI's .npy files: one-line errors in, atomic writes out."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from model.errors import SparseFlowError


def load_npy(path, what: str) -> np.ndarray:
    """A .npy file as an array; any problem is one SparseFlowError line naming ``what`` and the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SparseFlowError(f"{what} {path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise SparseFlowError(f"{what} {path}: not a readable .npy file ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray):
        raise SparseFlowError(f"{what} {path}: not a .npy array")
    return arr


def save_npy(path, array) -> Path:
    """Write ``array`` to ``path`` through a temp file + rename: never a partial .npy."""
    out = Path(path)
    if not out.parent.is_dir():
        raise SparseFlowError(f"{out.parent}: the output's parent folder does not exist")
    if out.is_dir():
        raise SparseFlowError(f"{out} is a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
