"""One processing element: its interleaved-CSC slice, a pointer stage, a walker and accumulators."""
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

import numpy as np

from model.config import EIEConfig, clog2
from model.errors import SparseFlowError

from .layouts import nz_layout


class EIEPE(wiring.Component):
    """PE ``k`` of the EIE array: walks the entries of each broadcast column, one per cycle.

    Ports:
      ``act``      In(stream {col, data}): the PE's activation queue head.
      ``ent_we``, ``ent_addr``, ``ent_data``: write entry word ``ent_data`` at ``ent_addr``.
      ``ptr_we``, ``ptr_addr``, ``ptr_data``: write column pointer ``ptr[ptr_addr]``.
      ``codebook`` In(array of 2**codebook_bits signed weights), codebook mode only.
      ``bank``     In(1): the accumulator bank the PE computes into; read-out uses the other one.
                   Change it only while the PE is idle.
      ``rd_en``, ``rd_addr``, ``rd_data``: read-out of bank ``~bank``, at any time: ``rd_en``
                   reads accumulator ``rd_addr`` into ``rd_data`` at the edge (held while
                   ``rd_en`` is low) and clears that accumulator one cycle later.
      ``idle``     Out(1): no column queued or in flight.
      ``busy``     Out(1): an entry is issued this cycle (padding included).

    Pipeline (one column's entries back to back, no bubble between columns):

    * P (pointers): the queue head's column ``j`` addresses two pointer banks, ``ptr[2i]`` and
      ``ptr[2i+1]``, at ``(j+1)>>1`` and ``j>>1``: the pair ``ptr[j], ptr[j+1]`` comes out of the
      two banks in one read. The head is popped into register A when A is free or being
      consumed. An empty column (``start == end``) is consumed from A without reaching the walker.
    * W (walker): issues entry address ``p`` per cycle from ``start`` to ``end - 1``; it takes the
      next column from A in the cycle it issues the current column's last entry.
    * C: the entry word arrives; the local row is ``z`` (first entry) or ``row + 1 + z``; the
      accumulator is read; the product ``weight * a`` is registered.
    * D: ``acc[row] += product``. The accumulator read port is transparent to this write, so
      an entry of the next column that hits the same row one cycle later reads the new sum:
      back-to-back updates of one row need no stall.

    Padding entries carry weight 0 (code 0 in codebook mode) on a real row: added harmlessly.
    """

    def __init__(self, cfg: EIEConfig, words=None, ptr=None):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        self._words = [] if words is None else [int(w) for w in np.asarray(words)]
        self._ptr = [] if ptr is None else [int(p) for p in np.asarray(ptr)]
        if len(self._words) > cfg.max_entries:
            raise SparseFlowError(f"{len(self._words)} entry words; the PE holds {cfg.max_entries}")
        if len(self._ptr) > cfg.max_cols + 1:
            raise SparseFlowError(f"{len(self._ptr)} pointers; the PE holds {cfg.max_cols + 1}")
        a = cfg.arith
        sig = {
            "act": In(stream.Signature(nz_layout(cfg))),
            "ent_we": In(1),
            "ent_addr": In(clog2(cfg.max_entries)),
            "ent_data": In(cfg.entry_bits),
            "ptr_we": In(1),
            "ptr_addr": In(clog2(cfg.max_cols + 1)),
            "ptr_data": In(cfg.ptr_bits),
            "bank": In(1),
            "rd_en": In(1),
            "rd_addr": In(clog2(cfg.rows_per_pe)),
            "rd_data": Out(signed(a.acc_bits)),
            "idle": Out(1),
            "busy": Out(1),
        }
        if cfg.codebook:
            sig["codebook"] = In(data.ArrayLayout(signed(a.weight_bits), 1 << cfg.codebook_bits))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        cfg, a = self.cfg, self.cfg.arith
        pb = cfg.ptr_bits

        # --- memories -------------------------------------------------------------------
        ent = m.submodules.entries = Memory(shape=unsigned(cfg.entry_bits), depth=cfg.max_entries,
                                            init=self._words)
        even = m.submodules.ptr_even = Memory(shape=unsigned(pb), depth=cfg.max_cols // 2 + 1,
                                              init=self._ptr[0::2])
        odd = m.submodules.ptr_odd = Memory(shape=unsigned(pb), depth=(cfg.max_cols + 1) // 2,
                                            init=self._ptr[1::2])

        ent_w = ent.write_port()
        ent_r = ent.read_port()
        even_w, odd_w = even.write_port(), odd.write_port()
        even_r, odd_r = even.read_port(), odd.read_port()

        m.d.comb += [
            ent_w.en.eq(self.ent_we), ent_w.addr.eq(self.ent_addr), ent_w.data.eq(self.ent_data),
            even_w.en.eq(self.ptr_we & ~self.ptr_addr[0]), even_w.addr.eq(self.ptr_addr >> 1),
            odd_w.en.eq(self.ptr_we & self.ptr_addr[0]), odd_w.addr.eq(self.ptr_addr >> 1),
            even_w.data.eq(self.ptr_data), odd_w.data.eq(self.ptr_data),
        ]

        # --- P: pointer fetch into register A ---------------------------------------------
        a_valid = Signal()
        a_odd = Signal()
        a_act = Signal(signed(a.act_bits))
        a_start = Signal(pb)
        a_end = Signal(pb)
        m.d.comb += [
            a_start.eq(Mux(a_odd, odd_r.data, even_r.data)),
            a_end.eq(Mux(a_odd, even_r.data, odd_r.data)),
        ]
        # --- W: walker registers
        active = Signal()
        p = Signal(pb)
        p_end = Signal(pb)
        w_act = Signal(signed(a.act_bits))
        w_first = Signal()

        issue = active
        last_issue = active & (p + 1 == p_end)
        can_take = ~active | last_issue
        a_empty = a_start == a_end
        take = a_valid & ~a_empty & can_take
        a_consume = a_valid & (a_empty | can_take)
        pop = self.act.valid & (~a_valid | a_consume)

        col = self.act.payload.col
        m.d.comb += [
            self.act.ready.eq(~a_valid | a_consume),
            even_r.addr.eq((col + 1) >> 1), odd_r.addr.eq(col >> 1),
            even_r.en.eq(pop), odd_r.en.eq(pop),  # the pair stays put while A waits
        ]
        with m.If(pop):
            m.d.sync += [a_valid.eq(1), a_odd.eq(col[0]), a_act.eq(self.act.payload.data)]
        with m.Elif(a_consume):
            m.d.sync += a_valid.eq(0)

        with m.If(take):
            m.d.sync += [active.eq(1), p.eq(a_start), p_end.eq(a_end), w_act.eq(a_act), w_first.eq(1)]
        with m.Elif(issue):
            m.d.sync += [p.eq(p + 1), w_first.eq(0)]
            with m.If(last_issue):
                m.d.sync += active.eq(0)
        m.d.comb += [ent_r.addr.eq(p), ent_r.en.eq(issue)]

        # --- C: decode, row, accumulator read, product ------------------------------------
        c_valid = Signal()
        c_act = Signal(signed(a.act_bits))
        c_first = Signal()
        m.d.sync += [c_valid.eq(issue), c_act.eq(w_act), c_first.eq(w_first)]
        vb = cfg.value_bits
        z = ent_r.data[vb:]
        if cfg.codebook:
            weight = self.codebook[ent_r.data[:vb]]
        else:
            weight = ent_r.data[:vb].as_signed()
        rb = max(1, clog2(cfg.rows_per_pe))
        row_prev = Signal(rb)
        row = Signal(rb)
        m.d.comb += row.eq(Mux(c_first, z, row_prev + 1 + z))
        with m.If(c_valid):
            m.d.sync += row_prev.eq(row)

        d_valid = Signal()
        d_row = Signal(rb)
        d_prod = Signal(signed(a.weight_bits + a.act_bits))
        m.d.sync += [d_valid.eq(c_valid), d_row.eq(row), d_prod.eq(weight * c_act)]

        # --- D: accumulate into bank ``bank``; read-out reads and clears bank ``~bank`` -------
        # Two 1R1W memories, so the next vector computes while this one is read out.
        clr = Signal()
        clr_addr = Signal(rb)
        m.d.sync += [clr.eq(self.rd_en), clr_addr.eq(self.rd_addr)]
        banks = []
        for b in range(2):
            mem = m.submodules[f"acc{b}"] = Memory(shape=signed(a.acc_bits), depth=cfg.rows_per_pe, init=[])
            w = mem.write_port()
            r = mem.read_port(transparent_for=(w,))
            banks.append(r)
            compute = self.bank == b
            m.d.comb += [
                r.addr.eq(Mux(compute, row, self.rd_addr)),
                r.en.eq(Mux(compute, c_valid, self.rd_en)),
                w.en.eq(Mux(compute, d_valid, clr)),
                w.addr.eq(Mux(compute, d_row, clr_addr)),
                w.data.eq(Mux(compute, r.data + d_prod, 0)),
            ]
        m.d.comb += [
            self.rd_data.eq(Mux(self.bank, banks[0].data, banks[1].data)),
            self.idle.eq(~self.act.valid & ~a_valid & ~active & ~c_valid & ~d_valid),
            self.busy.eq(issue),
        ]
        return m
