"""The EIE-like sparse PE array: non-zero detection, broadcast queues, PEs, read-out, counters."""
from types import SimpleNamespace

import numpy as np
from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from model.hw.config import EIEConfig, Requant, clog2
from model.errors import SparseFlowError
from model.hw.formats.eie import EIEMatrix, check_fits
from rtl.common.memory import collision_free_memory
from rtl.common.protocol import COUNTER_BITS, Reg
from rtl.common.requant import SHIFT_BITS, Requantizer

from .broadcast import Broadcast, pe_groups
from .layouts import LoadKind, col_bits, elem_layout, load_layout, result_layout
from .nonzero import NonZeroDetect, NonZeroScan
from .pe import EIEPE


class Phase(enum.Enum, shape=2):
    """The compute side's state: ``IDLE`` (the next vector may start), ``COMPUTE``, ``WAIT``
    (done, the read-out is still busy with the previous vector)."""
    IDLE = 0
    COMPUTE = 1
    WAIT = 2


class EIEArray(wiring.Component):
    """EIE-like sparse matrix x vector engine: ``y = requant(W @ x)`` with ``n_pes`` PEs.

    Ports:
      ``x``     In(stream {data: signed(act_bits), last}): the input vector, column order,
                ``last`` on its final element, through a two-word input queue (``x.ready``
                is "the queue is not full"); zeros leave it at once and are skipped. With
                ``frontend_width`` K > 1, ``data`` holds K elements (columns ``w*K .. w*K+K-1``
                of word ``w``, the last word zero-padded) and :class:`NonZeroScan` sends one
                non-zero per cycle, an all-zero word costing one cycle.
      ``y``     Out(stream {data: signed(out_bits), last}): the ``rows`` results in row order,
                ``last`` on the final row.
      ``load``  In(stream {kind, pe, addr, data}): run-time writes (``kind``: :class:`rtl.eie.layouts.LoadKind`,
                register addresses: :class:`rtl.common.protocol.Reg`), accepted (``ready``) only
                between vectors, and not while the next vector's first element waits at the
                input and may be taken (the element goes first; in the two cycles after a
                load word it may not, so a stream of load words keeps going):
                  kind 0 ENTRY:    PE ``pe``'s entry word ``addr`` := ``data``
                  kind 1 PTR:      PE ``pe``'s column pointer ``ptr[addr]`` := ``data``
                  kind 2 REG:      register ``addr`` := ``data``: 0 rows, 1 cols, 2 shift, 3 relu
                  kind 3 CODEBOOK: codebook weight ``addr`` := ``data`` (codebook mode)
                  kind 4 COLMASK:  PE ``pe`` has entries in column ``addr``: ``data[0]``
                                   (must be ``ptr[addr+1] != ptr[addr]``; a PE never sees
                                   a column whose bit is 0)
                  kind 5 BIAS:     (only with ``arith.bias_bits``) row ``addr``'s bias :=
                                   ``data`` (signed ``bias_bits``, two's complement)
                Every write happens one cycle after its word is taken (from a register
                stage); the input takes no element in the two cycles after a load word
                (``cfg.wide``: the PE memory writes come from a second stage, two cycles
                after, and the input waits three).
      ``cycles``       Out(32): compute cycles of the vector: from the cycle its first element
                       left the input queue (one cycle after its transfer on ``x``, at the
                       earliest) to the cycle every PE was found idle after its last.
      ``total_cycles`` Out(32): the same up to the transfer of its last result.
      ``busy``  Out(32 x n_pes): per PE, cycles of the last vector it issued an entry.
      ``stall`` Out(32 x n_pes): per PE, cycles its full queue held up the broadcast.
      ``vectors`` Out(32): vectors completed since reset.

    Timing: one input element (K > 1: one non-zero, or one all-zero word) per cycle while
    computing; the counters start at the first cycle the front end works on the vector. A vector's compute ends one cycle
    after its last element has left the input queue and all PEs were found idle. Each PE has
    two accumulator banks: at the end of a compute the banks swap (as soon as the previous
    vector's read-out is over), the results stream out of one bank, one per cycle, each
    accumulator cleared behind its read, while the next vector is already accepted and
    computed into the other. The counter outputs describe the vector being (or last) read out:
    ``cycles``, ``busy``, ``stall`` change when its read-out starts, ``total_cycles`` and
    ``vectors`` at its last result, so they are stable for at least one cycle after that
    result; ``total_cycles`` includes any wait for the read-out of the vector before.

    ``checks``: also elaborate assertions that the flags kept for timing (``run``, ``idle_ok``,
    the read-out's ``one_left``, ``rows == 0/1``, each PE's ``can_take`` and "last") equal the
    state they mirror, every cycle; the Amaranth simulator checks them (unit tests), the
    generated Verilog leaves them out.

    ``init``: an :class:`EIEMatrix` encoded for ``cfg`` sets the memories, codebook and the
    rows/cols registers at elaboration (FPGA builds). Without it, rows/cols reset to the maxima
    and the memories are zero (every result 0) until loaded.

    Bias (``arith.bias_bits`` set): a ``max_rows`` x ``bias_bits`` memory, written by BIAS load
    words and read with the accumulator at the read-out (same cycle, same enable, addressed by
    a row counter), feeds the requantizer's ``bias`` input, which adds it before ReLU and the
    shift: no cycle changes. ``bias_init`` (one integer per row of ``init``) sets it at
    elaboration; otherwise it is zero until loaded.
    """

    def __init__(self, cfg: EIEConfig, init: EIEMatrix | None = None, *, checks: bool = False,
                 bias_init=None):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        if init is not None:
            if not isinstance(init, EIEMatrix):
                raise SparseFlowError(f"init must be an EIEMatrix or None, not {type(init).__name__}")
            check_fits(init, cfg)
            if (init.codebook is not None) != cfg.codebook:
                raise SparseFlowError("init and cfg disagree on codebook mode")
        if bias_init is not None:
            from model.hw.reference import check_bias
            if init is None:
                raise SparseFlowError("bias_init needs init (the matrix it belongs to)")
            bias_init = [int(v) for v in check_bias(bias_init, init.shape[0], cfg.arith)]
        self.cfg = cfg
        self.init = init
        self.checks = checks
        self.bias_init = bias_init
        n = cfg.n_pes
        super().__init__({
            "x": In(stream.Signature(elem_layout(cfg))),
            "y": Out(stream.Signature(result_layout(cfg))),
            "load": In(stream.Signature(load_layout(cfg))),
            "cycles": Out(COUNTER_BITS),
            "total_cycles": Out(COUNTER_BITS),
            "busy": Out(data.ArrayLayout(unsigned(COUNTER_BITS), n)),
            "stall": Out(data.ArrayLayout(unsigned(COUNTER_BITS), n)),
            "vectors": Out(COUNTER_BITS),
        })

    @property
    def build_key(self):
        """What determines the generated Verilog (``verif.runner`` caches conversions by it);
        ``None`` when memories are initialised from a matrix."""
        return None if self.init is not None else (type(self).__qualname__, self.cfg)

    # ``elaborate`` runs the stages below in order; each takes the signals it needs from the
    # namespace ``s`` and leaves there the ones later stages use.
    def elaborate(self, platform):
        m = Module()
        cfg, a, n = self.cfg, self.cfg.arith, self.cfg.n_pes
        init = self.init
        rq = a.requant or Requant()
        s = SimpleNamespace(cfg=cfg, a=a, n=n, init=init, rq=rq)
        for stage in (self._registers, self._datapath, self._load_port, self._control, self._readout,
                      self._checks, self._output):
            stage(m, s)
        return m

    def _registers(self, m, s):
        """Run-time registers: rows (with its ``== 0``/``== 1`` flags), cols, shift, relu and the
        codebook."""
        cfg, init, rq, a = s.cfg, s.init, s.rq, s.a
        # --- run-time registers -------------------------------------------------------------
        rows = Signal(clog2(cfg.max_rows + 1), init=init.shape[0] if init else cfg.max_rows)
        rows_zero = Signal(init=rows.init == 0)  # == (rows == 0), (rows == 1): compares kept out
        rows_one = Signal(init=rows.init == 1)   # of the read-out's handshake
        cols = Signal(col_bits(cfg), init=init.shape[1] if init else cfg.max_cols)
        shift = Signal(SHIFT_BITS, init=rq.shift)
        relu = Signal(init=int(rq.relu))
        cb_init = [] if init is None or init.codebook is None else [int(v) for v in init.codebook]
        codebook = Signal(data.ArrayLayout(signed(a.weight_bits),
                                           1 << cfg.codebook_bits), init=cb_init) if cfg.codebook else None
        s.rows, s.rows_zero, s.rows_one, s.cols, s.shift = rows, rows_zero, rows_one, cols, shift
        s.relu = relu
        s.codebook = codebook

    def _datapath(self, m, s):
        """Non-zero detection, the broadcast queues and the PEs."""
        cfg, init, n, codebook = s.cfg, s.init, s.n, s.codebook
        # --- datapath ------------------------------------------------------------------------
        # One element per input word, or K (frontend_width) scanned for non-zeros: same ports
        # to the control (accept: the front end works on the input this cycle; end: last word).
        nzd = m.submodules.nonzero = (NonZeroDetect(cfg) if cfg.frontend_width == 1 else
                                      NonZeroScan(cfg, cols_init=init.shape[1] if init else cfg.max_cols))
        mask = None
        if init is not None:  # column-occupancy bits: PE k has entries in column j
            mask = np.zeros((n, cfg.max_cols), dtype=bool)
            mask[:, :init.shape[1]] = np.diff(init.ptr, axis=1) > 0
        bc = m.submodules.broadcast = Broadcast(cfg, mask, checks=self.checks)
        pes = []
        for k in range(n):
            words = init.words(cfg, k) if init is not None else None
            ptr = init.ptr[k] if init is not None else None
            pe = m.submodules[f"pe{k}"] = EIEPE(cfg, words, ptr, checks=self.checks)
            pes.append(pe)
            wiring.connect(m, bc.q[k], pe.act)
            if cfg.codebook:
                m.d.comb += pe.codebook.eq(codebook)
        wiring.connect(m, nzd.nz, bc.i)
        m.d.comb += [nzd.x.payload.eq(self.x.payload), nzd.x.valid.eq(self.x.valid),
                     self.x.ready.eq(nzd.x.ready)]
        s.nzd, s.bc, s.pes = nzd, bc, pes

    def _load_port(self, m, s):
        """The state flags ``load.ready`` depends on, and the writes, one cycle after each load
        word, from a register stage."""
        nzd, n, pes, bc, a, cfg, rows, rows_zero = s.nzd, s.n, s.pes, s.bc, s.a, s.cfg, s.rows, s.rows_zero
        rows_one = s.rows_one
        cols, shift, relu, codebook = s.cols, s.shift, s.relu, s.codebook
        # --- load port: accepted only between vectors ----------------------------------------
        # Compute side: ``state`` (:class:`Phase`). Read-out side: out_busy. They meet at the bank swap.
        state = Signal(Phase)
        out_busy = Signal()
        bank = Signal()
        ld = self.load.payload
        run = Signal()  # == (state == COMPUTE) & ~seen_last
        idle_ok = Signal(init=1)  # == (state == IDLE) and no load word taken in the two cycles before
        # A vector's first element waiting at the input goes before a load word: the detector's
        # enable is then a function of two flags, with no load handshake in it.
        m.d.comb += self.load.ready.eq((state == Phase.IDLE) & ~out_busy & ~(idle_ok & nzd.waiting))
        ld_go = self.load.valid & self.load.ready
        # Memory writes (entries, pointers, column mask) leave from a register stage one cycle
        # after the load word is taken: the decoded write enables reach the PEs' block RAMs
        # from flip-flops. The input waits two cycles after any load (idle_ok, below), so no
        # element can meet such a write.
        wr_addr = Signal.like(ld.addr, reset_less=True)
        wr_data = Signal.like(ld.data, reset_less=True)
        wr_pe = Signal.like(ld.pe, reset_less=True)
        wr_ent = Signal(n)
        wr_ptr = Signal(n)
        wr_mask = Signal()
        m.d.sync += [wr_addr.eq(ld.addr), wr_data.eq(ld.data), wr_pe.eq(ld.pe),
                     wr_mask.eq(ld_go & (ld.kind == LoadKind.COLMASK))]
        for k, pe in enumerate(pes):
            hit = ld_go & (ld.pe == k) if n > 1 else ld_go
            m.d.sync += [wr_ent[k].eq(hit & (ld.kind == LoadKind.ENTRY)),
                         wr_ptr[k].eq(hit & (ld.kind == LoadKind.PTR))]
            if not cfg.wide:
                m.d.comb += [
                    pe.ent_we.eq(wr_ent[k]), pe.ent_addr.eq(wr_addr), pe.ent_data.eq(wr_data),
                    pe.ptr_we.eq(wr_ptr[k]), pe.ptr_addr.eq(wr_addr), pe.ptr_data.eq(wr_data),
                ]
        if cfg.wide:
            # A second register stage: one net from the first stage to every PE's memories
            # spans the chip. Per group of PEs a copy of the address and data, loaded only for
            # writes into that group (distinct enables, so synthesis keeps the copies apart),
            # and per PE its write enables: the writes land two cycles after the load word.
            for g, group in enumerate(pe_groups(n)):
                g_addr = Signal.like(wr_addr, reset_less=True, name=f"wr_addr_g{g}")
                g_data = Signal.like(wr_data, reset_less=True, name=f"wr_data_g{g}")
                with m.If(Cat(*(wr_ent[k] | wr_ptr[k] for k in group)).any()):
                    m.d.sync += [g_addr.eq(wr_addr), g_data.eq(wr_data)]
                for k in group:
                    ent_we, ptr_we = Signal(name=f"ent_we{k}"), Signal(name=f"ptr_we{k}")
                    m.d.sync += [ent_we.eq(wr_ent[k]), ptr_we.eq(wr_ptr[k])]
                    m.d.comb += [
                        pes[k].ent_we.eq(ent_we), pes[k].ent_addr.eq(g_addr), pes[k].ent_data.eq(g_data),
                        pes[k].ptr_we.eq(ptr_we), pes[k].ptr_addr.eq(g_addr), pes[k].ptr_data.eq(g_data),
                    ]
        m.d.comb += [bc.mask_we.eq(wr_mask), bc.mask_pe.eq(wr_pe), bc.mask_col.eq(wr_addr), bc.mask_bit.eq(wr_data[0])]
        bias_rd = None
        if a.bias_bits is not None:
            # Per-row biases. Written from the register stage like the PEs' memories; read by
            # the read-out beside the accumulators. Collision-free: loads are taken only while
            # no read-out runs, and a read-out needs a computed vector, whose input waits two
            # cycles after any load word.
            bias_mem = m.submodules.bias = collision_free_memory(
                shape=signed(a.bias_bits), depth=cfg.max_rows, init=self.bias_init or [])
            bias_wr, bias_rd = bias_mem.write_port(), bias_mem.read_port()
            wr_bias = Signal()
            m.d.sync += wr_bias.eq(ld_go & (ld.kind == LoadKind.BIAS))
            m.d.comb += [bias_wr.en.eq(wr_bias), bias_wr.addr.eq(wr_addr), bias_wr.data.eq(wr_data)]
        # Register writes leave from the same stage. The detector registers its column range
        # check from cols, so after a load word the input waits two cycles (vectors are counted
        # from their first element: no cycle count changes).
        reg_go = ld_go & (ld.kind == LoadKind.REG)
        wr_rows, wr_cols, wr_shift, wr_relu = (Signal(name=f"wr_{r}") for r in ("rows", "cols", "shift", "relu"))
        m.d.sync += [wr_rows.eq(reg_go & (ld.addr == Reg.ROWS)), wr_cols.eq(reg_go & (ld.addr == Reg.COLS)),
                     wr_shift.eq(reg_go & (ld.addr == Reg.SHIFT)), wr_relu.eq(reg_go & (ld.addr == Reg.RELU))]
        rows_next = wr_data[:len(rows)]
        with m.If(wr_rows):
            m.d.sync += [rows.eq(rows_next), rows_zero.eq(rows_next == 0), rows_one.eq(rows_next == 1)]
        with m.If(wr_cols):
            m.d.sync += cols.eq(wr_data)
        with m.If(wr_shift):
            m.d.sync += shift.eq(wr_data)
        with m.If(wr_relu):
            m.d.sync += relu.eq(wr_data[0])
        m.d.comb += nzd.cols.eq(cols)
        if cfg.codebook:
            wr_book = Signal()
            m.d.sync += wr_book.eq(ld_go & (ld.kind == LoadKind.CODEBOOK))
            with m.If(wr_book):
                m.d.sync += codebook[wr_addr[:cfg.codebook_bits]].eq(wr_data[:a.weight_bits])
        wr_any = Signal()  # a load word was taken in the cycle before
        m.d.sync += wr_any.eq(ld_go)
        if cfg.wide:  # (or two cycles before: the PE writes land a cycle later)
            wr_any2 = Signal()
            m.d.sync += wr_any2.eq(wr_any)
            wr_any = wr_any | wr_any2
        s.state, s.out_busy, s.bank, s.run, s.idle_ok, s.ld_go = state, out_busy, bank, run, idle_ok, ld_go
        s.bias_rd, s.wr_any = bias_rd, wr_any

    def _control(self, m, s):
        """The compute side (:class:`Phase`), the bank swap and the cycle/busy/stall counters."""
        nzd, run, idle_ok, state, ld_go, wr_any = s.nzd, s.run, s.idle_ok, s.state, s.ld_go, s.wr_any
        pes = s.pes
        bc, out_busy, bank, n = s.bc, s.out_busy, s.bank, s.n
        # --- control -------------------------------------------------------------------------
        seen_last = Signal()
        # In IDLE the broadcast is empty (nz.ready is high): an element waiting there while
        # idle_ok is accepted at once, which is why load.ready leaves that cycle to it.
        m.d.comb += nzd.enable.eq(run | idle_ok)
        # Elements are accepted only in IDLE (idle_ok: the vector's first) or while run; both
        # flags follow each acceptance, written flat (no enable made of the handshake).
        last_in = nzd.end  # == nzd.accept & the element's last
        m.d.sync += [run.eq((nzd.accept & ~last_in) | (~nzd.accept & run)),
                     seen_last.eq(last_in | (~nzd.accept & seen_last))]
        with m.If(state == Phase.IDLE):
            m.d.sync += idle_ok.eq(~nzd.accept & ~ld_go & ~wr_any)
        all_idle = Signal()
        m.d.comb += all_idle.eq(Cat(*(pe.idle for pe in pes)).all())
        # "Everything drained" is registered (an AND over every PE's stages would otherwise feed
        # the whole control): done is seen one cycle after it became true. Once the last element
        # is in, nothing enters, so the registered condition cannot go stale within COMPUTE.
        drained = Signal()
        front = nzd.pending if s.cfg.frontend_width > 1 else 0  # NonZeroScan's output register
        if not s.cfg.wide:
            m.d.sync += drained.eq((state == Phase.COMPUTE) & seen_last & all_idle & ~bc.pending & ~front)
        else:
            # Wide: the PEs' idle flags ANDed per group into registers, and the rest of the
            # condition registered beside them: drained is seen one cycle later.
            idle_g = []
            for g, group in enumerate(pe_groups(n)):
                idle_g.append(Signal(name=f"idle_g{g}"))
                m.d.sync += idle_g[-1].eq(Cat(*(pes[k].idle for k in group)).all())
            rest = Signal()
            m.d.sync += [rest.eq((state == Phase.COMPUTE) & seen_last & ~bc.pending & ~front),
                         drained.eq((state == Phase.COMPUTE) & rest & Cat(*idle_g).all())]
        done = (state == Phase.COMPUTE) & drained
        finished = Signal()  # the read-out sends its last result this cycle
        swap = ((state == Phase.WAIT) | done) & ~out_busy
        if not s.cfg.wide:
            for pe in pes:
                m.d.comb += pe.bank.eq(bank)
        else:
            # bank reaches ~120 loads in every PE (its accumulator ports and read-out select):
            # one net to all of them spans the chip. Each PE gets its own copy, toggled a cycle
            # after bank by a registered swap (the PEs are idle then; the read-out's first read
            # reaches them a cycle after its issue, see _readout).
            swap_r = Signal()
            bank_r = Signal()  # bank a cycle ago, for the check
            m.d.sync += [swap_r.eq(swap), bank_r.eq(bank)]
            for k, pe in enumerate(pes):
                bank_k = Signal(name=f"bank{k}")
                with m.If(swap_r):
                    m.d.sync += bank_k.eq(~bank_k)
                m.d.comb += pe.bank.eq(bank_k)
                if self.checks:
                    m.d.comb += Assert(bank_k == bank_r, "the PE's bank copy")

        cyc = Signal(COUNTER_BITS)
        tot = Signal(COUNTER_BITS)  # compute side's vector
        tot_out = Signal(COUNTER_BITS)  # read-out side's vector
        busy = [Signal(COUNTER_BITS, name=f"busy_live{k}") for k in range(n)]
        stall = [Signal(COUNTER_BITS, name=f"stall_live{k}") for k in range(n)]

        with m.Switch(state):
            with m.Case(Phase.IDLE):
                with m.If(nzd.accept):
                    m.d.sync += [state.eq(Phase.COMPUTE), cyc.eq(1), tot.eq(1)]
                    m.d.sync += [c.eq(0) for c in busy + stall]
            with m.Case(Phase.COMPUTE):
                m.d.sync += [cyc.eq(cyc + 1), tot.eq(tot + 1)]
                for k in range(n):
                    m.d.sync += [busy[k].eq(busy[k] + pes[k].busy),
                                 stall[k].eq(stall[k] + bc.blocked[k])]
                with m.If(done):
                    m.d.sync += state.eq(Phase.WAIT)
            with m.Case(Phase.WAIT):
                m.d.sync += tot.eq(tot + 1)
        with m.If(swap):  # hand the finished bank to the read-out; compute takes the other
            m.d.sync += [state.eq(Phase.IDLE), idle_ok.eq(1), bank.eq(~bank), out_busy.eq(1), tot_out.eq(tot + 1),
                         # cyc stopped counting at done (+1 for the done cycle itself)
                         self.cycles.eq(Mux(state == Phase.WAIT, cyc, cyc + 1))]
            # The live busy/stall counters are frozen since done: PEs idle, nothing pending.
            m.d.sync += [self.busy[k].eq(busy[k]) for k in range(n)]
            m.d.sync += [self.stall[k].eq(stall[k]) for k in range(n)]
        with m.Elif(out_busy):
            m.d.sync += tot_out.eq(tot_out + 1)
        s.seen_last, s.finished, s.swap, s.tot_out = seen_last, finished, swap, tot_out

    def _readout(self, m, s):
        """Read-out: the results in row order from the PEs' idle banks, into ``y``."""
        n, cfg, pes, bias_rd, finished, swap = s.n, s.cfg, s.pes, s.bias_rd, s.finished, s.swap
        rows_zero = s.rows_zero
        rows, rows_one, out_busy, tot_out = s.rows, s.rows_one, s.out_busy, s.tot_out
        # --- read-out: row r = PE r % n, local row r // n ------------------------------------
        # The issue decision reaches every PE's accumulator memory: it is kept to flip-flops and
        # the y handshake (``more``: rows remain; ``out_hot``: PE r % n, one-hot).
        out_k = Signal(range(n))
        out_hot = Signal(n, init=1)
        out_l = Signal(max(1, clog2(cfg.rows_per_pe)))
        # Rows left to issue, with "one left" as its own flip-flop: no adder or comparison
        # between the counter and the y handshake.
        left = Signal(clog2(cfg.max_rows + 1))
        one_left = Signal()
        more = Signal()
        sel = Signal(range(n), reset_less=True)  # data of the result in flight
        y_last = Signal(reset_less=True)
        y_free = ~self.y.valid | self.y.ready
        if not cfg.wide:
            can_issue = more & y_free
            for k, pe in enumerate(pes):  # only the row's own PE reads (and so clears) its accumulator
                m.d.comb += pe.rd_en.eq(can_issue & out_hot[k])
                m.d.comb += pe.rd_addr.eq(out_l)
        else:
            can_issue = self._readout_pipeline(m, s, more, one_left, out_l, out_hot)
        if bias_rd is not None:  # row r's bias arrives with its accumulator (held while stalled)
            out_row = Signal(range(cfg.max_rows))
            m.d.comb += [bias_rd.en.eq(can_issue), bias_rd.addr.eq(out_row)]
            with m.If(can_issue):
                m.d.sync += out_row.eq(out_row + 1)
            with m.If(finished):
                m.d.sync += out_row.eq(0)
        with m.If(swap):
            m.d.sync += [more.eq(~rows_zero), left.eq(rows), one_left.eq(rows_one)]
        with m.If(can_issue):
            if not cfg.wide:
                m.d.sync += [self.y.valid.eq(1), sel.eq(out_k), y_last.eq(one_left)]
            m.d.sync += [more.eq(~one_left),
                         left.eq(left - 1), one_left.eq(left == 2), out_hot.eq(out_hot.rotate_left(1))]
            with m.If(out_k == n - 1):
                m.d.sync += [out_k.eq(0), out_l.eq(out_l + 1)]
            with m.Else():
                m.d.sync += out_k.eq(out_k + 1)
        if not cfg.wide:
            with m.Elif(self.y.ready):
                m.d.sync += self.y.valid.eq(0)
        else:
            y_last = s.y_last_w
        m.d.comb += finished.eq(out_busy & ((self.y.valid & self.y.ready & y_last) | rows_zero))
        with m.If(finished):
            m.d.sync += [out_busy.eq(0), out_k.eq(0), out_hot.eq(1), out_l.eq(0),
                         self.total_cycles.eq(tot_out + 1), self.vectors.eq(self.vectors + 1)]
        s.left, s.one_left, s.more, s.sel, s.y_last = left, one_left, more, sel, y_last

    def _readout_pipeline(self, m, s, more, one_left, out_l, out_hot):
        """Wide arrays: no net from the issue decision, or to the result, crosses the chip
        within a cycle. A row issued at cycle ``I`` (``more`` and fewer than
        :data:`READOUT_DEPTH` results issued and not yet taken from ``y``) is read by its PE at
        ``I + 1`` (per-PE enable and per-group row registers), ORed with the rest of its group
        into a register at ``I + 2`` (one-hot select: only the read PE's term is not zero) and
        across the groups at ``I + 3`` into a FIFO of ``READOUT_DEPTH`` results, with its bias
        and last flag; ``y`` is the FIFO's head through the requantizer, from ``I + 4``."""
        n, pes, a = s.n, s.pes, s.a
        taken = self.y.valid & self.y.ready
        issued = Signal(range(READOUT_DEPTH + 1))  # results issued and not yet taken
        can_issue = more & (issued != READOUT_DEPTH)
        m.d.sync += issued.eq(issued + can_issue - taken)
        out_l_r = Signal.like(out_l)  # the row of the read in flight, for the check
        m.d.sync += out_l_r.eq(out_l)
        group_or = []
        for g, group in enumerate(pe_groups(n)):
            # The local row: loaded only for issues into its group (distinct enables keep the
            # copies apart), so it is the issued row when the read reaches the PE.
            out_l_g = Signal.like(out_l, name=f"out_l_g{g}")
            with m.If(can_issue & Cat(*(out_hot[k] for k in group)).any()):
                m.d.sync += out_l_g.eq(out_l)
            terms = []
            for k in group:
                rd_k, sel_k = Signal(name=f"rd_en{k}"), Signal(name=f"rd_sel{k}")
                m.d.sync += [rd_k.eq(can_issue & out_hot[k]), sel_k.eq(rd_k)]
                m.d.comb += [pes[k].rd_en.eq(rd_k), pes[k].rd_addr.eq(out_l_g)]
                terms.append(Mux(sel_k, pes[k].rd_data, 0))
                if self.checks:
                    m.d.comb += Assert(~rd_k | (out_l_g == out_l_r), "the group's row copy")
            or_g = Signal(signed(a.acc_bits), name=f"rd_or{g}", reset_less=True)
            m.d.sync += or_g.eq(_or_tree(terms))
            group_or.append(or_g)
        # The result's valid and last flags, and its bias (read at I, held on the port),
        # beside it through the stages.
        v = [Signal(name=f"rd_valid{i}") for i in (1, 2, 3)]
        last = [Signal(name=f"rd_last{i}", reset_less=True) for i in (1, 2, 3)]
        m.d.sync += [v[0].eq(can_issue), last[0].eq(one_left),
                     v[1].eq(v[0]), last[1].eq(last[0]), v[2].eq(v[1]), last[2].eq(last[1])]
        fields = [("acc", signed(a.acc_bits)), ("last", 1)]
        if s.bias_rd is not None:
            fields.append(("bias", signed(a.bias_bits)))
            b2, b3 = (Signal(signed(a.bias_bits), name=f"rd_bias{i}", reset_less=True) for i in (2, 3))
            m.d.sync += [b2.eq(s.bias_rd.data), b3.eq(b2)]
        layout = data.StructLayout(dict(fields))
        fifo = m.submodules.results = SyncFIFO(width=layout.size, depth=READOUT_DEPTH)
        w = data.View(layout, fifo.w_data)
        r = data.View(layout, fifo.r_data)
        m.d.comb += [w.acc.eq(_or_tree(group_or)), w.last.eq(last[2]), fifo.w_en.eq(v[2]),
                     self.y.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.y.ready)]
        if s.bias_rd is not None:
            m.d.comb += w.bias.eq(b3)
        if self.checks:
            m.d.comb += Assert(~v[2] | fifo.w_rdy, "the result FIFO has room")
        s.acc_w, s.bias_w, s.y_last_w = r.acc, (r.bias if s.bias_rd is not None else None), r.last
        return can_issue

    def _checks(self, m, s):
        """With ``checks``: assertions that the flags kept for timing mirror their state."""
        run, state, seen_last, idle_ok, rows_zero = s.run, s.state, s.seen_last, s.idle_ok, s.rows_zero
        rows, rows_one, more, one_left, left = s.rows, s.rows_one, s.more, s.one_left, s.left
        if self.checks:
            m.d.comb += [
                Assert(run == ((state == Phase.COMPUTE) & ~seen_last), "run mirrors the state"),
                Assert(~idle_ok | (state == Phase.IDLE), "idle_ok only in IDLE"),
                Assert(rows_zero == (rows == 0), "rows_zero mirrors rows"),
                Assert(rows_one == (rows == 1), "rows_one mirrors rows"),
                Assert(~more | (one_left == (left == 1)), "one_left mirrors left"),
            ]

    def _output(self, m, s):
        """The requantizer between the read-out and ``y``."""
        a, pes, sel, shift, relu, bias_rd, y_last = s.a, s.pes, s.sel, s.shift, s.relu, s.bias_rd, s.y_last
        rqz = m.submodules.requant = Requantizer(a)
        bias = bias_rd.data if bias_rd is not None else None
        if not s.cfg.wide:
            acc = Array(pe.rd_data for pe in pes)[sel]
        else:
            acc, bias = s.acc_w, s.bias_w  # from the result FIFO
        m.d.comb += [
            rqz.acc.eq(acc),
            rqz.shift.eq(shift),
            rqz.relu.eq(relu),
            *([rqz.bias.eq(bias)] if bias is not None else []),
            self.y.payload.data.eq(rqz.out),
            self.y.payload.last.eq(y_last),
        ]


READOUT_DEPTH = 8  # a wide array's result FIFO: > the 5 results in flight at one per cycle


def _or_tree(terms):
    """A balanced OR of ``terms``."""
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
