"""The block-sparse engine: a BSR matrix (2x2 or 4x4 blocks) times a vector, zero blocks skipped.

See :class:`BSREngine` (ports, timing) and ``docs/bsr.md`` (format, datapath, cycle model).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.errors import SparseFlowError
from model.hw.config import BSRConfig, clog2
from model.hw.formats.bsr import BSRMatrix, validate
from model.hw.bsrcycles import QUEUE_DEPTH as RESULT_QUEUE_DEPTH, words_per_block_row
from rtl.common.lanes import LaneArrayEngine, ResultQueue
from rtl.common.packing import pack
from rtl.common.protocol import COUNTER_BITS, Reg, bias_values, register_writes, sample_layout
from rtl.common.requant import SHIFT_BITS, Requantizer

CTL_FLAGS = 2  # control word: first (bit 0), last (bit 1), then one input-group index per unit


class BSRLoad(enum.IntEnum, shape=2):
    """``target`` of a ``load`` word."""
    MEM = 0    # word ``addr`` of memory ``mem`` (weights of a unit's block row, or the control memory)
    REG = 1    # run-time register ``addr`` (:class:`rtl.common.protocol.Reg`)
    BIAS = 2   # row ``addr``'s bias (only with ``arith.bias_bits``)
    WORDS = 3  # the loaded matrix's word count (``data``)


def group_bits(cfg: BSRConfig) -> int:
    return clog2(cfg.groups_per_vector)


def memory_count(cfg: BSRConfig) -> int:
    """Weight memories (one per unit and block row) plus the control memory (the last)."""
    return cfg.units * cfg.block + 1


def load_layout(cfg: BSRConfig) -> data.StructLayout:
    """Payload of the ``load`` stream (see :class:`BSREngine`)."""
    a = cfg.arith
    data_bits = max(cfg.slice_cols * a.weight_bits, CTL_FLAGS + cfg.units * group_bits(cfg),
                    clog2(cfg.max_rows + 1), clog2(cfg.max_words + 1), SHIFT_BITS, a.bias_bits or 0)
    return data.StructLayout({
        "target": BSRLoad,
        "mem": unsigned(clog2(memory_count(cfg))),
        "addr": unsigned(max(clog2(cfg.max_words), clog2(cfg.max_rows), 2)),
        "data": unsigned(data_bits),
    })


def memory_words(matrix: BSRMatrix, cfg: BSRConfig) -> np.ndarray:
    """``(memories, words)`` unsigned words of ``matrix`` for ``cfg``: row ``u*block + i`` is unit
    ``u``'s block row ``i`` (``slice_cols`` weights, LSB first), the last row the control words
    (``first | last << 1 | group_u << 2 + u*group_bits``). Each block row of the matrix is its
    non-zero blocks' slices in BSR order, ``units`` per word, padded with zero slices to whole
    words; an empty block row is one zero word."""
    b, c, U, S = cfg.block, cfg.slice_cols, cfg.units, cfg.slices_per_block
    wb, g = cfg.arith.weight_bits, group_bits(cfg)
    ptr, idx = np.asarray(matrix.indptr, dtype=np.int64), np.asarray(matrix.indices, dtype=np.int64)
    blocks = np.asarray(matrix.data, dtype=np.int64) & ((1 << wb) - 1)  # (n, b, b)
    # slice words (n, S, b): columns s*c .. s*c+c-1 of each block row, packed
    sl = blocks.reshape(len(idx), b, S, c).transpose(0, 2, 1, 3)
    packed = (sl << (wb * np.arange(c))).sum(axis=3)
    per_row = np.diff(ptr) * S
    words_per_row = words_per_block_row(matrix, cfg)
    n = int(words_per_row.sum())
    out = np.zeros((U * b + 1, n), dtype=np.int64)
    ctl = np.zeros(n, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(words_per_row)[:-1]])
    ctl[start] |= 1
    ctl[start + words_per_row - 1] |= 2
    for j in range(len(per_row)):
        for k in range(int(per_row[j])):  # k-th slice of block row j
            blk, s = int(ptr[j]) + k // S, k % S
            w, u = int(start[j]) + k // U, k % U
            out[u * b:(u + 1) * b, w] = packed[blk, s]
            ctl[w] |= (int(idx[blk]) * S + s) << (CTL_FLAGS + u * g)
    out[-1] = ctl
    return out


class BSREngine(wiring.Component):
    """``y = requant(W @ x)`` for a BSR ``W`` (:class:`model.hw.formats.bsr.BSRMatrix`, square
    blocks of ``cfg.block`` = 2 or 4), skipping the zero blocks.

    Datapath: ``2 * lanes`` multipliers as ``units`` slices of ``block`` rows x ``slice_cols``
    columns (:class:`model.hw.config.BSRConfig`). The weight memory holds, block row after block
    row, the slices of the non-zero blocks only, ``units`` per word (a block row's last word padded
    with zero slices; an empty block row is one zero word); a control memory beside it holds per
    word ``first``/``last`` (of its block row) and each slice's input-group index. One word is
    issued per cycle: each unit reads its ``slice_cols`` activations from its own read port of
    the double-buffered input vector, multiplies them with its slice and the ``block`` row sums
    are accumulated; a block row's ``block`` results enter a result queue (one entry per block
    row, ``RESULT_QUEUE_DEPTH`` deep) and the serializer sends them out one row per cycle.
    A block row starts only when the queue will have room for it (credit count): a slow ``y``
    consumer stalls the engine without loss.

    Ports (``amaranth.lib.stream`` valid/ready; a transfer at a rising edge with both high):
      ``x``    In stream ``{data: signed(act_bits), last: 1}``: one vector's ``cols`` elements in
               column order, ``last`` on the final one (elements past ``max_cols`` are dropped).
               Double buffered: the next vector streams in while the current one is computed.
      ``y``    Out stream ``{data: signed(out_bits), last: 1}``: ``rows`` results in row order,
               ``last`` on the final row; requantized (bias, ReLU, shift, saturation,
               :class:`rtl.common.requant.Requantizer`) when ``arith.requant`` is set.
      ``load`` In stream ``{target, mem, addr, data}`` (:func:`load_layout`), ``target`` a
               :class:`BSRLoad`: ``MEM`` writes word ``addr`` of memory ``mem``
               (:func:`memory_words`), ``REG`` writes run-time register ``addr``
               (:class:`rtl.common.protocol.Reg`: rows, cols (accepted, unused: the word count
               says where a matrix ends), shift, relu), ``BIAS`` row ``addr``'s bias, ``WORDS`` the
               matrix's word count. ``ready`` is high only while the engine is idle.
               :meth:`load_program` gives the words for a matrix.
      ``cycles``, ``busy``, ``vectors``  Out(32): as on the lane engines
               (:class:`rtl.sparse24.engine.Sparse24Engine`): the last vector's cycles (from the
               later of its first input and the previous vector's end to its last result,
               inclusive), the cycles a word was issued to the multipliers, vectors completed.

    Timing (``model.hw.bsrcycles`` replays it exactly): the first word is fetched (F: control
    read) the cycle after the vector's last element is taken and issued a cycle later (X: input
    and weight reads), then one word per cycle; M (data), R (registered), P (products), A
    (accumulate), then the block row's sums are registered into the queue: poppable 5 cycles
    after its last word's issue. Between two vectors of a batch the fetch loses one cycle. The
    serializer pops one row per cycle (holding register and bias read, then requantizer into
    ``y``'s register: a result leaves 2 cycles after its pop).
    """

    NAME = "bsr"

    def __init__(self, cfg: BSRConfig, init: BSRMatrix | None = None, *, bias_init=None):
        if not isinstance(cfg, BSRConfig):
            raise SparseFlowError(f"BSREngine needs a BSRConfig, not {cfg!r}")
        self._cfg = cfg
        a = cfg.arith
        self._init = None if init is None else self.check_matrix(init)
        self._bias_init = None
        if bias_init is not None:
            from model.hw.reference import check_bias
            if init is None:
                raise SparseFlowError("bias_init needs init (the matrix it belongs to)")
            self._bias_init = [int(v) for v in check_bias(bias_init, init.shape[0], a)]
        super().__init__({
            "x": In(stream.Signature(sample_layout(a.act_bits))),
            "y": Out(stream.Signature(sample_layout(a.out_bits))),
            "load": In(stream.Signature(load_layout(cfg))),
            "cycles": Out(COUNTER_BITS),
            "busy": Out(COUNTER_BITS),
            "vectors": Out(COUNTER_BITS),
        })

    @property
    def cfg(self) -> BSRConfig:
        return self._cfg

    @property
    def build_key(self):
        """What determines the generated Verilog (``verif.runner`` caches by it); ``None`` with init."""
        return None if self._init is not None else (type(self).__qualname__, self._cfg)

    def check_matrix(self, matrix) -> BSRMatrix:
        """``matrix`` if it runs on this build, else a one-line :class:`SparseFlowError`."""
        cfg = self._cfg
        if not isinstance(matrix, BSRMatrix):
            raise SparseFlowError(f"BSREngine runs a BSRMatrix, not {type(matrix).__name__}")
        validate(matrix)
        if tuple(matrix.block) != (cfg.block, cfg.block):
            raise SparseFlowError(f"the matrix has {matrix.block[0]}x{matrix.block[1]} blocks; "
                                  f"the engine is built for {cfg.block}x{cfg.block}")
        rows, cols = matrix.shape
        if rows > cfg.max_rows or cols > cfg.max_cols:
            raise SparseFlowError(f"the matrix is {rows}x{cols}; the configuration allows {cfg.max_rows}x{cfg.max_cols}")
        lo, hi = cfg.arith.weight_range
        d = np.asarray(matrix.data)
        if d.size and (d.min() < lo or d.max() > hi):
            raise SparseFlowError(f"weights must be in {lo}..{hi} for {cfg.arith.weight_bits}-bit weights")
        n = self.words(matrix)
        if n > cfg.max_words:
            raise SparseFlowError(f"the matrix needs {n} memory words; the configuration holds {cfg.max_words}")
        return matrix

    def words(self, matrix: BSRMatrix) -> int:
        """Memory words (= issue cycles per vector) of ``matrix``."""
        return int(words_per_block_row(matrix, self._cfg).sum())

    def load_program(self, matrix: BSRMatrix, requant=None, bias=None) -> list[int]:
        """Packed ``load`` payloads: every memory word, the word count, (with ``arith.bias_bits``)
        one bias word per row (zeros when ``bias`` is None), then rows, cols, shift, relu."""
        matrix = self.check_matrix(matrix)
        lay = self.load.payload.shape()
        mem = memory_words(matrix, self._cfg)
        rows, cols = matrix.shape
        nmem, n = mem.shape
        parts = [pack(lay, target=BSRLoad.MEM, mem=np.arange(nmem)[:, None], addr=np.arange(n)[None, :],
                      data=mem).reshape(-1),
                 pack(lay, target=BSRLoad.WORDS, data=[n])]
        b = bias_values(bias, rows, self._cfg.arith)
        if b is not None:
            parts.append(pack(lay, target=BSRLoad.BIAS, addr=np.arange(rows), data=b))
        regs = register_writes(rows, cols, requant)
        parts.append(pack(lay, target=BSRLoad.REG, addr=[r for r, _ in regs], data=[v for _, v in regs]))
        return np.concatenate(parts).tolist()

    # -- hardware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        cfg, a = self._cfg, self._cfg.arith
        c = cfg.slice_cols
        # Each input buffer a power of two of groups: a unit's read address is then the buffer
        # bit next to the group index (no adder between the control memory and the input reads).
        s = SimpleNamespace(cfg=cfg, a=a, group=c, wpr=1 << group_bits(cfg), gshift=(c - 1).bit_length())
        for stage in (self._registers, self._input_buffer, self._sequencer, self._datapath,
                      self._serializer, self._counters, self._load_port):
            stage(m, s)
        return m

    # The input buffer (double-buffered vector, per-vector start times) and the cycles/vectors
    # counters are the lane engines' own stages (same ports, same counter rules).
    _input_buffer = LaneArrayEngine._input_buffer
    _counters = LaneArrayEngine._counters

    def _registers(self, m, s):
        """Run-time registers and ``now`` (the cycle count timestamps are taken from)."""
        cfg, rq = s.cfg, s.a.requant
        rows0 = self._init.shape[0] if self._init is not None else cfg.max_rows
        n0 = self.words(self._init) if self._init is not None else 1
        s.rows_m1 = Signal(range(cfg.max_rows), init=rows0 - 1)  # rows - 1: the final row's number
        s.nwords_m1 = Signal(range(cfg.max_words), init=n0 - 1)  # the vector's final word address
        s.shift = Signal(SHIFT_BITS, init=rq.shift if rq else 0)
        s.relu = Signal(init=int(rq.relu) if rq else 0)
        s.now = Signal(COUNTER_BITS)
        m.d.sync += s.now.eq(s.now + 1)

    def _sequencer(self, m, s):
        """Fetch one control word per cycle (stage F), issue it to the units (stage X) unless a
        block row's first word finds no result-queue credit (then F and X hold)."""
        cfg = s.cfg
        U, g = cfg.units, group_bits(cfg)
        images = self._images()
        m.submodules.ctl = ctl = Memory(shape=unsigned(CTL_FLAGS + U * g), depth=cfg.max_words, init=images[-1])
        s.ctl_w, ctl_r = ctl.write_port(), ctl.read_port()
        waddr = Signal(range(cfg.max_words))   # F: the word to fetch
        fetched_all = Signal()                 # the vector's final word has been fetched
        f_valid, f_end = Signal(), Signal()    # X: a word is there; it is the vector's final one
        f_addr = Signal.like(waddr)            # X: its address (the weight memories read it)
        rbuf = Signal()                        # the input buffer the words read
        inflight = Signal(range(RESULT_QUEUE_DEPTH + 1))  # block rows started, not yet fully popped
        # The stall reads registers only (no memory output in front of the fetch enables):
        # f_first = the word at X starts a block row (the word before it ended one, or it is a
        # vector's first), full = inflight == RESULT_QUEUE_DEPTH.
        f_first, full = Signal(), Signal()
        stall, go, issue = Signal(), Signal(), Signal()
        word = data.View(data.StructLayout({"first": 1, "last": 1, "group": data.ArrayLayout(g, U)}), ctl_r.data)
        block_out = Signal()  # the serializer pops a block row's final result
        m.d.comb += [
            stall.eq(f_valid & f_first & full),
            go.eq(s.rfull & ~fetched_all & ~stall),
            issue.eq(f_valid & ~stall),
            ctl_r.addr.eq(waddr), ctl_r.en.eq(~stall),
            s.v_done.eq(issue & f_end),
        ]
        with m.If(~stall):
            m.d.sync += [f_valid.eq(go), f_end.eq(waddr == s.nwords_m1), f_addr.eq(waddr),
                         f_first.eq(~f_valid | word.last)]
        with m.If(go):
            m.d.sync += waddr.eq(Mux(waddr == s.nwords_m1, 0, waddr + 1))
            with m.If(waddr == s.nwords_m1):
                m.d.sync += fetched_all.eq(1)
        with m.If(s.v_done):
            m.d.sync += [fetched_all.eq(0), rbuf.eq(~rbuf)]
        inflight_next = Signal.like(inflight)
        m.d.comb += inflight_next.eq(inflight + (issue & f_first) - block_out)
        m.d.sync += [inflight.eq(inflight_next), full.eq(inflight_next == RESULT_QUEUE_DEPTH)]
        # X: each unit reads its input group; the weight memories read the word's address.
        xports = [s.xr] + [s.xbuf.read_port() for _ in range(U - 1)]
        for u, xr in enumerate(xports):
            m.d.comb += xr.addr.eq(Cat(word.group[u], rbuf))
        with m.If(issue):
            m.d.sync += self.busy.eq(self.busy + 1)
        s.xports, s.f_addr, s.issue, s.word, s.inflight, s.block_out, s.f_valid = \
            xports, f_addr, issue, word, inflight, block_out, f_valid
        s.images = images

    def _datapath(self, m, s):
        """M: weights and inputs read; R: registered; P: products registered; A: row sums
        accumulated; then the finished block row's sums are registered and pushed into the result
        queue."""
        cfg, a = s.cfg, s.a
        b, c, U, wb = cfg.block, cfg.slice_cols, cfg.units, a.weight_bits
        m_valid, m_first, m_last = Signal(), Signal(), Signal()
        m.d.sync += [m_valid.eq(s.issue), m_first.eq(s.word.first), m_last.eq(s.word.last)]
        # R: the memories' outputs registered before the multipliers (a block RAM's clock-to-out
        # and a DSP multiply do not fit one cycle at the targets' goals).
        r_valid, r_first, r_last = Signal(), Signal(), Signal()
        m.d.sync += [r_valid.eq(m_valid), r_first.eq(m_first), r_last.eq(m_last)]
        xq = []
        for u in range(U):
            xr = Signal(data.ArrayLayout(signed(a.act_bits), c), name=f"xq{u}")
            m.d.sync += xr.eq(s.xports[u].data)
            xq.append(xr)
        s.mem_w = []
        prods = []  # prods[i]: the products of block row i
        for i in range(b):
            prods.append([])
        for u in range(U):
            for i in range(b):
                mem = Memory(shape=unsigned(c * wb), depth=cfg.max_words, init=s.images[u * b + i])
                m.submodules[f"w{u}_{i}"] = mem
                wr, rd = mem.write_port(), mem.read_port()
                s.mem_w.append(wr)
                m.d.comb += rd.addr.eq(s.f_addr)
                wv = Signal(data.ArrayLayout(signed(wb), c), name=f"wq{u}_{i}")
                m.d.sync += wv.eq(rd.data)
                for k in range(c):
                    p = Signal(signed(wb + a.act_bits), name=f"p{u}_{i}_{k}")
                    m.d.sync += p.eq(wv[k] * xq[u][k])
                    prods[i].append(p)
        p_valid, p_first, p_last = Signal(), Signal(), Signal()
        m.d.sync += [p_valid.eq(r_valid), p_first.eq(r_first), p_last.eq(r_last)]
        acc = [Signal(signed(a.acc_bits), name=f"acc{i}") for i in range(b)]
        with m.If(p_valid):
            for i in range(b):
                m.d.sync += acc[i].eq(Mux(p_first, 0, acc[i]) + sum(prods[i]))
        done = Signal()
        m.d.sync += done.eq(p_valid & p_last)
        m.submodules.queue = q = ResultQueue(b * a.acc_bits, RESULT_QUEUE_DEPTH)
        m.d.comb += [q.w_en.eq(done), q.w_data.eq(Cat(*acc))]
        s.queue = q

    def _serializer(self, m, s):
        """Pop the queue's head block row one row per cycle through the requantizer into ``y``."""
        cfg, a, q = s.cfg, s.a, s.queue
        b, rq = cfg.block, a.requant
        # The pop decision reads registered flags only (its enable fans out to every queue entry):
        # q_any = the queue holds a block row, final_row = the row to pop next is the vector's
        # last, i_last = it is its block row's last (isel == block - 1).
        qcount = Signal(range(RESULT_QUEUE_DEPTH + 1))
        q_any = Signal()
        isel = Signal(range(b))  # the row of the head block row to pop next
        i_last = Signal()
        orow = Signal(range(cfg.max_rows))  # its row number
        final_row = Signal(init=int(s.rows_m1.init == 0))
        s.final_row = final_row
        head = data.View(data.ArrayLayout(signed(a.acc_bits), b), q.r_data)
        h_valid, h_last = Signal(), Signal()
        h_data = Signal(signed(a.acc_bits))
        m.submodules.requant = rqu = Requantizer(a)
        m.d.comb += rqu.acc.eq(h_data)
        if rq is not None:
            m.d.comb += [rqu.shift.eq(s.shift), rqu.relu.eq(s.relu)]
        take = ~self.y.valid | self.y.ready
        h_take = ~h_valid | take
        pop = Signal()
        m.d.comb += [pop.eq(h_take & q_any),
                     s.block_out.eq(pop & (final_row | i_last)),
                     q.r_en.eq(s.block_out)]
        q_next = Signal.like(qcount)
        m.d.comb += q_next.eq(qcount + q.w_en - q.r_en)
        m.d.sync += [qcount.eq(q_next), q_any.eq(q_next != 0)]
        with m.If(take):
            m.d.sync += self.y.valid.eq(h_valid)
            with m.If(h_valid):
                m.d.sync += [self.y.payload.data.eq(rqu.out), self.y.payload.last.eq(h_last)]
        with m.If(h_take):
            m.d.sync += [h_valid.eq(pop), h_data.eq(head[isel]), h_last.eq(final_row)]
        with m.If(pop):
            m.d.sync += [orow.eq(Mux(final_row, 0, orow + 1)), isel.eq(Mux(s.block_out, 0, isel + 1)),
                         i_last.eq(~s.block_out & (isel == b - 2)),
                         final_row.eq(Mux(final_row, s.rows_m1 == 0, orow + 1 == s.rows_m1))]
        s.bias_w = None
        if a.bias_bits is not None:
            # Read at each pop beside the result (held with it); written only while idle.
            m.submodules.bias = bias_mem = Memory(shape=signed(a.bias_bits), depth=cfg.max_rows,
                                                  init=self._bias_init or [])
            s.bias_w, bias_rd = bias_mem.write_port(), bias_mem.read_port()
            m.d.comb += [bias_rd.addr.eq(orow), bias_rd.en.eq(h_take), rqu.bias.eq(bias_rd.data)]
        s.h_valid = h_valid

    def _load_port(self, m, s):
        """``load.ready`` (idle, registered) and the writes of memories and registers."""
        rq = s.a.requant
        ld = self.load.payload
        fire = self.load.valid & self.load.ready
        idle = ~s.rfull & (s.wcol == 0) & ~s.f_valid & (s.inflight == 0) & ~s.h_valid & ~self.y.valid
        m.d.sync += self.load.ready.eq(idle & ~(self.x.valid & self.x.ready))
        for k, wr in enumerate(s.mem_w + [s.ctl_w]):
            m.d.comb += [wr.addr.eq(ld.addr), wr.data.eq(ld.data),
                         wr.en.eq(fire & (ld.target == BSRLoad.MEM) & (ld.mem == k))]
        if s.bias_w is not None:
            m.d.comb += [s.bias_w.addr.eq(ld.addr), s.bias_w.data.eq(ld.data),
                         s.bias_w.en.eq(fire & (ld.target == BSRLoad.BIAS))]
        with m.If(fire & (ld.target == BSRLoad.WORDS)):
            m.d.sync += s.nwords_m1.eq(ld.data - 1)
        with m.If(fire & (ld.target == BSRLoad.REG)):
            with m.If(ld.addr == Reg.ROWS):  # (loads come while idle: the next row is row 0)
                m.d.sync += [s.rows_m1.eq(ld.data - 1), s.final_row.eq(ld.data == 1)]
            if rq is not None:  # without requant the raw accumulator is the result
                with m.If(ld.addr == Reg.SHIFT):
                    m.d.sync += s.shift.eq(ld.data)
                with m.If(ld.addr == Reg.RELU):
                    m.d.sync += s.relu.eq(ld.data[0])

    def _images(self) -> list[list[int]]:
        """Initial contents of the weight memories and the control memory (the last)."""
        n = memory_count(self._cfg)
        if self._init is None:
            return [[] for _ in range(n)]
        return [[int(v) for v in row] for row in memory_words(self._init, self._cfg)]
