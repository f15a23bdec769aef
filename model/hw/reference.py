"""Bit-exact integer reference: what every engine must compute.

See ``model.hw.config`` for the arithmetic contract. These functions are the scoreboard's
oracle in ``verif/`` and the integer inference of whole networks in ``model.nn.quant``.
"""
from __future__ import annotations

import numpy as np

from model.hw.config import Arith
from model.errors import SparseFlowError


def as_int_array(a, name: str, bits: int, ndim: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """Validate ``a`` as an integer array of signed ``bits``-bit values; return it as int64.

    Rejects NaN/inf, non-integer values, wrong dimensionality and out-of-range values with a
    one-line :class:`SparseFlowError` naming ``name``.
    """
    arr = np.asarray(a)
    if arr.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise SparseFlowError(f"{name} must be {want}, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise SparseFlowError(f"{name} must hold integers, not {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise SparseFlowError(f"{name} contains NaN or infinity")
        if np.any(arr != np.round(arr)):
            idx = tuple(int(i) for i in np.argwhere(arr != np.round(arr))[0])
            raise SparseFlowError(f"{name} must hold integers; {name}{list(idx)} = {arr[idx]}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    # Range-check in the array's own type, before any conversion: a uint64 of 2**63 or a float
    # of 1e30 would otherwise wrap (or warn) on the way to int64. The bounds are exact in every
    # integer type, and in float64 (|bounds| <= 2**63).
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        bad = arr > np.uint64(hi)
    elif np.issubdtype(arr.dtype, np.floating):
        bad = (arr.astype(np.float64) < float(lo)) | (arr.astype(np.float64) > float(hi))
    else:
        bad = (arr < lo) | (arr > hi)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        v = arr[idx]
        v = int(v) if np.issubdtype(arr.dtype, np.integer) else (int(v) if abs(v) < 2**53 else f"{float(v):g}")
        raise SparseFlowError(
            f"{name}{list(idx)} = {v} is out of range for {bits}-bit signed ({lo}..{hi})")
    return arr.astype(np.int64)


def check_spmv_operands(weights, x, arith: Arith) -> tuple[np.ndarray, np.ndarray]:
    """Validate a weight matrix (rows = outputs) and input vector(s) (1-D, or 2-D columns)."""
    w = as_int_array(weights, "weights", arith.weight_bits, ndim=(2,))
    a = as_int_array(x, "input", arith.act_bits)
    if a.shape[0] != w.shape[1]:
        raise SparseFlowError(
            f"shape mismatch: weights are {w.shape[0]}x{w.shape[1]} but the input has {a.shape[0]} rows")
    if w.shape[1] > arith.max_cols:
        raise SparseFlowError(f"weights have {w.shape[1]} columns; the configuration allows {arith.max_cols}")
    return w, a


def check_bias(bias, rows: int, arith: Arith) -> np.ndarray | None:
    """Validate a per-row bias for a ``rows``-row matrix (``None``: no bias); return it as int64.

    One-line :class:`SparseFlowError` when the configuration has no bias (``bias_bits`` unset),
    or the bias is not a 1-D vector of ``rows`` signed ``bias_bits`` integers.
    """
    if bias is None:
        return None
    if arith.bias_bits is None:
        raise SparseFlowError("a bias was given but the configuration has none (set Arith.bias_bits)")
    b = as_int_array(bias, "bias", arith.bias_bits, ndim=(1,))
    if b.shape[0] != rows:
        raise SparseFlowError(f"bias has {b.shape[0]} entries but the weights have {rows} rows")
    return b


def matvec(weights: np.ndarray, x: np.ndarray, arith: Arith, bias=None) -> np.ndarray:
    """Raw accumulator ``W @ x (+ bias)`` (exact; the configuration guarantees it fits ``acc_bits``)."""
    w, a = check_spmv_operands(weights, x, arith)
    b = check_bias(bias, w.shape[0], arith)
    acc = w @ a
    if b is not None:
        acc = acc + (b if a.ndim == 1 else b[:, None])
    lo, hi = arith.acc_range
    assert acc.min(initial=0) >= lo and acc.max(initial=0) <= hi, "acc_bits sizing rule broken"
    return acc


def requantize(acc: np.ndarray, arith: Arith) -> np.ndarray:
    """The output stage: ReLU (optional), round-half-up right shift, saturate to ``act_bits``."""
    acc = np.asarray(acc, dtype=np.int64)
    rq = arith.requant
    if rq is None:
        return acc
    y = np.maximum(acc, 0) if rq.relu else acc
    if rq.shift:
        y = (y + (1 << (rq.shift - 1))) >> rq.shift
    lo, hi = arith.act_range
    return np.clip(y, lo, hi)


def layer(weights: np.ndarray, x: np.ndarray, arith: Arith, bias=None) -> np.ndarray:
    """One engine pass: ``requantize(W @ x + bias)``: exactly what a result stream carries.

    ``bias``: ``None`` or one signed ``arith.bias_bits`` integer per row (see ``model.hw.config``).
    """
    return requantize(matvec(weights, x, arith, bias), arith)
