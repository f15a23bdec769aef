"""Engine configurations for a whole integer network, and the per-layer cost model.

One build per engine kind serves every layer of a network: the configuration is sized from
the largest layer it runs (rows, columns and, for the EIE array, the fullest PE's entries,
each rounded up to a power of two); shift, ReLU and bias are run-time ``load`` words. The
2:4 engine (and, to share its build, the dense one) groups four inputs, so a layer whose
``cols`` is not a multiple of 4 gets zero columns appended (its inputs get zero rows):
:func:`padded_cols`.

Costs (:func:`layer_costs`) are ``model.hw.costmodel``'s per-vector numbers times the output
positions (1 for a Linear layer, ``OH*OW`` for a convolution: one matrix x vector product per
position). The EIE array's input port takes one activation per cycle, so a convolution costs at
least ``cols`` cycles per position on it, whatever its sparsity.
"""
from __future__ import annotations

import numpy as np

from model.hw.config import Arith, BSRConfig, EIEConfig, Requant, Sparse24Config, pow2_ceil
from model.hw.engines import BSR, DENSE, EIE, SPARSE24
from model.errors import SparseFlowError

EIE_ENTRIES = 32768   # default limit of one PE's entry memory (words)
MAX_COLS = 4096       # widest matrix (inputs per output) an engine build takes
MAX_ROWS = 4096


def padded_cols(cols: int) -> int:
    """``cols`` rounded up to the lane engines' group of inputs."""
    return -(-cols // SPARSE24.col_group) * SPARSE24.col_group


def pad_weight(w: np.ndarray) -> np.ndarray:
    c4 = padded_cols(w.shape[1])
    return w if c4 == w.shape[1] else np.pad(w, ((0, 0), (0, c4 - w.shape[1])))


def pad_input(x: np.ndarray) -> np.ndarray:
    c4 = padded_cols(x.shape[0])
    return x if c4 == x.shape[0] else np.pad(x, ((0, c4 - x.shape[0]), (0, 0)))


def is_24(w: np.ndarray) -> bool:
    from model.hw.formats import nm
    try:
        nm.check_24(pad_weight(w))
        return True
    except (ValueError, SparseFlowError):
        return False


def _arith(net, cols: int) -> Arith:
    return Arith(net.weight_bits, net.act_bits, max_cols=cols, requant=Requant(), bias_bits=net.bias_bits)


def eie_config(net, layers, pes: int, fifo_depth: int = 8, codebook: bool = False,
               frontend_width: int = 1) -> EIEConfig:
    """One EIE build for ``layers`` (sized from their shapes and encodings). Its relative-index
    field is as wide as the widest layer's chosen width (:func:`layer_eie_config`: a narrower
    layer's entries are valid words of a wider build)."""
    rows = pow2_ceil(max(l.rows for l in layers))
    cols = pow2_ceil(max(l.cols for l in layers))
    bits = max((l.index_bits or EIEConfig.index_bits) for l in layers)
    book = [len(l.codebook).bit_length() - 1 for l in layers if l.codebook is not None]
    cfg = EIEConfig(n_pes=pes, fifo_depth=fifo_depth, max_rows=rows, max_entries=1, arith=_arith(net, cols),
                    codebook=codebook, index_bits=bits, codebook_bits=max(book, default=EIEConfig.codebook_bits),
                    frontend_width=frontend_width)
    need = max(eie_entries(l, cfg) for l in layers)
    return cfg.with_(max_entries=pow2_ceil(max(need, 1)))


def layer_eie_config(cfg: EIEConfig, layer) -> EIEConfig:
    """The build ``cfg`` as ``layer`` is encoded for it: at the layer's chosen relative-index width."""
    return cfg if layer.index_bits is None else cfg.with_(index_bits=layer.index_bits)


def eie_entries(layer, cfg: EIEConfig) -> int:
    """Entries (padding included) of the fullest PE when ``layer`` is encoded for ``cfg`` (at its own width)."""
    from model.hw.formats import eie
    pattern = (layer.weight != 0).astype(np.int8)
    return int(eie.encode(pattern, layer_eie_config(cfg, layer).with_(codebook=False)).entries_per_pe.max())


def lane_config(net, layers, lanes: int) -> Sparse24Config:
    rows = pow2_ceil(max(l.rows for l in layers))
    cols = pow2_ceil(max(padded_cols(l.cols) for l in layers))
    return Sparse24Config(lanes=lanes, max_rows=rows, arith=_arith(net, max(cols, 4)))


def bsr_config(net, layers, lanes: int, block: int) -> BSRConfig:
    """One BSR build for ``layers``: rows, columns and memory words of the largest, powers of two."""
    from model.hw.bsrcycles import words_per_block_row
    from model.hw.formats import bsr
    rows = pow2_ceil(max(l.rows for l in layers))
    cols = pow2_ceil(max(padded_cols(l.cols) for l in layers))
    cfg = BSRConfig(lanes=lanes, block=block, max_rows=rows, arith=_arith(net, max(cols, 4)))
    words = max(int(words_per_block_row(bsr.encode(l.weight, net.weight_bits, (block, block)), cfg).sum())
                for l in layers)
    return cfg.with_(max_words=pow2_ceil(words))


def layer_costs(layer, x_sample: np.ndarray, net, pes: int, lanes: int, index_bits: int | None = None,
                block: int | None = 4, frontend_width: int = 1, fifo_depth: int = 8) -> dict:
    """``{engine: {"cycles": per image, "cycles_per_vector", "memory_bits"}}`` (2:4 only if
    2:4-sparse; BSR with ``block`` x ``block`` blocks unless ``block`` is None or ``lanes``
    does not tile it).

    The EIE entry also has ``index_bits``, the relative-index width its figures are for: the
    cost model's choice (``model.hw.costmodel.choose_index_bits``) unless ``index_bits`` is given,
    and ``bits_per_nonzero`` (entry bits per non-zero weight, padding included; codebook indices
    when the layer shares weights)."""
    from model.hw import costmodel
    w = layer.weight
    book = None if layer.codebook is None else len(layer.codebook).bit_length() - 1
    cfg = EIEConfig(n_pes=pes, fifo_depth=fifo_depth, max_rows=pow2_ceil(layer.rows), max_entries=1,
                    arith=Arith(net.weight_bits, net.act_bits, max_cols=pow2_ceil(layer.cols)),
                    codebook=book is not None, codebook_bits=book or EIEConfig.codebook_bits,
                    frontend_width=frontend_width)
    if index_bits is None:
        index_bits = costmodel.choose_index_bits(costmodel.index_width_costs(w, x_sample, cfg))
    cfg = cfg.with_(index_bits=index_bits)
    cfg = cfg.with_(max_entries=pow2_ceil(max(eie_entries(layer, cfg), 1)))
    c_eie = costmodel.layer_costs(w, x_sample, cfg, lanes, block=None)
    cfg4 = cfg.with_(arith=Arith(net.weight_bits, net.act_bits, max_cols=pow2_ceil(padded_cols(layer.cols))))
    c_pad = costmodel.layer_costs(pad_weight(w), pad_input(x_sample), cfg4, lanes, block=block)
    out = {EIE.name: c_eie[EIE.name], DENSE.name: c_pad[DENSE.name]}
    for e in (SPARSE24.name, BSR.name):
        if e in c_pad:
            out[e] = c_pad[e]
    p = layer.positions
    return {e: {"cycles": v["cycles"] * p, "cycles_per_vector": v["cycles"], "memory_bits": v["memory_bits"],
                **{k: v[k] for k in ("index_bits", "bits_per_nonzero") if k in v}}
            for e, v in out.items()}
