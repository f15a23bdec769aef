"""The 2:4 sparse matrix-vector engine: ``lanes`` 2:4 MAC lanes over compressed weight memories."""
from __future__ import annotations

import numpy as np
from amaranth import signed, unsigned
from amaranth.lib import data

from model.hw.config import Sparse24Config
from model.errors import SparseFlowError
from model.hw.formats.nm import NMMatrix
from rtl.common.lanes import LaneArrayEngine
from rtl.sparse24.mac import KEPT, POS_BITS


class Sparse24Engine(LaneArrayEngine):
    """``y = requant(W @ x)`` for a 2:4-compressed ``W`` (:class:`model.hw.formats.nm.NMMatrix`).

    Row ``r`` lives in lane ``r % lanes`` at local row ``r // lanes``; a lane's two memories
    (``values``: two signed ``weight_bits`` per word, ``meta``: the group's ``pos0 | pos1 << 2``
    nibble) hold group ``g`` of local row ``k`` at address ``k * max_cols/4 + g``. All lanes run in
    lockstep over the same group of the buffered input vector: each cycle one 4-activation word
    is read from the input buffer and broadcast to every lane's :class:`Sparse24MAC`, so a block
    of ``lanes`` rows takes ``cols/4`` cycles.

    Ports (``amaranth.lib.stream`` valid/ready; a transfer at a rising edge with both high):
      ``x``    In stream ``{data: signed(act_bits), last: 1}``: one input vector's elements in
               column order, ``last`` on the final one; exactly ``cols`` elements. Double
               buffered: the next vector streams in while the current one is computed.
               ``ready`` is low only while both buffers hold vectors.
      ``y``    Out stream ``{data: signed(out_bits), last: 1}``: ``rows`` results in row order,
               ``last`` on the final row. Requantized (:class:`rtl.common.requant.Requantizer`)
               when ``arith.requant`` is set, else the raw accumulator. Back-pressure stalls the
               engine without loss.
      ``load`` In stream ``{target: 1, lane, addr, data}``: the write port; ``target`` is a
               :class:`rtl.common.lanes.LoadTarget`. ``WEIGHTS`` (0) writes weight word
               ``data = v0 | v1 << weight_bits | meta << 2*weight_bits`` (two's complement
               values) to ``lane``'s memories at ``addr``; ``REG`` (1) writes register ``addr``
               (:class:`rtl.common.protocol.Reg`: 0 rows, 1 cols, 2 shift, 3 relu; shift/relu
               only with requant). ``ready`` is high only while the engine is idle (no vector
               in flight). With ``arith.bias_bits``: ``target`` is 2 bits and ``BIAS`` (2)
               writes row ``addr``'s bias (added before ReLU/shift, see :class:`LaneArrayEngine`).
               :meth:`load_program` produces the words for a matrix.
      ``cycles``  Out(32): cycles of the last completed vector: from the later of (the edge that
                  took its first ``x`` element, the cycle after the previous vector's last
                  result) to the edge that took its last ``y`` result, inclusive. An isolated
                  vector counts its full latency; back-to-back vectors' counts add up to the
                  batch's time (their mean is the time per vector).
      ``busy``    Out(32): cycles in which the lanes were issued a group, since reset.
      ``vectors`` Out(32): vectors completed since reset.

    Registers reset to the ``init`` matrix's shape (or ``max_rows``/``max_cols``) and to the
    configuration's ``Requant``; build from :func:`rtl.common.config.build_config` so that every layer of a network
    shares one Verilog. Latency of a row block: ``cols/4`` issue cycles, 1 memory read, 3 MAC
    stages (select, multiply, accumulate), 1 result queue, 1 holding register and 1 output
    register (the requantizer sits between the last two). The sequencer's and serializer's
    decisions come from registered flags and counters, precomputed when ``rows``/``cols`` are
    written, so no cycle derives a count from them and compares against it.
    """

    GROUP = 4
    NAME = "sparse24"
    CONFIG = Sparse24Config

    def __init__(self, cfg: Sparse24Config, init: NMMatrix | None = None, *, bias_init=None):
        super().__init__(cfg, init, bias_init=bias_init)

    def fields(self):
        wb = self._cfg.arith.weight_bits
        return [("values", data.ArrayLayout(signed(wb), KEPT)),
                ("meta", data.ArrayLayout(unsigned(POS_BITS), KEPT))]

    def field_arrays(self, matrix: NMMatrix) -> dict[str, np.ndarray]:
        wb = self._cfg.arith.weight_bits
        vals = np.asarray(matrix.values, dtype=np.int64) & ((1 << wb) - 1)
        return {"values": vals[:, 0::2] | (vals[:, 1::2] << wb), "meta": matrix.meta()}

    def _check_init(self, init):
        if not isinstance(init, NMMatrix):
            raise SparseFlowError(f"Sparse24Engine init must be an NMMatrix, not {type(init).__name__}")
        rows, cols = init.shape
        cfg = self._cfg
        if rows > cfg.max_rows or cols > cfg.max_cols:
            raise SparseFlowError(f"init matrix is {rows}x{cols}; the configuration allows "
                                  f"{cfg.max_rows}x{cfg.max_cols}")
        if cols % 4:
            raise SparseFlowError(f"a 2:4 matrix needs a multiple of 4 columns, got {cols}")
        lo, hi = cfg.arith.weight_range
        vals = np.asarray(init.values)
        pos = np.asarray(init.positions)
        if vals.shape != (rows, cols // 2) or pos.shape != (rows, cols // 2):
            raise SparseFlowError(f"init values/positions must be {rows}x{cols // 2}")
        if vals.size and (vals.min() < lo or vals.max() > hi):
            raise SparseFlowError(f"init values must be in {lo}..{hi} for {cfg.arith.weight_bits}-bit weights")
        if pos.size and (pos.min() < 0 or pos.max() > 3):
            raise SparseFlowError("init positions must be in 0..3")
        return init

    def _lane_inputs(self, mac, xgroup, words):
        return [mac.act.eq(xgroup), mac.weight.eq(words["values"]), mac.pos.eq(words["meta"])]
