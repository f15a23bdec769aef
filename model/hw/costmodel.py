"""Per-layer engine choice: predicted cycles and weight-memory bits of each engine.

For one layer (integer weights ``W``, a sample of its input activations) and an engine budget
(``n_pes`` EIE PEs; ``lanes`` 2:4/dense lanes), :func:`layer_costs` predicts, per engine:

* ``eie``: cycles from ``model.hw.cyclemodel`` (exact against the RTL's counter, averaged over the
  sample: it depends on which activations are zero); memory = entry words + column pointers of
  every PE.
* ``2:4``: only when ``W`` is 2:4-sparse. The engine streams the ``cols`` inputs in, then runs
  ``ceil(rows/lanes)`` row blocks of ``cols/4`` group cycles each; memory = per group two
  ``weight_bits`` values and a 4-bit position nibble.
* ``dense``: the same schedule with ``cols/2`` pair cycles per block; memory = ``weight_bits``
  per weight.
* ``bsr``: cycles from ``model.hw.bsrcycles`` (exact against the RTL's counter; they depend on
  which blocks are non-zero only); memory = its weight words (non-zero blocks' slices, a block
  row padded to whole words) and control words (``rtl.bsr.engine.memory_words``).

A per-row bias (``Arith.bias_bits``) costs no cycle on any engine (it is read beside each
result and added in the output stage) and the same ``rows x bias_bits`` memory on each, so it
does not change the choice and is left out.

The 2:4/dense cycle counts are a first-order model (input + compute + a small pipeline fill);
the demo prints them next to the RTL's counters so their error is visible.
:func:`choose` takes the fewest cycles, then the least memory.

**Relative-index width** (EIE array, per layer): a gap of more than ``2**index_bits - 1`` zero
rows costs padding entries, which take entry memory *and* a PE cycle each; a wider index costs
bits on every entry. :func:`index_width_costs` encodes the layer at each width of
:data:`INDEX_WIDTHS` and predicts its entry + pointer memory and its cycles (cycle model, exact
against the RTL); :func:`choose_index_bits` takes the smallest memory x cycles product (the
area-time product: a PE's entry memory is most of its area, and padding is both), ties to the
narrower width. :func:`eie_bits_per_nonzero` is the format's storage per real non-zero weight,
padding included, next to :data:`EIE_PAPER_BITS_PER_NONZERO` (EIE's entry: a 4-bit shared-weight
index and a 4-bit relative index, padding not counted).
"""
from __future__ import annotations

import math

import numpy as np

from model.hw.config import BSRConfig, EIEConfig, clog2
from model.hw.engines import BSR, DENSE, EIE, SPARSE24
from model.errors import SparseFlowError
from model.hw.formats import bsr, eie, nm

INDEX_WIDTHS = (2, 3, 4, 5, 6, 7, 8)  # relative-index widths the per-layer choice considers
INDEX_SAMPLE = 16  # input vectors the width choice averages its cycles over
EIE_PAPER_BITS_PER_NONZERO = 8  # EIE (Han et al., ISCA 2016): 4-bit weight index + 4-bit relative index
PIPELINE_FILL = 9  # 2:4 / dense: memory read, three MAC stages, result register, result queue, holding and output registers, done


def _eie_memory_bits(m: eie.EIEMatrix, cfg: EIEConfig) -> int:
    cols = m.shape[1]
    return int(m.entries_per_pe.sum()) * cfg.entry_bits + m.n_pes * (cols + 1) * cfg.ptr_bits


def eie_bits_per_nonzero(m: eie.EIEMatrix, cfg: EIEConfig, *, pointers: bool = False) -> float:
    """Entry-memory bits per real non-zero weight of ``m`` encoded for ``cfg``: every entry
    (padding included) costs ``cfg.entry_bits``; with ``pointers`` the column pointers are
    counted too. Compare with :data:`EIE_PAPER_BITS_PER_NONZERO` (entries only)."""
    nnz = int(sum(int(np.count_nonzero(v)) for v in m.values))
    bits = int(m.entries_per_pe.sum()) * cfg.entry_bits
    if pointers:
        bits += m.n_pes * (m.shape[1] + 1) * cfg.ptr_bits
    return bits / max(nnz, 1)


def index_width_costs(weights, x_sample, cfg: EIEConfig, widths=INDEX_WIDTHS) -> dict:
    """``{index_bits: {"cycles", "memory_bits", "entries", "max_entries", "padding_entries",
    "bits_per_nonzero"}}`` for the layer ``weights`` (only its non-zero pattern matters; codebook
    indices work too) on the array ``cfg`` (its ``n_pes`` and ``value_bits``); ``cycles`` is the
    cycle model's mean over the first :data:`INDEX_SAMPLE` vectors of ``x_sample`` (``(cols,
    n)``)."""
    from model.hw.cyclemodel import predict_cycles
    pattern = (np.asarray(weights) != 0).astype(np.int8)
    cols = pattern.shape[1]
    xs = np.asarray(x_sample).reshape(cols, -1)[:, :INDEX_SAMPLE]
    out = {}
    for b in widths:
        c = cfg.with_(index_bits=b)
        m = eie.encode(pattern, c.with_(codebook=False))
        # max_entries must hold the fullest PE for the memory figure (pointer width) to be real
        c = c.with_(max_entries=max(int(m.entries_per_pe.max(initial=1)), 1))
        out[b] = {"cycles": float(np.mean([predict_cycles(m, xs[:, j], c) for j in range(xs.shape[1])])),
                  "memory_bits": _eie_memory_bits(m, c), "entries": int(m.entries_per_pe.sum()),
                  "max_entries": int(m.entries_per_pe.max(initial=0)), "padding_entries": m.padding_entries,
                  "bits_per_nonzero": round(eie_bits_per_nonzero(m, c), 3)}
    return out


def choose_index_bits(costs: dict) -> int:
    """The width of :func:`index_width_costs` with the smallest memory x cycles; ties to the narrower."""
    return min(costs, key=lambda b: (costs[b]["memory_bits"] * max(costs[b]["cycles"], 1.0), b))


def lane_cycles(rows: int, cols: int, lanes: int, per_cycle: int) -> int:
    """First-order cycles of the 2:4 (``per_cycle`` = 4) or dense (2) engine for one vector."""
    return cols + math.ceil(rows / lanes) * math.ceil(cols / per_cycle) + PIPELINE_FILL


def bsr_costs(weights: np.ndarray, cfg: BSRConfig) -> dict:
    """``{"cycles": one isolated vector (exact), "memory_bits": weight + control words}`` of
    ``weights`` on the BSR engine ``cfg`` (its ``block`` and ``lanes``)."""
    from model.hw.bsrcycles import predict_cycles, words_per_block_row
    m = bsr.encode(weights, cfg.arith.weight_bits, (cfg.block, cfg.block))
    words = int(words_per_block_row(m, cfg).sum())
    word_bits = 2 * cfg.lanes * cfg.arith.weight_bits + 2 + cfg.units * clog2(cfg.groups_per_vector)
    return {"cycles": float(predict_cycles(m, cfg)), "memory_bits": words * word_bits}


def layer_costs(weights: np.ndarray, x_sample: np.ndarray, eie_cfg: EIEConfig, lanes: int,
                block: int | None = None) -> dict:
    """``{engine: {"cycles": float, "memory_bits": int}}`` for the engines that can run ``weights``.

    ``x_sample``: ``(cols, n)`` input activations representative of the layer's inputs.
    ``block``: the BSR engine's block size (``None``, the default: leave it out, as the digits
    demo does; so is a ``lanes`` count whose multipliers do not tile the block).
    """
    from model.hw.cyclemodel import predict_cycles

    w = np.asarray(weights, dtype=np.int64)
    rows, cols = w.shape
    wb = eie_cfg.arith.weight_bits
    m = eie.encode(w, eie_cfg.with_(codebook=False))  # in codebook mode only the entry width changes
    xs = np.asarray(x_sample).reshape(cols, -1)
    costs = {EIE.name: {"cycles": float(np.mean([predict_cycles(m, xs[:, b], eie_cfg) for b in range(xs.shape[1])])),
                     "memory_bits": _eie_memory_bits(m, eie_cfg), "index_bits": eie_cfg.index_bits,
                     "bits_per_nonzero": round(eie_bits_per_nonzero(m, eie_cfg), 3)}}
    try:
        nm.check_24(w)
        ok24 = True
    except ValueError:
        ok24 = False
    if ok24:
        costs[SPARSE24.name] = {"cycles": float(lane_cycles(rows, cols, lanes, SPARSE24.per_cycle)),
                        "memory_bits": rows * (cols // 4) * (2 * wb + 4)}
    costs[DENSE.name] = {"cycles": float(lane_cycles(rows, cols, lanes, DENSE.per_cycle)),
                         "memory_bits": rows * cols * wb}
    if block is not None:
        try:
            cfg = BSRConfig(lanes=lanes, block=block, arith=eie_cfg.arith, max_rows=max(rows, 1))
        except SparseFlowError:
            cfg = None
        if cfg is not None:
            costs[BSR.name] = bsr_costs(w, cfg)
    return costs


def choose(costs: dict) -> str:
    """The engine with the fewest predicted cycles; ties go to the smaller memory."""
    return min(costs, key=lambda e: (costs[e]["cycles"], costs[e]["memory_bits"]))
