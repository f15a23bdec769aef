"""Cycle model of the EIE array (``rtl.eie.array.EIEArray``): exact, not an estimate.

It replays the array's timing rules non-zero by non-zero instead of cycle by cycle (see
``docs/eie.md``; the RTL counters must equal its numbers, ``tests/test_eie_array.py``):

* the input queue (two words) delivers one word per cycle (the front end's first step on the
  vector is cycle ``T_0 = 0``; the counters start there, one cycle after its transfer on
  ``x``); a word of ``K = frontend_width`` elements (``K = 1``: one element) with no non-zero
  is dropped in one step; the ``i``-th non-zero enters the broadcast's register N when it is
  free or moving on, at the earliest in the cycle after the previous step:
  ``T_i = max(T_prev + 1, M_{i-1})``, where the previous step is the previous non-zero (same
  word) or the last all-zero word before it; a word leaves with its last non-zero; with
  ``K > 1`` a step moves the non-zero into the front end's output register O, at
  ``S_i = max(S_prev + 1, T_{i-1})`` (O free or moving on), and O passes it to N at
  ``T_i = max(S_i + 1, M_{i-1})``; the vector's last step is the last word's;
* N moves the word into the broadcast's two-word buffer at ``M_i = max(T_i + 1, P_{i-2} + 1)``
  (a full SyncFIFO does not accept a word in the cycle its head is read); the word is the
  buffer's head from ``R_i = max(M_i + 1, P_{i-1} + 1)``; it is written to the queue of each
  PE ``k`` with entries in that column, on its own, at ``F_k = max(R_i, Q_k[i_k - D] + 1)``
  (a queue of depth ``D`` that holds ``D`` words does not accept one in the cycle its head is
  popped) and leaves the head at ``P_i = max(R_i, F_k over those PEs)``; PE ``k``'s ``stall``
  counts the cycles ``F_k - R_i`` its full queue held the word;
* PE ``k`` pops its ``i``-th word into its head register at ``Q_i = max(F_i + 1, H_{i-1})``
  (one cycle through the queue; the head register free or moving on); the head moves on to
  register A, reading the column's pointer pair, at ``H_i = max(Q_i + 1, X_{i-1})``; A moves
  to the bounds register B at ``X_i = max(H_i + 1, C_{i-1})`` (B free or being taken); the
  walker takes it at ``C_i = max(X_i + 1, C_{i-1} + L_{i-1})`` (the cycle it issues the
  previous column's last entry) and issues its ``L_i`` entries at ``C_i + 1 .. C_i + L_i``;
* the array finds the vector drained at the first cycle after the last element's acceptance
  at which the broadcast is empty and every PE is idle (six cycles after its last issue:
  walker, entry read, entry register, accumulator read, add, write) and registers that: done is one cycle later;
* ``cycles`` counts from the first element's acceptance to that cycle inclusive;
  ``total_cycles`` adds ``rows + 1`` read-out cycles when results are taken at once and
  the previous vector's read-out (which overlaps this vector's compute) is already over;
* a wide array (``EIEConfig.wide``, ``docs/eie.md``) adds one cycle (``lag``) to three of these
  steps: a queue's credit returns a cycle after its pop (``F_k >= Q_k[i_k - D] + 2``), a word
  lands a cycle after its write (``Q_i >= F_i + 2``), the drain check is a register deeper
  (done one cycle later); and its read-out pipeline adds ``WIDE_READOUT`` cycles.

A per-row bias (``Arith.bias_bits``) changes none of this: the read-out reads it in the same
cycle as each accumulator and the requantizer adds it (``docs/eie.md#bias``); only the load
stream grows by one word per row, and loads are not counted.

Also the two yardsticks: the ideal bound (the non-zero weights met by non-zero activations,
spread perfectly over the PEs) and load-balance efficiency = ideal / actual.
"""
from __future__ import annotations

import numpy as np

from model.hw.config import EIEConfig
from model.errors import SparseFlowError
from model.hw.formats.eie import EIEMatrix, encode

NEG = -(1 << 40)
PE_DRAIN = 6  # cycles from a PE's last issue to its idle (rtl.eie.pe: C, R, S, D, E stages)
WIDE_READOUT = 3  # a wide array's read-out: PE enable, group OR, result FIFO (rtl.eie.array)


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
    lag = int(cfg.wide)  # a wide array's credit and landing registers, see the module doc
    pes = np.arange(n)
    lengths = np.diff(mat.ptr, axis=1)  # (n, cols): entries of column j on PE k
    q_hist = np.full((depth, n), NEG, dtype=np.int64)  # ring of the last D pops per PE
    pushed = np.zeros(n, dtype=np.int64)  # words each queue has received
    h_prev = np.full(n, NEG, dtype=np.int64)  # head register moved on to A
    x_prev = np.full(n, NEG, dtype=np.int64)  # register A moved on to B
    c_prev = np.full(n, NEG, dtype=np.int64)  # register B consumed (= taken by the walker)
    last_issue = np.full(n, NEG, dtype=np.int64)  # also: the walker can take the next column
    stall = np.zeros(n, dtype=np.int64)
    t = -1  # acceptance cycle of the latest element
    moved = NEG  # cycle register N passed the latest non-zero on to the two-word FIFO
    fire = fire_prev = NEG  # cycles the latest two non-zeros left the broadcast
    nz_cols = np.flatnonzero(x)
    width = cfg.frontend_width
    prev_word = -1
    s = -1  # width > 1: the front end's step of the latest non-zero (into its register O)
    for j in nz_cols:
        # All-zero words pass at one per cycle, the non-zeros of one word one per cycle; a
        # non-zero waits for N (width 1: each element is a word, zeros pass one per cycle).
        w = j // width
        if width == 1:
            t = max(t + max(w - prev_word, 1), moved)
        else:  # the step waits for O (free, or moving on into N at t); O -> N waits for N
            s = max(s + max(w - prev_word, 1), t)
            t = max(s + 1, moved)
        prev_word = w
        need = lengths[:, j] > 0
        slot = pushed % depth
        old = q_hist[slot, pes]  # pop of the word D places back in the queue (NEG if none)
        moved = max(t + 1, fire_prev + 1)
        ready = max(moved + 1, fire + 1)
        written = np.maximum(ready, old + 1 + lag)  # F_k, per PE (used where needed)
        fire_prev, fire = fire, max(ready, int(written[need].max(initial=NEG)))
        stall += np.where(need, written - ready, 0)
        q = np.maximum(written + 1 + lag, h_prev)
        h_move = np.maximum(q + 1, x_prev)
        x_move = np.maximum(h_move + 1, c_prev)
        c = np.maximum(x_move + 1, last_issue)
        L = lengths[:, j]
        h_prev = np.where(need, h_move, h_prev)
        x_prev = np.where(need, x_move, x_prev)
        c_prev = np.where(need, c, c_prev)
        last_issue = np.where(need, c + L, last_issue)
        q_hist[slot, pes] = np.where(need, q, old)
        pushed += need
    if width > 1:
        t = s  # from here on: the front end's steps
    t += -(-cols // width) - 1 - prev_word  # the remaining all-zero words; t: the last word's step
    # + the drained register (wide: + the per-group idle registers)
    done = max(t + 1, fire + 1, int((last_issue + PE_DRAIN).max())) + 1 + lag
    busy = lengths[:, nz_cols].sum(axis=1) if len(nz_cols) else np.zeros(n, dtype=np.int64)
    readout = rows + 2 + WIDE_READOUT * lag  # a wide array's read-out pipeline
    return {"cycles": done + 1, "total_cycles": done + readout, "busy": busy, "stall": stall}


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
    from model.hw.formats.eie import dense_weights
    w = dense_weights(m) if isinstance(weights, EIEMatrix) else weights
    actual = cycles if cycles is not None else predict_cycles(m, x, cfg)
    return ideal_cycles(w, x, cfg.n_pes) / actual if actual else 1.0
