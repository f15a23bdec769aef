"""Row permutation that balances non-zeros across the PEs of the EIE array (golden-model side).

Plain interleaving gives row ``i`` to PE ``i % n``; a pruned matrix's rows carry unequal
numbers of non-zeros, so some PEs get more work than others. :func:`balance_rows` assigns
rows to PEs greedily (heaviest row first, to the least-loaded PE that still has a free local
row: longest-processing-time scheduling with capacities) and returns the permutation that
places them. The host runs the permuted matrix ``W[perm]`` and un-permutes the result:
``y[perm] = y_permuted`` (:func:`unpermute`). Nothing changes in hardware.
"""
from __future__ import annotations

import heapq

import numpy as np


def balance_rows(weights, n_pes: int, col_weights=None) -> np.ndarray:
    """``perm`` such that row ``i`` of ``W[perm]`` is original row ``perm[i]``.

    ``col_weights`` (optional, per column) weighs each non-zero by how often its column is
    expected to be active (e.g. activation densities); default 1.
    """
    w = np.asarray(weights)
    rows = w.shape[0]
    nz = (w != 0)
    load = nz.sum(axis=1).astype(float) if col_weights is None else nz.astype(float) @ np.asarray(col_weights, float)
    cap = [len(range(k, rows, n_pes)) for k in range(n_pes)]
    heap = [(0.0, k) for k in range(n_pes) if cap[k]]
    heapq.heapify(heap)
    slots: list[list[int]] = [[] for _ in range(n_pes)]
    for r in np.argsort(-load, kind="stable"):
        total, k = heapq.heappop(heap)
        slots[k].append(int(r))
        if len(slots[k]) < cap[k]:
            heapq.heappush(heap, (total + load[r], k))
    perm = np.empty(rows, dtype=np.int64)
    for k in range(n_pes):
        for local, r in enumerate(slots[k]):
            perm[local * n_pes + k] = r
    return perm


def unpermute(y_permuted: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Results of ``W[perm] @ x`` back in the original row order."""
    y = np.empty_like(y_permuted)
    y[perm] = y_permuted
    return y


def pe_loads(weights, n_pes: int) -> np.ndarray:
    """Non-zeros per PE under plain interleaving."""
    nz = np.count_nonzero(np.asarray(weights), axis=1)
    return np.bincount(np.arange(len(nz)) % n_pes, weights=nz, minlength=n_pes).astype(np.int64)
