"""The lane engine that the 2:4 engine and its dense baseline share: ports, load port, input
buffer, sequencer, lane result queues, output stage and counters (:class:`LaneArrayEngine`).

The two engines differ only in how many activations one lane consumes per cycle (``GROUP``: 4
for 2:4, whose two kept weights pick two of them; 2 for dense, whose two weights use both) and
in the fields of their weight memories. Both have ``lanes`` lanes of 2 multipliers, built from
:class:`rtl.sparse24.mac.Sparse24MAC` (the dense lane ties the positions to 0 and 1).

One compiled design per network: ``shift``/``relu`` and ``rows``/``cols`` are run-time
registers written through ``load``; only their reset values come from the configuration.
Elaborate from :func:`rtl.common.config.build_config` (which normalises the ``Requant``
values) and load the real values at run time, and every layer of a network runs on the same Verilog.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.hw.config import LaneConfig, Requant, clog2
from model.errors import SparseFlowError
from rtl.common.packing import pack
from rtl.common.protocol import COUNTER_BITS, Reg, bias_values, register_writes, sample_layout
from rtl.common.requant import SHIFT_BITS, Requantizer
from rtl.sparse24.mac import Sparse24MAC


class LoadTarget(enum.IntEnum, shape=2):
    """``target`` of a ``load`` word. The field is 1 bit wide without a bias (``WEIGHTS``,
    ``REG``) and 2 bits with one (``BIAS`` too)."""
    WEIGHTS = 0
    REG = 1
    BIAS = 2

RESULT_QUEUE_DEPTH = 4  # row blocks in flight per lane: hides the drain of block b behind b+1
# Vectors in flight: at most RESULT_QUEUE_DEPTH draining + 2 buffered (+1 spare), power of 2.
TIMESTAMPS = 8


def load_layout(cfg: LaneConfig, depth: int, word_bits: int) -> data.StructLayout:
    """Payload of the ``load`` stream (see :class:`LaneArrayEngine`)."""
    bias = cfg.arith.bias_bits is not None
    data_bits = max(word_bits, clog2(cfg.max_rows + 1), clog2(cfg.max_cols + 1), SHIFT_BITS,
                    cfg.arith.bias_bits if bias else 0)
    return data.StructLayout({
        "target": unsigned(2 if bias else 1),
        "lane": unsigned(clog2(cfg.lanes)),
        "addr": unsigned(max(clog2(depth), 2, clog2(cfg.max_rows) if bias else 0)),
        "data": unsigned(data_bits),
    })


class LaneArrayEngine(wiring.Component):
    """Base of :class:`rtl.sparse24.engine.Sparse24Engine` and :class:`rtl.dense.engine.DenseEngine`.

    Subclasses set ``GROUP``, ``NAME`` and ``CONFIG`` and implement :meth:`fields`, :meth:`field_arrays`,
    :meth:`_check_init` and :meth:`_lane_inputs`. The port list and protocol are documented on
    the subclasses (they are identical).

    Bias (``arith.bias_bits`` set): ``load`` has a 2-bit ``target``; ``target`` 2 writes row
    ``addr``'s bias (``data``, signed ``bias_bits``) into a ``max_rows``-word memory. The
    serializer reads it with each pop (row counter address, the holding register's enable), so
    it sits beside the result in the holding register's cycle and enters the requantizer with
    it: no cycle changes. ``bias_init`` (one integer per row of ``init``) sets it at
    elaboration; otherwise it is zero until loaded.
    """

    GROUP = 4
    NAME = "engine"
    CONFIG = LaneConfig  # the configuration class the engine accepts

    def __init__(self, cfg: LaneConfig, init=None, *, bias_init=None):
        if not isinstance(cfg, self.CONFIG):
            raise SparseFlowError(f"{type(self).__name__} needs a {self.CONFIG.__name__}, not {cfg!r}")
        self._cfg = cfg
        a = cfg.arith
        self._words_per_row = -(-cfg.max_cols // self.GROUP)
        self._rows_per_lane = -(-cfg.max_rows // cfg.lanes)
        self._depth = self._rows_per_lane * self._words_per_row
        self._word_bits = sum(shape.size for _, shape in self.fields())
        self._init = None if init is None else self._check_init(init)
        self._bias_init = None
        if bias_init is not None:
            from model.hw.reference import check_bias
            if init is None:
                raise SparseFlowError("bias_init needs init (the matrix it belongs to)")
            self._bias_init = [int(v) for v in check_bias(bias_init, self._matrix_shape(init)[0], a)]
        super().__init__({
            "x": In(stream.Signature(sample_layout(a.act_bits))),
            "y": Out(stream.Signature(sample_layout(a.out_bits))),
            "load": In(stream.Signature(load_layout(cfg, self._depth, self._word_bits))),
            "cycles": Out(COUNTER_BITS),
            "busy": Out(COUNTER_BITS),
            "vectors": Out(COUNTER_BITS),
        })

    # -- parameters -------------------------------------------------------------------------
    @property
    def cfg(self) -> LaneConfig:
        return self._cfg

    @property
    def build_key(self):
        """What determines the generated Verilog (``verif.runner`` caches conversions by it);
        ``None`` when memories are initialised from a matrix."""
        return None if self._init is not None else (type(self).__qualname__, self._cfg)

    @property
    def depth(self) -> int:
        """Words per lane memory: ``ceil(max_rows / lanes) * ceil(max_cols / GROUP)``."""
        return self._depth

    @property
    def words_per_row(self) -> int:
        return self._words_per_row

    # -- subclass hooks -----------------------------------------------------------------------
    def fields(self) -> list[tuple[str, data.ArrayLayout]]:
        """Weight memories of a lane, in the order their bits appear in a load word (LSB first)."""
        raise NotImplementedError

    def field_arrays(self, matrix) -> dict[str, np.ndarray]:
        """``{field: (rows, words) array of unsigned field words}`` for a checked matrix."""
        raise NotImplementedError

    def _check_init(self, init):
        raise NotImplementedError

    def _lane_inputs(self, mac: Sparse24MAC, xgroup, words: dict) -> list:
        raise NotImplementedError

    def _matrix_shape(self, matrix) -> tuple[int, int]:
        return tuple(matrix.shape)

    # -- images (host side and elaboration-time init share them) ------------------------------
    def weight_words(self, matrix) -> np.ndarray:
        """``(rows, words)`` load data words: the fields packed LSB first."""
        out = None
        shift = 0
        for name, shape in self.fields():
            arr = np.asarray(self.field_arrays(matrix)[name], dtype=np.int64)
            out = arr if out is None else out | (arr << shift)
            shift += shape.size
        return out

    def load_program(self, matrix, requant: Requant | None = None, bias=None) -> list[int]:
        """Packed ``load`` payloads: every weight word, then (with ``arith.bias_bits``) one bias
        word per row (zeros when ``bias`` is None), then rows, cols, shift, relu."""
        lay = self.load.payload.shape()
        rows, cols = self._matrix_shape(matrix)
        words = self.weight_words(matrix)
        lanes = self._cfg.lanes
        r = np.arange(rows)[:, None]  # (rows, words) arrays, flattened row by row
        addr = (r // lanes) * self._words_per_row + np.arange(words.shape[1])
        parts = [pack(lay, target=LoadTarget.WEIGHTS, lane=r % lanes, addr=addr, data=words).reshape(-1)]
        b = bias_values(bias, rows, self._cfg.arith)
        if b is not None:
            parts.append(pack(lay, target=LoadTarget.BIAS, addr=np.arange(rows), data=b))
        regs = register_writes(rows, cols, requant)
        parts.append(pack(lay, target=LoadTarget.REG, addr=[a for a, _ in regs], data=[v for _, v in regs]))
        return np.concatenate(parts).tolist()

    def _lane_images(self) -> list[dict[str, list[int]]]:
        lanes = self._cfg.lanes
        images = [{name: [0] * self._depth for name, _ in self.fields()} for _ in range(lanes)]
        if self._init is None:
            return images
        arrays = self.field_arrays(self._init)
        for name, _ in self.fields():
            arr = arrays[name]
            for r in range(arr.shape[0]):
                base = (r // lanes) * self._words_per_row
                images[r % lanes][name][base:base + arr.shape[1]] = [int(v) for v in arr[r]]
        return images

    # -- hardware ------------------------------------------------------------------------------
    # ``elaborate`` runs the stages below in order; each takes the signals it needs from the
    # namespace ``s`` and leaves there the ones later stages use.
    def elaborate(self, platform):
        m = Module()
        cfg, a = self._cfg, self._cfg.arith
        lanes, group, wpr = cfg.lanes, self.GROUP, self._words_per_row
        gshift = clog2(group)

        s = SimpleNamespace(cfg=cfg, a=a, lanes=lanes, group=group, wpr=wpr, gshift=gshift)
        for stage in (self._registers, self._input_buffer, self._sequencer_flags, self._load_decode,
                      self._sequencer, self._lanes, self._serializer, self._counters, self._load_port):
            stage(m, s)
        return m

    def _registers(self, m, s):
        """Run-time registers (rows, cols, shift, relu), the values derived from them, and ``now``
        (the cycle count every timestamp is taken from)."""
        cfg, a, group, wpr, gshift = s.cfg, s.a, s.group, s.wpr, s.gshift
        # Run-time registers, reset to the configuration (or to the init matrix's shape).
        rows0, cols0 = (self._matrix_shape(self._init) if self._init is not None
                        else (cfg.max_rows, cfg.max_cols))
        rows = Signal(range(cfg.max_rows + 1), init=rows0)
        cols = Signal(range(cfg.max_cols + 1), init=cols0)
        rq = a.requant
        shift = Signal(SHIFT_BITS, init=rq.shift if rq else 0)
        relu = Signal(init=int(rq.relu) if rq else 0)
        # What the sequencer compares against is derived from rows/cols when they are written
        # (``load``) and kept in registers, so no cycle computes a count from rows/cols and then
        # compares against it. ``glast``: index of the last group of a row (ceil(cols/GROUP) - 1).
        glast0 = max(-(-cols0 // group) - 1, 0)
        glast = Signal(range(wpr + 1), init=glast0)
        rows_in = Signal.like(rows)  # the values a Reg.ROWS / Reg.COLS load writes
        cols_in = Signal.like(cols)
        glast_in = Signal.like(glast)
        m.d.comb += glast_in.eq((cols_in - 1) >> gshift)  # ceil(cols/GROUP) - 1 (cols >= 1)

        now = Signal(COUNTER_BITS)
        m.d.sync += now.eq(now + 1)
        s.rows0, s.rows, s.cols, s.rq, s.shift, s.relu, s.glast0 = rows0, rows, cols, rq, shift, relu, glast0
        s.glast, s.rows_in, s.cols_in, s.glast_in, s.now = glast, rows_in, cols_in, glast_in, now

    def _input_buffer(self, m, s):
        """The double-buffered input vector, written from ``x``, and every vector's start time."""
        a, group, wpr, now, cfg, gshift = s.a, s.group, s.wpr, s.now, s.cfg, s.gshift
        # Input vector: double buffer of groups, one group of GROUP activations per read.
        # Buffer b holds groups b*wpr .. b*wpr+wpr-1; element c goes to group c//GROUP, lane c%GROUP.
        m.submodules.xbuf = xbuf = Memory(shape=data.ArrayLayout(signed(a.act_bits), group),
                                          depth=2 * wpr, init=[])
        xw = xbuf.write_port(granularity=1)
        xr = xbuf.read_port()
        # The two buffers fill (wbuf) and drain (rbuf) in turn: rfull = the read buffer is full
        # (at least one buffered vector), wfull = the write buffer is full (both are).
        rfull, wfull = Signal(), Signal()
        x_done = Signal()  # the input took a vector's last element
        v_done = Signal()  # the sequencer issued a vector's last group
        with m.If(x_done & ~v_done):
            m.d.sync += [rfull.eq(1), wfull.eq(rfull)]
        with m.Elif(v_done & ~x_done):
            m.d.sync += [rfull.eq(wfull), wfull.eq(0)]
        # Start time of every vector in flight (loading, computing or draining), in order.
        m.submodules.tstart = tstart = Memory(shape=unsigned(COUNTER_BITS), depth=TIMESTAMPS, init=[])
        ts_w, ts_r = tstart.write_port(), tstart.read_port(domain="comb")
        ts_wptr = Signal(range(TIMESTAMPS))
        ts_rptr = Signal(range(TIMESTAMPS))
        m.d.comb += [ts_w.addr.eq(ts_wptr), ts_w.data.eq(now), ts_r.addr.eq(ts_rptr)]
        wbuf = Signal()
        wcol = Signal(range(cfg.max_cols + 1))
        m.d.comb += self.x.ready.eq(~wfull)
        m.d.comb += [
            xw.addr.eq(Mux(wbuf, wpr, 0) + (wcol >> gshift)),
            xw.data.eq(Cat(*[self.x.payload.data] * group)),
        ]
        with m.If(self.x.valid & self.x.ready):
            with m.If(wcol < cfg.max_cols):  # elements beyond max_cols are dropped
                m.d.comb += xw.en.eq(Const(1, group) << wcol[:gshift])
            with m.If(wcol == 0):
                m.d.comb += ts_w.en.eq(1)
                m.d.sync += ts_wptr.eq(ts_wptr + 1)
            with m.If(self.x.payload.last):
                m.d.comb += x_done.eq(1)
                m.d.sync += [wbuf.eq(~wbuf), wcol.eq(0)]
            with m.Else():
                m.d.sync += wcol.eq(Mux(wcol == cfg.max_cols, wcol, wcol + 1))
        s.xbuf, s.xr, s.rfull, s.wfull, s.x_done, s.v_done, s.ts_r = xbuf, xr, rfull, wfull, x_done, v_done, ts_r
        s.ts_rptr = ts_rptr
        s.wcol = wcol

    def _sequencer_flags(self, m, s):
        """The sequencer's counters and registered flags (declared here; :meth:`_sequencer` and
        :meth:`_load_port` update them)."""
        lanes, glast0, wpr, cfg, rows0 = s.lanes, s.glast0, s.wpr, s.cfg, s.rows0
        # Sequencer: for each block of `lanes` rows, one group per cycle from the full buffer.
        # A block starts only if every lane queue will have room for its result (credit count).
        # All its decisions come from registered flags, updated one step ahead:
        #   g_first/g_last: the current group is the first/last of the row (gleft: groups after it);
        #   b_last: the current block is the vector's last (rem: rows from this block on);
        #   vmask: the lanes holding a row in the current block.
        # xaddr/waddr are the input buffer and weight memory read addresses themselves.
        def lane_mask(n):  # lanes l with l < n
            return Cat(*[_gt_const(n, l) for l in range(lanes)])

        def py_mask(n):
            return sum(1 << l for l in range(lanes) if l < n)

        rbuf = Signal()
        g_first = Signal(init=1)
        g_last = Signal(init=int(glast0 == 0))
        gleft = Signal(range(wpr + 1), init=glast0)
        rem = Signal(range(cfg.max_rows + 1), init=rows0)
        b_last = Signal(init=int(rows0 <= lanes))
        vmask = Signal(lanes, init=py_mask(rows0))
        xaddr = Signal(range(2 * wpr))
        waddr = Signal(range(self._depth + wpr + 1))
        # The flags' next values are registers too, so that no comparison sits between a
        # counter and the flag it updates:
        #   from cols (written with it): glast_z = (glast == 0), glast_o = (glast == 1);
        #   from rows: rows_b1/rows_b2 = (rows <= lanes / 2*lanes), rows_m1/rows_m2 = the lanes of
        #   a vector's first/second block;
        #   kept with the counters: g_next_last = (gleft == 1), rem_b2 = (rem <= 2*lanes) and
        #   rem_m2 = the lanes of the block after the current one, wnext = the next block's
        #   weight address (its first group).
        glast_z = Signal(init=int(glast0 == 0))
        glast_o = Signal(init=int(glast0 == 1))
        rows_b1 = Signal(init=int(rows0 <= lanes))
        rows_b2 = Signal(init=int(rows0 <= 2 * lanes))
        rows_m1 = Signal(lanes, init=py_mask(rows0))
        rows_m2 = Signal(lanes, init=py_mask(rows0 - lanes))
        g_next_last = Signal(init=int(glast0 == 1))
        rem_b2 = Signal(init=int(rows0 <= 2 * lanes))
        rem_m2 = Signal(lanes, init=py_mask(rows0 - lanes))
        wnext = Signal.like(waddr, init=wpr)
        pending = Signal(range(RESULT_QUEUE_DEPTH + 1))
        credit = Signal(init=1)  # pending < RESULT_QUEUE_DEPTH
        s.lane_mask, s.rbuf, s.g_first, s.g_last, s.gleft = lane_mask, rbuf, g_first, g_last, gleft
        s.rem = rem
        s.b_last, s.vmask, s.xaddr, s.waddr, s.glast_z = b_last, vmask, xaddr, waddr, glast_z
        s.glast_o = glast_o
        s.rows_b1, s.rows_b2, s.rows_m1, s.rows_m2 = rows_b1, rows_b2, rows_m1, rows_m2
        s.g_next_last = g_next_last
        s.rem_b2, s.rem_m2, s.wnext, s.pending, s.credit = rem_b2, rem_m2, wnext, pending, credit

    def _load_decode(self, m, s):
        """A ``load`` register write, decoded at its transfer into one-hot flags a cycle later."""
        # A ``load`` register write is decoded at its transfer and applied a cycle later from
        # registers (``ld_q``: one-hot rows, cols, shift, relu; ``ld_data``), so the payload
        # decoder drives no wide enable and no priority multiplexer. The sequencer waits while a
        # rows/cols write is pending: it can only be ready then if the vector's last element came
        # in the same cycle as the write (a one-element vector).
        ld = self.load.payload
        ld_fire = self.load.valid & self.load.ready
        ld_go = ld_fire & (ld.target == LoadTarget.REG) & ~ld.addr[2:].any()  # (an OR, not a comparator)
        ld_q = Signal(4)
        ld_data = Signal.like(ld.data)
        m.d.sync += [ld_q.eq(Cat(*[ld_go & (ld.addr[:2] == r) for r in Reg])), ld_data.eq(ld.data)]
        ld_rows, ld_cols = ld_q[Reg.ROWS], ld_q[Reg.COLS]
        s.ld, s.ld_fire, s.ld_go, s.ld_q, s.ld_data, s.ld_rows = ld, ld_fire, ld_go, ld_q, ld_data, ld_rows
        s.ld_cols = ld_cols

    def _sequencer(self, m, s):
        """Issue one group per cycle to every lane, block by block, as result queue credit allows."""
        x_done, v_done, wfull, rfull, ld_go, ld = s.x_done, s.v_done, s.wfull, s.rfull, s.ld_go, s.ld
        g_first = s.g_first
        credit, pending, xr, xaddr, lanes, vmask = s.credit, s.pending, s.xr, s.xaddr, s.lanes, s.vmask
        g_last = s.g_last
        b_last, waddr, wnext, wpr, rbuf, cols_in = s.b_last, s.waddr, s.wnext, s.wpr, s.rbuf, s.cols_in
        group = s.group
        ld_cols, glast_z, g_next_last, gleft = s.ld_cols, s.glast_z, s.g_next_last, s.gleft
        glast_in = s.glast_in
        glast, glast_o, rows_in, lane_mask, ld_rows = s.glast, s.glast_o, s.rows_in, s.lane_mask, s.ld_rows
        rem, rows, rows_b1, rem_b2, rows_m1, rem_m2 = s.rem, s.rows, s.rows_b1, s.rem_b2, s.rows_m1, s.rem_m2
        rows_b2, rows_m2 = s.rows_b2, s.rows_m2
        # ``seq_ok`` (a register): rfull and no rows/cols write pending, i.e. the sequencer may run.
        seq_ok = Signal()
        rfull_next = Signal()
        m.d.comb += rfull_next.eq(Mux(x_done & ~v_done, 1, Mux(v_done & ~x_done, wfull, rfull)))
        m.d.sync += seq_ok.eq(rfull_next & ~(ld_go & ~ld.addr[1]))
        issue = Signal()
        block_start = Signal()
        block_done = Signal()  # the serializer popped a block's final result (the cycle before)
        m.d.comb += [
            issue.eq(seq_ok & (~g_first | credit)),
            block_start.eq(issue & g_first),
        ]
        m.d.sync += pending.eq(pending + block_start - block_done)
        with m.If(block_start & ~block_done):
            m.d.sync += credit.eq(pending < RESULT_QUEUE_DEPTH - 1)
        with m.Elif(block_done & ~block_start):
            m.d.sync += credit.eq(1)
        m.d.comb += xr.addr.eq(xaddr)
        c_valid = Signal(lanes)
        # ``first`` per lane (``g_first`` of a lane holding a row; don't care for the others): a
        # shared flag would drive every accumulator bit of every lane from one flip-flop.
        c_first = Signal(lanes)
        c_last = Signal()
        m.d.sync += [
            c_valid.eq(Mux(issue, vmask, 0)),
            c_first.eq(Mux(g_first, vmask, 0)),
            c_last.eq(g_last),
        ]
        # Registers that both the sequencer and a register write update: the two never happen in
        # one cycle (see ``issue``), so the write's own flag picks the new value.
        adv = Signal()  # the current group is the row's last: next block (or vector)
        m.d.comb += adv.eq(issue & g_last)
        issued = Signal()  # (busy counts a cycle late: the counter is not on issue's fan-out)
        m.d.sync += issued.eq(issue)
        with m.If(issued):
            m.d.sync += self.busy.eq(self.busy + 1)
        with m.If(issue):
            with m.If(g_last):
                m.d.sync += g_first.eq(1)
                with m.If(b_last):  # vector done: free its buffer
                    m.d.comb += v_done.eq(1)
                    m.d.sync += [waddr.eq(0), wnext.eq(wpr), rbuf.eq(~rbuf),
                                 xaddr.eq(Mux(rbuf, 0, wpr))]
                with m.Else():
                    m.d.sync += [waddr.eq(wnext), wnext.eq(wnext + wpr), xaddr.eq(Mux(rbuf, wpr, 0))]
            with m.Else():
                m.d.sync += [g_first.eq(0), xaddr.eq(xaddr + 1), waddr.eq(waddr + 1)]
        # (glast_in == 0 / == 1, from cols directly: no adder in front of the comparisons)
        cols_nz = cols_in.any()
        glast_in_z = cols_nz & ~_gt_const(cols_in, group)
        glast_in_o = _gt_const(cols_in, group) & ~_gt_const(cols_in, 2 * group)
        with m.If(issue | ld_cols):
            m.d.sync += [
                g_last.eq(Mux(ld_cols, glast_in_z, Mux(g_last, glast_z, g_next_last))),
                gleft.eq(Mux(ld_cols, glast_in, Mux(g_last, glast, gleft - 1))),
                g_next_last.eq(Mux(ld_cols, glast_in_o, Mux(g_last, glast_o, gleft == 2))),
            ]
        rows_in_b1, rows_in_b2 = ~_gt_const(rows_in, lanes), ~_gt_const(rows_in, 2 * lanes)
        rows_in_m1 = lane_mask(rows_in)
        rows_in_m2 = Cat(*[_gt_const(rows_in, lanes + l) for l in range(lanes)])
        with m.If(adv | ld_rows):
            m.d.sync += [
                rem.eq(Mux(ld_rows, rows_in, Mux(b_last, rows, rem - lanes))),
                b_last.eq(Mux(ld_rows, rows_in_b1, Mux(b_last, rows_b1, rem_b2))),
                vmask.eq(Mux(ld_rows, rows_in_m1, Mux(b_last, rows_m1, rem_m2))),
                rem_b2.eq(Mux(ld_rows, rows_in_b2, Mux(b_last, rows_b2, ~_gt_const(rem, 3 * lanes)))),
                rem_m2.eq(Mux(ld_rows, rows_in_m2,
                              Mux(b_last, rows_m2, Cat(*[_gt_const(rem, 2 * lanes + l) for l in range(lanes)])))),
            ]
        s.block_done, s.c_valid, s.c_first, s.c_last = block_done, c_valid, c_first, c_last
        s.glast_in_z = glast_in_z
        s.glast_in_o, s.rows_in_b1, s.rows_in_b2 = glast_in_o, rows_in_b1, rows_in_b2
        s.rows_in_m1 = rows_in_m1
        s.rows_in_m2 = rows_in_m2

    def _lanes(self, m, s):
        """Per lane: weight memories (written by ``load``), the MAC and its result queue."""
        lanes, ld, ld_fire, waddr, a, c_valid = s.lanes, s.ld, s.ld_fire, s.waddr, s.a, s.c_valid
        c_first = s.c_first
        c_last, xr = s.c_last, s.xr
        # Lanes: weight memories (read with the x buffer, one cycle), MAC, result queue.
        images = self._lane_images()
        queues = []
        for l in range(lanes):
            words = {}
            lo = 0
            for name, shape in self.fields():
                # Plain words in the memory (their init is the packed image), viewed as `shape`.
                mem = Memory(shape=unsigned(shape.size), depth=self._depth, init=images[l][name])
                m.submodules[f"{name}{l}"] = mem
                wr, rd = mem.write_port(), mem.read_port()
                m.d.comb += [
                    wr.addr.eq(ld.addr),
                    wr.data.eq(ld.data[lo:lo + shape.size]),
                    wr.en.eq(ld_fire & (ld.target == LoadTarget.WEIGHTS) & (ld.lane == l)),
                    rd.addr.eq(waddr),
                ]
                lo += shape.size
                words[name] = data.View(shape, rd.data)
            mac = Sparse24MAC(a)
            m.submodules[f"mac{l}"] = mac
            m.d.comb += [mac.valid.eq(c_valid[l]), mac.first.eq(c_first[l]), mac.last.eq(c_last)]
            m.d.comb += self._lane_inputs(mac, xr.data, words)
            q = ResultQueue(a.acc_bits, RESULT_QUEUE_DEPTH)
            m.submodules[f"queue{l}"] = q
            # The MAC's result is the sum of its carry-save accumulator registers (a carry chain):
            # registered here before it enters the queue.
            res_valid, res = Signal(name=f"res_valid{l}"), Signal(a.acc_bits, name=f"res{l}")
            m.d.sync += [res_valid.eq(mac.result_valid), res.eq(mac.result)]
            m.d.comb += [q.w_en.eq(res_valid), q.w_data.eq(res)]
            queues.append(q)
        s.queues = queues

    def _serializer(self, m, s):
        """Pop the lane queues in row order through the requantizer (and the bias) into ``y``."""
        lanes, cfg, rows0, queues, a, rq, shift = s.lanes, s.cfg, s.rows0, s.queues, s.a, s.rq, s.shift
        relu = s.relu
        block_done, ld, ld_fire, ld_rows, rows_in = s.block_done, s.ld, s.ld_fire, s.ld_rows, s.rows_in
        rows = s.rows
        # Serializer: pop the lane queues in row order into a holding register ``h``, requantize
        # it into the `y` register (two stages, so the queue-head mux and the requantizer are in
        # different cycles). ``osel``: the lane to pop next, one-hot. ``final``: the row to pop
        # next is the vector's last (oleft rows after it). A block's credit returns (block_done)
        # the cycle after its final pop.
        osel = Signal(lanes, init=1)
        oleft = Signal(range(cfg.max_rows + 1), init=max(rows0 - 1, 0))
        final_row = Signal(init=int(rows0 == 1))
        # ``ready_blocks``: row blocks whose results are all in the queues, as a thermometer code
        # (bit k: more than k). The lanes run in lockstep, so a block's results enter every
        # queue holding one of its rows in the same cycle, and lane 0 holds a row of every block:
        # its result_valid counts blocks in. The head is ready when bit 0 is set (a register, so
        # the pop decision does not wait on the four queues' levels across the chip).
        ready_blocks = Signal(RESULT_QUEUE_DEPTH)
        head_rdy = ready_blocks[0]
        block_in = queues[0].w_en
        block_out = Signal()  # a block's final result is popped at this edge
        head = Signal(a.acc_bits)
        for l, q in enumerate(queues):
            with m.If(osel[l]):
                m.d.comb += head.eq(q.r_data)
        h_valid, h_last = Signal(), Signal()
        h_data = Signal(signed(a.acc_bits))
        m.submodules.requant = rqu = Requantizer(a)
        m.d.comb += rqu.acc.eq(h_data)
        if rq is not None:
            m.d.comb += [rqu.shift.eq(shift), rqu.relu.eq(relu)]
        take = ~self.y.valid | self.y.ready
        h_take = ~h_valid | take
        pop = Signal()
        m.d.comb += pop.eq(h_take & head_rdy)
        m.d.comb += block_out.eq(pop & (final_row | osel[lanes - 1]))
        m.d.sync += block_done.eq(block_out)
        with m.If(block_in & ~block_out):
            m.d.sync += ready_blocks.eq(Cat(Const(1, 1), ready_blocks[:-1]))
        with m.Elif(block_out & ~block_in):
            m.d.sync += ready_blocks.eq(ready_blocks[1:])
        for l, q in enumerate(queues):
            m.d.comb += q.r_en.eq(pop & osel[l])
        with m.If(take):
            m.d.sync += self.y.valid.eq(h_valid)
            with m.If(h_valid):
                m.d.sync += [self.y.payload.data.eq(rqu.out), self.y.payload.last.eq(h_last)]
        with m.If(h_take):  # h_data/h_last are don't-cares unless h_valid: no pop in their enable
            m.d.sync += [h_valid.eq(pop), h_data.eq(head.as_signed()), h_last.eq(final_row)]
        with m.If(pop):
            m.d.sync += osel.eq(Mux(final_row, 1, osel.rotate_left(1)))
        if a.bias_bits is not None:
            # Per-row biases: read at each pop (the row counter ``orow`` is the popped row's
            # number) with the holding register's enable, so the word is beside ``h_data`` and
            # held with it. Written only while idle (no pop), so reads and writes never meet.
            m.submodules.bias = bias_mem = Memory(shape=signed(a.bias_bits), depth=cfg.max_rows,
                                                  init=self._bias_init or [])
            bias_wr, bias_rd = bias_mem.write_port(), bias_mem.read_port()
            orow = Signal(range(cfg.max_rows))
            with m.If(pop):
                m.d.sync += orow.eq(Mux(final_row, 0, orow + 1))
            m.d.comb += [
                bias_wr.addr.eq(ld.addr), bias_wr.data.eq(ld.data),
                bias_wr.en.eq(ld_fire & (ld.target == LoadTarget.BIAS)),
                bias_rd.addr.eq(orow), bias_rd.en.eq(h_take),
                rqu.bias.eq(bias_rd.data),
            ]
        # Written by pops and by a ``rows`` write, never in one cycle (a pop needs a result in the
        # queues, a load an idle engine the cycle before): the write's flag picks the value.
        with m.If(pop | ld_rows):
            m.d.sync += [
                oleft.eq(Mux(ld_rows, rows_in - 1, Mux(final_row, rows - 1, oleft - 1))),
                final_row.eq(Mux(ld_rows, rows_in == 1, Mux(final_row, rows == 1, oleft == 1))),
            ]
        s.h_valid = h_valid

    def _counters(self, m, s):
        """The ``cycles`` and ``vectors`` counters."""
        ts_r, now, ts_rptr = s.ts_r, s.now, s.ts_rptr
        # A vector's time starts at its first input or when the previous vector finished,
        # whichever is later: back-to-back vectors' counts then add up to the batch's time.
        # ``start`` is that later time, registered (two cycles behind ts_r/prev_end): a vector's
        # last result comes well after its first input, and in the two cycles after a vector
        # ends its successor's start is prev_end (loaded directly).
        y_end = self.y.valid & self.y.ready & self.y.payload.last
        prev_end = Signal(COUNTER_BITS)
        ts_head = Signal(COUNTER_BITS)
        start = Signal(COUNTER_BITS)
        m.d.sync += ts_head.eq(ts_r.data)
        with m.If(y_end):
            m.d.sync += [self.cycles.eq(now - start + 1), prev_end.eq(now + 1), start.eq(now + 1),
                         ts_rptr.eq(ts_rptr + 1), self.vectors.eq(self.vectors + 1)]
        with m.Else():
            m.d.sync += start.eq(Mux(ts_head > prev_end, ts_head, prev_end))

    def _load_port(self, m, s):
        """``load.ready`` and the run-time register writes."""
        rfull, wcol, pending, h_valid, rows_in = s.rfull, s.wcol, s.pending, s.h_valid, s.rows_in
        ld_data = s.ld_data
        cols_in, ld_rows, rows, rows_b1, rows_in_b1 = s.cols_in, s.ld_rows, s.rows, s.rows_b1, s.rows_in_b1
        rows_b2, rows_in_b2, rows_m1, rows_in_m1 = s.rows_b2, s.rows_in_b2, s.rows_m1, s.rows_in_m1
        rows_m2 = s.rows_m2
        rows_in_m2, ld_cols, cols, glast, glast_in = s.rows_in_m2, s.ld_cols, s.cols, s.glast, s.glast_in
        glast_z, glast_in_z, glast_o, glast_in_o, rq = s.glast_z, s.glast_in_z, s.glast_o, s.glast_in_o, s.rq
        ld_q, shift, relu = s.ld_q, s.shift, s.relu
        # Load port: accepted only while no vector is anywhere in the engine. ``ready`` is a
        # register: idle now and no input element taken at this edge (only an input element
        # ends an idle spell; the end of one shows in ``ready`` a cycle late).
        idle = ~rfull & (wcol == 0) & (pending == 0) & ~h_valid & ~self.y.valid
        m.d.sync += self.load.ready.eq(idle & ~(self.x.valid & self.x.ready))
        m.d.comb += [rows_in.eq(ld_data), cols_in.eq(ld_data)]
        # (rem, b_last, vmask, rem_*, oleft, final_row, gleft, g_last, g_next_last: above.)
        with m.If(ld_rows):
            m.d.sync += [rows.eq(rows_in), rows_b1.eq(rows_in_b1), rows_b2.eq(rows_in_b2),
                         rows_m1.eq(rows_in_m1), rows_m2.eq(rows_in_m2)]
        with m.If(ld_cols):
            m.d.sync += [cols.eq(cols_in), glast.eq(glast_in), glast_z.eq(glast_in_z),
                         glast_o.eq(glast_in_o)]
        if rq is not None:  # without requant the raw accumulator is the result
            with m.If(ld_q[Reg.SHIFT]):
                m.d.sync += shift.eq(ld_data)
            with m.If(ld_q[Reg.RELU]):
                m.d.sync += relu.eq(ld_data[0])



def _gt_const(x, k: int):
    """``x > k`` for an unsigned ``x`` and a constant ``k``, as AND/OR logic from the MSB down
    (a LUT tree) rather than a subtraction (an iCE40 carry chain, slower for a few bits)."""
    if k < 0:
        return Const(1, 1)
    if k >= (1 << len(x)) - 1:
        return Const(0, 1)
    gt = Const(0, 1)  # over the bits below i: greater
    for i in range(len(x)):
        gt = (x[i] & gt) if (k >> i) & 1 else (x[i] | gt)
    return gt


class ResultQueue(wiring.Component):
    """A lane's result queue: a shift-register FIFO whose head is always entry 0, a register.

    ``w_en``/``w_data`` push, ``r_en`` pops the head ``r_data``; both may happen in one cycle.
    The user guarantees no push when full and no pop when empty (the engine's credit counter and
    its count of complete blocks do), so there are no ready flags. A pushed word is readable the
    cycle after (like ``SyncFIFO``); unlike ``SyncFIFO``'s memory, the head needs no read-address
    multiplexer, so the serializer's lane multiplexer reads registers.
    """

    def __init__(self, width: int, depth: int):
        self._width, self._depth = width, depth
        super().__init__({"w_en": In(1), "w_data": In(width), "r_en": In(1), "r_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        entries = [Signal(self._width, name=f"entry{k}") for k in range(depth)]
        # One-hot fill level: at[k] = exactly k entries are held.
        at = Signal(depth + 1, init=1)
        m.d.comb += self.r_data.eq(entries[0])
        with m.If(self.w_en & ~self.r_en):
            m.d.sync += at.eq(at << 1)
        with m.Elif(self.r_en & ~self.w_en):
            m.d.sync += at.eq(at >> 1)
        # Entry k is written on a pop (shift down: entry k+1, or the pushed word if it lands at k)
        # or on a push into it. The new value is one 2:1 choice whose select does not involve
        # ``w_en``: on a pop without a push into k, the pushed word at k would lie beyond the
        # remaining entries (a don't-care), so ``~r_en | at[k+1]`` picks ``w_data``.
        for k in range(depth):
            take = Signal(name=f"take{k}")
            m.d.comb += take.eq(~self.r_en | at[k + 1])
            new = Mux(take, self.w_data, entries[k + 1]) if k + 1 < depth else self.w_data
            with m.If(self.r_en | (self.w_en & at[k])):
                m.d.sync += entries[k].eq(new)
        return m

