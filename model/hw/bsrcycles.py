"""Cycle model of the block-sparse engine (``rtl.bsr.engine.BSREngine``): exact, not an estimate.

The engine's timing depends on the matrix's structure only (which blocks are non-zero), never
on the values. It replays the RTL's rules block row by block row (``docs/bsr.md``; the RTL
counters must equal its numbers, ``tests/test_bsr_engine.py``), with the input at full speed
and the results taken at once:

* a vector's ``cols`` elements are taken one per cycle, ``X0 .. XL = X0 + cols - 1``; the
  next vector's first element waits while both input buffers are full: it is taken after the
  later of the previous vector's last element and the issue of the final word of the vector
  two back (which frees a buffer);
* the first word is fetched at ``F = max(XL, previous vector's final issue) + 1`` and issued
  (stage X) a cycle later; then one word per cycle, except that a block row's first word waits
  for result-queue credit: block row ``j`` issues only after the cycle in which block row
  ``j - QUEUE_DEPTH`` (over the whole batch) had its final row popped;
* block row ``j``'s sums are in the result queue ``RESULT_DELAY`` cycles after its last word's
  issue (weight and input reads, their registers, product register, accumulator, result register); its rows are
  popped one per cycle, in order, each at ``max(previous pop + 1, that time)``;
* a row's ``y`` transfer is two cycles after its pop (holding register, output register);
  ``cycles`` counts from the later of the vector's first element and the cycle after the
  previous vector's last result, to its last result, inclusive.
"""
from __future__ import annotations

from collections import deque

import numpy as np

QUEUE_DEPTH = 4    # block rows the result queue holds (rtl.bsr.engine)
RESULT_DELAY = 5   # last issue -> result poppable: M (reads), R (registered), P (products), A (accumulate), queue
OUTPUT_DELAY = 2   # pop -> y transfer: holding register, output register


def words_per_block_row(matrix, cfg) -> np.ndarray:
    """Issue cycles of each block row: its non-zero blocks' slices, ``units`` per cycle, at
    least one (an empty block row is one zero word)."""
    per_row = np.diff(np.asarray(matrix.indptr, dtype=np.int64)) * cfg.slices_per_block
    return np.maximum(1, -(-per_row // cfg.units))


def simulate_batch(matrix, vectors: int, cfg) -> dict:
    """The RTL counters for a batch of ``vectors`` vectors sent back to back at full speed:
    ``cycles`` (per vector), ``total_cycles`` (first input to last result), ``busy``."""
    rows, cols = matrix.shape
    b = cfg.block
    wpr = words_per_block_row(matrix, cfg)
    outs: deque = deque(maxlen=QUEUE_DEPTH)  # final-pop cycles of the latest block rows
    pop = -(1 << 40)          # the latest pop
    issue = -(1 << 40)        # the latest issue (the previous vector's final word)
    x_last = -1               # the previous vector's last element
    done = [-(1 << 40)] * 2   # final issues of the two previous vectors
    prev_end = -(1 << 40)
    first_x = None
    cycles = []
    for _ in range(vectors):
        x0 = max(x_last + 1, done[-2] + 1)
        x_last = x0 + cols - 1
        first_x = x0 if first_x is None else first_x
        t = max(x_last, issue) + 1  # fetch of word 0; issued the cycle after
        for j, n in enumerate(wpr):
            start = t + 1
            if len(outs) == QUEUE_DEPTH:
                start = max(start, outs[0] + 1)
            issue = start + int(n) - 1
            t = issue
            ready = issue + RESULT_DELAY
            for _r in range(min(b, rows - j * b)):
                pop = max(pop + 1, ready)
            outs.append(pop)
        done = [done[-1], issue]
        end = pop + OUTPUT_DELAY
        cycles.append(end - max(x0, prev_end) + 1)
        prev_end = end + 1
    return {"cycles": cycles, "total_cycles": pop + OUTPUT_DELAY - first_x + 1,
            "busy": int(wpr.sum()) * vectors}


def predict_cycles(matrix, cfg) -> int:
    """The RTL's ``cycles`` counter for one isolated vector at full input speed."""
    return simulate_batch(matrix, 1, cfg)["cycles"][0]
