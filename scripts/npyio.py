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


def load_codebook(path, weight_bits: int) -> tuple[np.ndarray, int]:
    """A codebook .npy (EIE weight sharing): ``(weights, codebook_bits)``; 2, 4, ... or 256 signed
    ``weight_bits`` integers with entry 0 = 0 (the padding entries' weight), else one error line."""
    from model.hw.reference import as_int_array
    book = load_npy(path, "codebook")
    n = book.shape[0] if book.ndim == 1 else 0
    if n < 2 or n & (n - 1) or n > 256:
        raise SparseFlowError(f"codebook {path}: must be 1-D with 2, 4, ... or 256 entries, got shape {book.shape}")
    try:
        book = as_int_array(book, "codebook", weight_bits, ndim=(1,))
    except SparseFlowError as exc:
        raise SparseFlowError(f"codebook {path}: {exc}") from None
    if book[0] != 0:
        raise SparseFlowError(f"codebook {path}: entry 0 must be 0 (padding entries use it), not {int(book[0])}")
    return book, n.bit_length() - 1


def save_npy(path, array) -> Path:
    """Write ``array`` to ``path`` safely (``model.outputs``): never a partial .npy, never a replaced special file."""
    return save_npy_safely(path, array)
