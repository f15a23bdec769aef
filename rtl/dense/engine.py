"""The dense baseline: as many multipliers as the 2:4 engine, every weight stored and multiplied."""
from __future__ import annotations

import numpy as np
from amaranth import signed
from amaranth.lib import data

from model.hw.config import LaneConfig
from model.errors import SparseFlowError
from model.hw.reference import as_int_array
from rtl.common.lanes import LaneArrayEngine

PAIR = 2


class DenseEngine(LaneArrayEngine):
    """``y = requant(W @ x)`` for a dense integer ``W`` (``(rows, cols)`` ndarray).

    The twin of :class:`rtl.sparse24.engine.Sparse24Engine`: same ``lanes``, same 2 multipliers
    per lane (a :class:`rtl.sparse24.mac.Sparse24MAC` with its positions tied to 0 and 1, so
    the selection logic folds away), same ports, load protocol, counters and timing, but each
    lane consumes 2 activations and 2 stored weights per cycle, so a block of ``lanes`` rows
    takes ``ceil(cols/2)`` cycles (twice the 2:4 engine's ``cols/4``).

    Memory: one ``values`` memory per lane, two signed ``weight_bits`` weights per word
    (columns ``2p`` and ``2p+1``; an odd last column is paired with a zero), local row ``k``
    pair ``p`` at address ``k * ceil(max_cols/2) + p``. Load word: ``data = w0 | w1 << weight_bits``.
    The ports are documented on ``Sparse24Engine``.
    """

    GROUP = PAIR
    NAME = "dense"
    CONFIG = LaneConfig  # (a model.hw.config.DenseConfig; a Sparse24Config is one too)

    def __init__(self, cfg: LaneConfig, init: np.ndarray | None = None, *, bias_init=None):
        super().__init__(cfg, init, bias_init=bias_init)

    def fields(self):
        return [("values", data.ArrayLayout(signed(self._cfg.arith.weight_bits), PAIR))]

    def field_arrays(self, matrix) -> dict[str, np.ndarray]:
        wb = self._cfg.arith.weight_bits
        w = np.asarray(matrix, dtype=np.int64)
        if w.shape[1] % PAIR:
            w = np.concatenate([w, np.zeros((w.shape[0], 1), dtype=np.int64)], axis=1)
        w = w & ((1 << wb) - 1)
        return {"values": w[:, 0::2] | (w[:, 1::2] << wb)}

    def _check_init(self, init):
        if not isinstance(init, np.ndarray):
            raise SparseFlowError(f"DenseEngine init must be a numpy array, not {type(init).__name__}")
        w = as_int_array(init, "init", self._cfg.arith.weight_bits, ndim=(2,))
        rows, cols = w.shape
        cfg = self._cfg
        if rows > cfg.max_rows or cols > cfg.max_cols:
            raise SparseFlowError(f"init matrix is {rows}x{cols}; the configuration allows "
                                  f"{cfg.max_rows}x{cfg.max_cols}")
        return w

    def _lane_inputs(self, mac, xgroup, words):
        return [mac.act[0].eq(xgroup[0]), mac.act[1].eq(xgroup[1]),
                mac.act[2].eq(0), mac.act[3].eq(0),
                mac.weight.eq(words["values"]), mac.pos[0].eq(0), mac.pos[1].eq(1)]
