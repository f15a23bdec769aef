"""The EIE-like sparse PE array: non-zero detection, broadcast queues, PEs, read-out, counters."""
from dataclasses import replace

import numpy as np
from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import EIEConfig, Requant, clog2
from model.errors import SparseFlowError
from model.formats.eie import EIEMatrix, check_fits
from rtl.common.requant import SHIFT_BITS, Requantizer

from .broadcast import Broadcast
from .layouts import (COUNTER_BITS, LOAD_CODEBOOK, LOAD_COLMASK, LOAD_ENTRY, LOAD_PTR, LOAD_REG, REG_COLS, REG_RELU,
                      REG_ROWS, REG_SHIFT, col_bits, elem_layout, load_layout, result_layout)
from .nonzero import NonZeroDetect
from .pe import EIEPE


def build_config(cfg: EIEConfig) -> EIEConfig:
    """The configuration to elaborate for run-time requantization.

    ``shift``/``relu`` are registers loaded through ``load``; only their reset values come from
    the configuration. Elaborating from ``Requant()`` (when requant is set) makes every config
    that differs only in shift/relu give the same Verilog, hence one compiled simulation.
    """
    if cfg.arith.requant is None or cfg.arith.requant == Requant():
        return cfg
    return cfg.with_(arith=replace(cfg.arith, requant=Requant()))


class EIEArray(wiring.Component):
    """EIE-like sparse matrix x vector engine: ``y = requant(W @ x)`` with ``n_pes`` PEs.

    Ports:
      ``x``     In(stream {data: signed(act_bits), last}): the input vector, column order,
                ``last`` on its final element, through a two-word input queue (``x.ready``
                is "the queue is not full"); zeros leave it at once and are skipped.
      ``y``     Out(stream {data: signed(out_bits), last}): the ``rows`` results in row order,
                ``last`` on the final row.
      ``load``  In(stream {kind, pe, addr, data}): run-time writes, accepted (``ready``) only
                between vectors:
                  kind 0 ENTRY:    PE ``pe``'s entry word ``addr`` := ``data``
                  kind 1 PTR:      PE ``pe``'s column pointer ``ptr[addr]`` := ``data``
                  kind 2 REG:      register ``addr`` := ``data``: 0 rows, 1 cols, 2 shift, 3 relu
                                   (after a cols write the input waits one cycle)
                  kind 3 CODEBOOK: codebook weight ``addr`` := ``data`` (codebook mode)
                  kind 4 COLMASK:  PE ``pe`` has entries in column ``addr``: ``data[0]``
                                   (must be ``ptr[addr+1] != ptr[addr]``; a PE never sees
                                   a column whose bit is 0)
      ``cycles``       Out(32): compute cycles of the vector: from the cycle its first element
                       left the input queue (one cycle after its transfer on ``x``, at the
                       earliest) to the cycle every PE was found idle after its last.
      ``total_cycles`` Out(32): the same up to the transfer of its last result.
      ``busy``  Out(32 x n_pes): per PE, cycles of the last vector it issued an entry.
      ``stall`` Out(32 x n_pes): per PE, cycles its full queue held up the broadcast.
      ``vectors`` Out(32): vectors completed since reset.

    Timing: one input element per cycle while computing. A vector's compute ends one cycle
    after its last element has left the input queue and all PEs were found idle. Each PE has
    two accumulator banks: at the end of a compute the banks swap (as soon as the previous
    vector's read-out is over), the results stream out of one bank, one per cycle, each
    accumulator cleared behind its read, while the next vector is already accepted and
    computed into the other. The counter outputs describe the vector being (or last) read out:
    ``cycles``, ``busy``, ``stall`` change when its read-out starts, ``total_cycles`` and
    ``vectors`` at its last result, so they are stable for at least one cycle after that
    result; ``total_cycles`` includes any wait for the read-out of the vector before.

    ``init``: an :class:`EIEMatrix` encoded for ``cfg`` sets the memories, codebook and the
    rows/cols registers at elaboration (FPGA builds). Without it, rows/cols reset to the maxima
    and the memories are zero (every result 0) until loaded.
    """

    def __init__(self, cfg: EIEConfig, init: EIEMatrix | None = None):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        if init is not None:
            if not isinstance(init, EIEMatrix):
                raise SparseFlowError(f"init must be an EIEMatrix or None, not {type(init).__name__}")
            check_fits(init, cfg)
            if (init.codebook is not None) != cfg.codebook:
                raise SparseFlowError("init and cfg disagree on codebook mode")
        self.cfg = cfg
        self.init = init
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

    def elaborate(self, platform):
        m = Module()
        cfg, a, n = self.cfg, self.cfg.arith, self.cfg.n_pes
        init = self.init
        rq = a.requant or Requant()

        # --- run-time registers -------------------------------------------------------------
        rows = Signal(clog2(cfg.max_rows + 1), init=init.shape[0] if init else cfg.max_rows)
        cols = Signal(col_bits(cfg), init=init.shape[1] if init else cfg.max_cols)
        shift = Signal(SHIFT_BITS, init=rq.shift)
        relu = Signal(init=int(rq.relu))
        cb_init = [] if init is None or init.codebook is None else [int(v) for v in init.codebook]
        codebook = Signal(data.ArrayLayout(signed(a.weight_bits),
                                           1 << cfg.codebook_bits), init=cb_init) if cfg.codebook else None

        # --- datapath ------------------------------------------------------------------------
        nzd = m.submodules.nonzero = NonZeroDetect(cfg)
        mask = None
        if init is not None:  # column-occupancy bits: PE k has entries in column j
            mask = np.zeros((n, cfg.max_cols), dtype=bool)
            mask[:, :init.shape[1]] = np.diff(init.ptr, axis=1) > 0
        bc = m.submodules.broadcast = Broadcast(cfg, mask)
        pes = []
        for k in range(n):
            words = init.words(cfg, k) if init is not None else None
            ptr = init.ptr[k] if init is not None else None
            pe = m.submodules[f"pe{k}"] = EIEPE(cfg, words, ptr)
            pes.append(pe)
            wiring.connect(m, bc.q[k], pe.act)
            if cfg.codebook:
                m.d.comb += pe.codebook.eq(codebook)
        wiring.connect(m, nzd.nz, bc.i)
        m.d.comb += [nzd.x.payload.eq(self.x.payload), nzd.x.valid.eq(self.x.valid),
                     self.x.ready.eq(nzd.x.ready)]

        # --- load port: accepted only between vectors ----------------------------------------
        # Compute side: IDLE (next vector may start), COMPUTE, WAIT (done, read-out still busy
        # with the previous vector). Read-out side: out_busy. They meet at the bank swap.
        IDLE, COMPUTE, WAIT = 0, 1, 2
        state = Signal(2)
        out_busy = Signal()
        bank = Signal()
        ld = self.load.payload
        m.d.comb += self.load.ready.eq((state == IDLE) & ~out_busy)
        ld_go = self.load.valid & self.load.ready
        for k, pe in enumerate(pes):
            hit = ld_go & (ld.pe == k) if n > 1 else ld_go
            m.d.comb += [
                pe.ent_we.eq(hit & (ld.kind == LOAD_ENTRY)), pe.ent_addr.eq(ld.addr), pe.ent_data.eq(ld.data),
                pe.ptr_we.eq(hit & (ld.kind == LOAD_PTR)), pe.ptr_addr.eq(ld.addr), pe.ptr_data.eq(ld.data),
            ]
        m.d.comb += [bc.mask_we.eq(ld_go & (ld.kind == LOAD_COLMASK)), bc.mask_pe.eq(ld.pe),
                     bc.mask_col.eq(ld.addr), bc.mask_bit.eq(ld.data[0])]
        with m.If(ld_go & (ld.kind == LOAD_REG)):
            with m.Switch(ld.addr):
                with m.Case(REG_ROWS):
                    m.d.sync += rows.eq(ld.data)
                with m.Case(REG_SHIFT):
                    m.d.sync += shift.eq(ld.data)
                with m.Case(REG_RELU):
                    m.d.sync += relu.eq(ld.data[0])
        # The detector registers its column range check: it takes nothing in the cycle after a
        # write to cols (vectors are counted from their first element: no cycle count changes).
        cols_load = ld_go & (ld.kind == LOAD_REG) & (ld.addr == REG_COLS)
        with m.If(cols_load):
            m.d.sync += cols.eq(ld.data)
        m.d.comb += nzd.cols.eq(cols)
        if cfg.codebook:
            with m.If(ld_go & (ld.kind == LOAD_CODEBOOK)):
                m.d.sync += codebook[ld.addr[:cfg.codebook_bits]].eq(ld.data[:a.weight_bits])

        # --- control -------------------------------------------------------------------------
        # A load word and a first element in the same cycle: the load goes first.
        seen_last = Signal()
        # The detector's enable is a one-LUT function of two flags kept beside the state:
        # run == (state == COMPUTE) & ~seen_last, idle_ok == (state == IDLE) and cols not
        # written in the cycle before.
        run = Signal()
        idle_ok = Signal(init=1)
        m.d.comb += nzd.enable.eq(run | (idle_ok & ~(self.load.valid & ~out_busy)))
        with m.If(state == IDLE):
            m.d.sync += idle_ok.eq(~nzd.accept & ~cols_load)
        all_idle = Signal()
        m.d.comb += all_idle.eq(Cat(*(pe.idle for pe in pes)).all())
        # "Everything drained" is registered (an AND over every PE's stages would otherwise feed
        # the whole control): done is seen one cycle after it became true. Once the last element
        # is in, nothing enters, so the registered condition cannot go stale within COMPUTE.
        drained = Signal()
        m.d.sync += drained.eq((state == COMPUTE) & seen_last & all_idle & ~bc.pending)
        done = (state == COMPUTE) & drained
        finished = Signal()  # the read-out sends its last result this cycle
        swap = ((state == WAIT) | done) & ~out_busy
        for pe in pes:
            m.d.comb += pe.bank.eq(bank)

        cyc = Signal(COUNTER_BITS)
        tot = Signal(COUNTER_BITS)  # compute side's vector
        tot_out = Signal(COUNTER_BITS)  # read-out side's vector
        busy = [Signal(COUNTER_BITS, name=f"busy_live{k}") for k in range(n)]
        stall = [Signal(COUNTER_BITS, name=f"stall_live{k}") for k in range(n)]

        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(nzd.accept):
                    m.d.sync += [state.eq(COMPUTE), seen_last.eq(nzd.end), run.eq(~nzd.end), cyc.eq(1), tot.eq(1)]
                    m.d.sync += [c.eq(0) for c in busy + stall]
            with m.Case(COMPUTE):
                m.d.sync += [cyc.eq(cyc + 1), tot.eq(tot + 1)]
                with m.If(nzd.end):
                    m.d.sync += [seen_last.eq(1), run.eq(0)]
                for k in range(n):
                    m.d.sync += [busy[k].eq(busy[k] + pes[k].busy),
                                 stall[k].eq(stall[k] + bc.blocked[k])]
                with m.If(done):
                    m.d.sync += state.eq(WAIT)
            with m.Case(WAIT):
                m.d.sync += tot.eq(tot + 1)
        with m.If(swap):  # hand the finished bank to the read-out; compute takes the other
            m.d.sync += [state.eq(IDLE), idle_ok.eq(1), bank.eq(~bank), out_busy.eq(1), tot_out.eq(tot + 1),
                         # cyc stopped counting at done (+1 for the done cycle itself)
                         self.cycles.eq(Mux(state == WAIT, cyc, cyc + 1))]
            # The live busy/stall counters are frozen since done: PEs idle, nothing pending.
            m.d.sync += [self.busy[k].eq(busy[k]) for k in range(n)]
            m.d.sync += [self.stall[k].eq(stall[k]) for k in range(n)]
        with m.Elif(out_busy):
            m.d.sync += tot_out.eq(tot_out + 1)

        # --- read-out: row r = PE r % n, local row r // n ------------------------------------
        # The issue decision reaches every PE's accumulator memory: it is kept to flip-flops and
        # the y handshake (``more``: rows remain; ``out_hot``: PE r % n, one-hot).
        out_k = Signal(range(n))
        out_hot = Signal(n, init=1)
        out_l = Signal(max(1, clog2(cfg.rows_per_pe)))
        out_r = Signal(clog2(cfg.max_rows + 1))
        more = Signal()
        sel = Signal(range(n))
        y_last = Signal()
        can_issue = more & (~self.y.valid | self.y.ready)
        for k, pe in enumerate(pes):  # only the row's own PE reads (and so clears) its accumulator
            m.d.comb += [pe.rd_en.eq(can_issue & out_hot[k]), pe.rd_addr.eq(out_l)]
        with m.If(swap):
            m.d.sync += more.eq(rows != 0)
        with m.If(can_issue):
            m.d.sync += [self.y.valid.eq(1), sel.eq(out_k), y_last.eq(out_r + 1 == rows),
                         more.eq(out_r + 1 != rows), out_r.eq(out_r + 1),
                         out_hot.eq(out_hot.rotate_left(1))]
            with m.If(out_k == n - 1):
                m.d.sync += [out_k.eq(0), out_l.eq(out_l + 1)]
            with m.Else():
                m.d.sync += out_k.eq(out_k + 1)
        with m.Elif(self.y.ready):
            m.d.sync += self.y.valid.eq(0)
        m.d.comb += finished.eq(out_busy & ((self.y.valid & self.y.ready & y_last) | (rows == 0)))
        with m.If(finished):
            m.d.sync += [out_busy.eq(0), out_k.eq(0), out_hot.eq(1), out_l.eq(0), out_r.eq(0),
                         self.total_cycles.eq(tot_out + 1), self.vectors.eq(self.vectors + 1)]

        rqz = m.submodules.requant = Requantizer(a)
        m.d.comb += [
            rqz.acc.eq(Array(pe.rd_data for pe in pes)[sel]),
            rqz.shift.eq(shift),
            rqz.relu.eq(relu),
            self.y.payload.data.eq(rqz.out),
            self.y.payload.last.eq(y_last),
        ]
        return m
