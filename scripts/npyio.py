"""Reading and writing the CLI's .npy files: one-line errors in, safe writes out (``model.outputs``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.errors import SparseFlowError
from model.outputs import save_npy as save_npy_safely


def load_npy(path, what: str) -> np.ndarray:
    """A .npy file as an array; any problem is one SparseFlowError line naming ``what`` and the file."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise SparseFlowError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise SparseFlowError(f"{what} {path}: is a folder, not a .npy file") from None
    except OSError as exc:
        raise SparseFlowError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if magic != b"\x93NUMPY":  # e.g. a text file named .npy: not NumPy's allow_pickle advice
        raise SparseFlowError(f"{what} {path}: not a readable .npy file (no NumPy header; write it with numpy.save)")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "allow_pickle" in msg:
            msg = "it holds Python objects; save a plain numeric array"
        raise SparseFlowError(f"{what} {path}: not a readable .npy file ({msg})") from None
    if not isinstance(arr, np.ndarray):
        raise SparseFlowError(f"{what} {path}: not a .npy array")
    return arr


def save_npy(path, array) -> Path:
    """Write ``array`` to ``path`` safely (``model.outputs``): never a partial .npy, never a replaced special file."""
    return save_npy_safely(path, array)
