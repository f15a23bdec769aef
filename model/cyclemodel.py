"""Cycle model of the EIE array (``rtl.eie.array.EIEArray``): exact, not an estimate.

It replays the array's timing rules non-zero by non-zero instead of cycle by cycle (see
``docs/eie.md``; the RTL counters must equal its numbers, ``tests/test_eie_array.py``):

* the input delivers one element per cycle (element ``e`` at cycle ``T_e``, ``T_0 = 0``); a
  non-zero is accepted only when every PE's queue has room; a queue of depth ``D`` that holds
  ``D`` words does not accept one in the cycle its head is popped (``SyncFIFO``), so the
  ``i``-th non-zero waits until each PE has popped its ``(i - D)``-th: ``T >= Q[i - D] + 1``;
* PE ``k`` pops the ``i``-th non-zero at ``Q_i = max(T_i + 1, C_{i-1})`` (one cycle through the
  queue; register A free or being consumed), reads the column's pointer pair, and A is
  consumed at ``C_i = Q_i + 1`` for an empty column or ``max(Q_i + 1, W)`` for a column of
  ``L > 0`` entries, ``W`` being the cycle the walker issues the previous column's last entry;
  it then issues the entries at ``C_i + 1 .. C_i + L``;
* the vector is done at the first cycle after the last element's acceptance at which every PE is
  idle: three cycles after its last issue (walker, entry read, accumulate), one after its last
  empty-column pop;
* ``cycles`` counts from the first element's acceptance to that cycle inclusive;
  ``total_cycles`` adds ``rows + 1`` read-out cycles when results are taken at once.

Also the two yardsticks: the ideal bound (the non-zero weights met by non-zero activations,
spread perfectly over the PEs) and load-balance efficiency = ideal / actual.
"""
from __future__ import annotations

import numpy as np

from .config import EIEConfig
from .errors import SparseFlowError
from .formats.eie import EIEMatrix, encode

NEG = -(1 << 40)


def _matrix(m, cfg: EIEConfig) -> EIEMatrix:
    if isinstance(m, EIEMatrix):
        return m
    return encode(m, cfg)


def simulate_vector(m, x, cfg: EIEConfig) -> dict:
    """Predict the RTL counters for one vector: ``cycles``, ``total_cycles``, ``busy`` and
    ``stall`` per PE, with the input at full speed and results taken at once."""
    mat = _matrix(m, cfg)
    x = np.asarray(x).reshape(-1)
    rows, cols = mat.shape
    if x.shape[0] != cols:
        raise SparseFlowError(f"shape mismatch: the matrix has {cols} columns but the input has {x.shape[0]}")
    n, depth = cfg.n_pes, cfg.fifo_depth
    lengths = np.diff(mat.ptr, axis=1)  # (n, cols): entries of column j on PE k
    q_hist = np.full((depth, n), NEG, dtype=np.int64)  # ring of the last D pops per PE
    c_prev = np.full(n, NEG, dtype=np.int64)  # A consumed
    walk_free = np.full(n, NEG, dtype=np.int64)  # cycle the walker can take the next column
    last_issue = np.full(n, NEG, dtype=np.int64)
    stall = np.zeros(n, dtype=np.int64)
    t = -1
    i = 0
    nz_cols = np.flatnonzero(x)
    prev_col = -1
    for j in nz_cols:
        t += j - prev_col  # zeros in between: one cycle each
        prev_col = j
        old = q_hist[i % depth]  # pop of the (i - D)-th non-zero (NEG while i < D)
        t_acc = max(t, int(old.max()) + 1)
        stall += np.clip(np.minimum(t_acc, old + 1) - t, 0, None)
        t = t_acc
        q = np.maximum(t + 1, c_prev)
        L = lengths[:, j]
        c = np.where(L > 0, np.maximum(q + 1, walk_free), q + 1)
        walk_free = np.where(L > 0, c + L, walk_free)
        last_issue = np.where(L > 0, c + L, last_issue)
        c_prev = c
        q_hist[i % depth] = q
        i += 1
    t += cols - 1 - prev_col  # the remaining zeros; t = acceptance of the last element
    done = max(t + 1, int(np.maximum(c_prev + 1, last_issue + 3).max()))
    busy = lengths[:, nz_cols].sum(axis=1) if len(nz_cols) else np.zeros(n, dtype=np.int64)
    return {"cycles": done + 1, "total_cycles": done + rows + 2, "busy": busy, "stall": stall}


def predict_cycles(m, x, cfg: EIEConfig) -> int:
    """The RTL's ``cycles`` counter for one vector at full input speed."""
    return int(simulate_vector(m, x, cfg)["cycles"])


def ideal_cycles(weights, x, n_pes: int) -> float:
    """Non-zero weights in the columns of non-zero activations, divided by ``n_pes``."""
    w = np.asarray(weights)
    x = np.asarray(x).reshape(-1)
    return float(np.count_nonzero(w[:, x != 0])) / n_pes


def efficiency(weights, x, cfg: EIEConfig, cycles: int | None = None) -> float:
    """Load-balance efficiency ``ideal / actual`` (actual: ``cycles``, else the model's)."""
    m = encode(weights, cfg) if not isinstance(weights, EIEMatrix) else weights
    from .formats.eie import dense_weights
    w = dense_weights(m) if isinstance(weights, EIEMatrix) else weights
    actual = cycles if cycles is not None else predict_cycles(m, x, cfg)
    return ideal_cycles(w, x, cfg.n_pes) / actual if actual else 1.0
