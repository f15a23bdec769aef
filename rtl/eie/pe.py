"""One processing element: its interleaved-CSC slice, a pointer stage, a walker and accumulators."""
from types import SimpleNamespace

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Assert
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

import numpy as np

from model.hw.config import EIEConfig, clog2
from model.errors import SparseFlowError
from rtl.common.memory import collision_free_memory

from .layouts import nz_layout


class EIEPE(wiring.Component):
    """PE ``k`` of the EIE array: walks the entries of each broadcast column, one per cycle.

    Ports:
      ``act``      In(stream {col, data}): the PE's activation queue head.
      ``ent_we``, ``ent_addr``, ``ent_data``: write entry word ``ent_data`` at ``ent_addr``.
      ``ptr_we``, ``ptr_addr``, ``ptr_data``: write column pointer ``ptr[ptr_addr]``.
      ``codebook`` In(array of 2**codebook_bits signed weights), codebook mode only.
      ``bank``     In(1): the accumulator bank the PE computes into; read-out uses the other one.
                   Change it only while the PE is idle and no read-out is in flight: no
                   ``rd_en`` in that cycle or the one before (whose clear is still pending),
                   else the read or the clear lands in the wrong bank. The array swaps only
                   with ``~out_busy``; the formal bypass proof (docs/formal.md) assumes it.
      ``rd_en``, ``rd_addr``, ``rd_data``: read-out of bank ``~bank``, at any time: ``rd_en``
                   reads accumulator ``rd_addr`` into ``rd_data`` at the edge (held while
                   ``rd_en`` is low) and clears that accumulator one cycle later.
      ``idle``     Out(1): no column queued or in flight (``cfg.wide``: the stages' part from a
                   register computed a cycle ahead, the same value).
      ``busy``     Out(1): an entry is issued this cycle (padding included).

    Pipeline (one column's entries back to back, no bubble between columns):

    * H (head): the queue head is popped into register H when H is free or moving on, with
      the two pointer addresses computed from its column ``j``.
    * P (pointers): H's addresses read two pointer banks, ``ptr[2i]`` and ``ptr[2i+1]``, at
      ``(j+1)>>1`` and ``j>>1``: the pair ``ptr[j], ptr[j+1]`` comes out of the two banks in
      one read. H moves to register A when A is free or moving on.
    * B (bounds): A moves to B when B is free or being consumed; B registers the start, the
      length - 1 and whether the column is empty, so that every handshake (queue ``ready``
      included) depends on flip-flops only, never on a memory output or an adder; "one entry"
      is length - 1 == 0. An empty column (``start == end``) is consumed from B without
      reaching the walker.
    * W (walker): issues entry address ``p`` per cycle from ``start`` to ``end - 1``,
      counting the entries left down; a registered flag says the current issue is the
      column's last (set from B, then "one left"); in that cycle it takes the next column
      from B.
    * C: the entry word arrives from its block RAM and is registered.
    * R: the local row is ``z`` (first entry) or ``row + 1 + z``; the accumulator is read; the
      product ``weight * a`` is registered (the multiplier's output register).
    * S: the old value of ``acc[row]`` comes out of the memory, or, when one of the two
      entries ahead updates the same row and has not written it yet, from their sums (in
      E, or in F once written too late for this read); it is registered.
    * D: ``old + product`` is registered in E, ``old`` being E's own sum when the entry just
      ahead updated the same row.
    * E: the sum is written to the accumulator. Back-to-back updates of one row need no
      stall; the adder's only loop is E -> select -> E, and the memory's output and write
      port see registers.

    A column popped at cycle ``t`` is taken by the walker at ``t + 3`` at the earliest and
    issues from ``t + 4``; the sum of an entry issued at ``t`` is written at the end of
    ``t + 5``, so the PE is idle at ``t + 6`` after its last issue (``model.hw.cyclemodel`` has
    the exact rules).
    Padding entries carry weight 0 (code 0 in codebook mode) on a real row: added harmlessly.
    """

    def __init__(self, cfg: EIEConfig, words=None, ptr=None, *, checks: bool = False):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        self._words = [] if words is None else [int(w) for w in np.asarray(words)]
        self._ptr = [] if ptr is None else [int(p) for p in np.asarray(ptr)]
        self.checks = checks  # assert the mirrored flags (see EIEArray)
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

    # ``elaborate`` runs the pipeline's stages in order (see the class docstring); each takes
    # the signals it needs from the namespace ``s`` and leaves there the ones later stages use.
    def elaborate(self, platform):
        m = Module()
        cfg, a = self.cfg, self.cfg.arith
        pb = cfg.ptr_bits
        s = SimpleNamespace(cfg=cfg, a=a, pb=pb)
        for stage in (self._memories, self._fetch, self._entry_read, self._decode, self._accumulate,
                      self._checks):
            stage(m, s)
        return m

    def _memories(self, m, s):
        """The entry and pointer memories and their write ports."""
        cfg, pb = s.cfg, s.pb
        # --- memories -------------------------------------------------------------------
        # Entries and pointers are written only between vectors, while the PE is idle: no
        # read ever meets a write.
        ent = m.submodules.entries = collision_free_memory(shape=unsigned(cfg.entry_bits), depth=cfg.max_entries,
                                                           init=self._words)
        even = m.submodules.ptr_even = collision_free_memory(shape=unsigned(pb), depth=cfg.max_cols // 2 + 1,
                                                             init=self._ptr[0::2])
        odd = m.submodules.ptr_odd = collision_free_memory(shape=unsigned(pb), depth=(cfg.max_cols + 1) // 2,
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

        # Registers that carry data have no reset (``reset_less``): a valid flag beside each says
        # when it matters. On iCE40 a synchronous reset acts only with the enable, so a reset
        # register's enable would be ORed with the reset: one more LUT level on each handshake.
        s.ent_r, s.even_r, s.odd_r = ent_r, even_r, odd_r

    def _fetch(self, m, s):
        """Stages H, P, B and W: the queue head, its pointer pair, the column's bounds and the
        walker."""
        a, even_r, odd_r, pb, ent_r = s.a, s.even_r, s.odd_r, s.pb, s.ent_r
        # --- H: the queue head, registered (the pointer addresses come from flip-flops, not
        # from the queue's storage multiplexer) --------------------------------------------
        h_valid = Signal()
        h_act = Signal(signed(a.act_bits), reset_less=True)
        h_odd = Signal(reset_less=True)
        h_even_addr = Signal.like(even_r.addr, reset_less=True)
        h_odd_addr = Signal.like(odd_r.addr, reset_less=True)
        # --- P: pointer fetch into register A ---------------------------------------------
        a_valid = Signal()
        a_odd = Signal(reset_less=True)
        a_act = Signal(signed(a.act_bits), reset_less=True)
        a_start = Signal(pb)
        a_end = Signal(pb)
        m.d.comb += [
            a_start.eq(Mux(a_odd, odd_r.data, even_r.data)),
            a_end.eq(Mux(a_odd, even_r.data, odd_r.data)),
        ]
        # --- B: the column's bounds and length flags, registered (no handshake waits on the
        # pointer memories' outputs or on an adder).
        b_valid = Signal()
        b_act = Signal(signed(a.act_bits), reset_less=True)
        b_start = Signal(pb, reset_less=True)
        b_lm1 = Signal(pb, reset_less=True)  # length - 1 (= end + ~start: one adder)
        b_empty = Signal(reset_less=True)
        b_single = Signal()
        # --- W: walker registers
        active = Signal()
        p = Signal(pb, reset_less=True)
        w_left = Signal(pb, reset_less=True)  # entries of the column left after this cycle's issue
        w_last = Signal(reset_less=True)  # the entry issued this cycle is the column's last
        w_act = Signal(signed(a.act_bits), reset_less=True)
        w_first = Signal(reset_less=True)

        issue = active
        # can_take == ~active | w_last, kept as its own flip-flop: the queue's ready starts here.
        can_take = Signal(init=1)
        take = b_valid & ~b_empty & can_take
        # "free or moving on", per register, written flat: each is an OR of flip-flops, so the
        # queue's ready is two LUT levels deep rather than a chain through every stage.
        b_free = ~b_valid | b_empty | can_take
        a_free = ~a_valid | b_free
        h_free = ~h_valid | a_free
        h_move = h_valid & a_free

        col = self.act.payload.col
        m.d.comb += [
            self.act.ready.eq(h_free),
            even_r.addr.eq(h_even_addr), odd_r.addr.eq(h_odd_addr),
            even_r.en.eq(h_move), odd_r.en.eq(h_move),  # the pair stays put while A waits
        ]
        # Each register's data loads whenever it is free or moving on, valid or not; only its
        # valid flag waits for the handshake (short enables: the data cannot be wrong while
        # the flag is low). The pointer pair, though, is read only on h_move: A keeps it.
        with m.If(h_free):
            m.d.sync += [h_odd.eq(col[0]), h_act.eq(self.act.payload.data),
                         h_even_addr.eq((col + 1) >> 1), h_odd_addr.eq(col >> 1)]
        # The valid flags are written every cycle from flat expressions (a register that is
        # free takes its predecessor's flag, one that is not keeps its own): no enable for the
        # synthesis tool to build out of the handshake chain.
        fetch_next = [self.act.valid | ~h_free, h_valid | ~a_free, a_valid | ~b_free, take | (active & ~w_last)]
        m.d.sync += [flag.eq(nxt) for flag, nxt in zip((h_valid, a_valid, b_valid, active), fetch_next)]
        with m.If(a_free):
            m.d.sync += [a_odd.eq(h_odd), a_act.eq(h_act)]

        # "Empty" compares the two banks' outputs directly (no select, no subtraction); "one
        # entry" is left to the walker as a register compared with zero.
        with m.If(b_free):
            m.d.sync += [b_act.eq(a_act), b_start.eq(a_start), b_lm1.eq(a_end + ~a_start),
                         b_empty.eq(even_r.data == odd_r.data)]
        m.d.comb += b_single.eq(b_lm1 == 0)

        # The walker counts the entries left down: "last" flags are compares with constants.
        # w_last only matters while active, so it is written every cycle.
        m.d.sync += [can_take.eq(Mux(take, b_single, ~active | w_last | (w_left == 1))),
                     w_last.eq(Mux(take, b_single, w_left == 1))]
        with m.If(take):
            m.d.sync += [p.eq(b_start), w_left.eq(b_lm1), w_act.eq(b_act), w_first.eq(1)]
        with m.Elif(issue):
            m.d.sync += [p.eq(p + 1), w_left.eq(w_left - 1), w_first.eq(0)]
        m.d.comb += [ent_r.addr.eq(p), ent_r.en.eq(issue)]
        s.h_valid, s.a_valid, s.b_valid, s.active, s.w_left = h_valid, a_valid, b_valid, active, w_left
        s.w_last, s.w_act, s.w_first, s.issue, s.can_take = w_last, w_act, w_first, issue, can_take
        s.fetch_next = fetch_next  # next cycle's h_valid, a_valid, b_valid, active

    def _entry_read(self, m, s):
        """Stage C: the entry word, registered."""
        a, issue, w_act, w_first, cfg, ent_r = s.a, s.issue, s.w_act, s.w_first, s.cfg, s.ent_r
        # --- C: the entry word arrives and is registered (block RAM output -> flip-flops) -----
        c_valid = Signal()
        c_act = Signal(signed(a.act_bits), reset_less=True)
        c_first = Signal(reset_less=True)
        m.d.sync += [c_valid.eq(issue), c_act.eq(w_act), c_first.eq(w_first)]
        r_valid = Signal()
        r_word = Signal(cfg.entry_bits, reset_less=True)
        r_act = Signal(signed(a.act_bits), reset_less=True)
        r_first = Signal(reset_less=True)
        m.d.sync += [r_valid.eq(c_valid), r_word.eq(ent_r.data), r_act.eq(c_act), r_first.eq(c_first)]
        s.c_valid, s.r_valid, s.r_word, s.r_act, s.r_first = c_valid, r_valid, r_word, r_act, r_first

    def _decode(self, m, s):
        """Stage R: the row, the weight and the product; forwarding decided."""
        cfg, r_word, r_first, r_valid, a, r_act = s.cfg, s.r_word, s.r_first, s.r_valid, s.a, s.r_act
        # --- R: decode, row, accumulator read, product ------------------------------------
        vb = cfg.value_bits
        z = r_word[vb:]
        if cfg.codebook:
            weight = self.codebook[r_word[:vb]]
        else:
            weight = r_word[:vb].as_signed()
        rb = max(1, clog2(cfg.rows_per_pe))
        row_next = Signal(rb, reset_less=True)  # previous row + 1
        row = Signal(rb)
        m.d.comb += row.eq(Mux(r_first, z, row_next + z))
        with m.If(r_valid):
            m.d.sync += row_next.eq(row + 1)

        # The sums of the three entries ahead are not in the memory yet when this entry reads
        # it (each is written by E, the cycle after its add in D; the third one ahead in the
        # very cycle of this read): forward them. Which one applies is decided here, from the
        # rows, and registered, so that no select depends on a compare.
        s_valid = Signal()
        s_row = Signal(rb, reset_less=True)
        # The product and sum registers keep their reset on purpose: without it Yosys packs them
        # and the accumulate adder into the iCE40 SB_MAC16 (pipeline and output registers, post-
        # adder), whose inside nextpnr does not time; with it only the multiplier goes there.
        s_prod = Signal(signed(a.weight_bits + a.act_bits))
        s_fwd_d = Signal(reset_less=True)  # the entry one ahead: its sum is in E when this one adds (in D)
        s_fwd_e = Signal(reset_less=True)  # two ahead: its sum is in E when this one is in S
        s_fwd_f = Signal(reset_less=True)  # three ahead: its sum is written as this one reads; held in F
        s_old = Signal(signed(a.acc_bits), reset_less=True)
        d_valid = Signal()
        d_row = Signal(rb, reset_less=True)
        d_prod = Signal(signed(a.weight_bits + a.act_bits))
        d_fwd = Signal(reset_less=True)
        e_valid = Signal()
        e_row = Signal(rb, reset_less=True)
        e_sum = Signal(signed(a.acc_bits))
        f_sum = Signal(signed(a.acc_bits))
        m.d.sync += [
            s_valid.eq(r_valid), s_row.eq(row), s_prod.eq(weight * r_act),
            s_fwd_d.eq(s_valid & (s_row == row)),
            s_fwd_e.eq(d_valid & (d_row == row)),
            s_fwd_f.eq(e_valid & (e_row == row)),
        ]
        s.rb, s.row, s.s_valid, s.s_row, s.s_prod, s.s_fwd_d = rb, row, s_valid, s_row, s_prod, s_fwd_d
        s.s_fwd_e = s_fwd_e
        s.s_fwd_f, s.s_old, s.d_valid, s.d_row, s.d_prod = s_fwd_f, s_old, d_valid, d_row, d_prod
        s.d_fwd = d_fwd
        s.e_valid, s.e_row, s.e_sum, s.f_sum = e_valid, e_row, e_sum, f_sum

    def _accumulate(self, m, s):
        """Stages S, D and E: the old value (memory or forwarded), the add, the write; the
        read-out port and ``idle``."""
        rb, a, cfg, row, r_valid, e_valid, e_row = s.rb, s.a, s.cfg, s.row, s.r_valid, s.e_valid, s.e_row
        e_sum = s.e_sum
        s_old, s_fwd_e, s_fwd_f, f_sum, d_valid = s.s_old, s.s_fwd_e, s.s_fwd_f, s.f_sum, s.d_valid
        s_valid = s.s_valid
        d_row, s_row, d_prod, s_prod, d_fwd = s.d_row, s.s_row, s.d_prod, s.s_prod, s.d_fwd
        s_fwd_d = s.s_fwd_d
        h_valid, a_valid, b_valid, active, c_valid = s.h_valid, s.a_valid, s.b_valid, s.active, s.c_valid
        issue = s.issue
        # --- S/D/E: the accumulator's old value arrives (S: memory or forwarded, registered),
        # D adds the product into register E, E writes the sum to bank ``bank``. The only loop
        # is E -> select -> adder -> E; the memory's output and write port see registers.
        # Read-out reads and clears bank ``~bank``: two 1R1W memories, so the next vector
        # computes while this one is read out.
        clr = Signal()
        clr_addr = Signal(rb, reset_less=True)
        m.d.sync += [clr.eq(self.rd_en), clr_addr.eq(self.rd_addr)]
        banks = []
        for b in range(2):
            # A compute read that meets E's write to its row is overridden by forwarding (F's
            # sum); read-out reads a new row every cycle and clears the one read before.
            mem = m.submodules[f"acc{b}"] = collision_free_memory(shape=signed(a.acc_bits), depth=cfg.rows_per_pe,
                                                                  init=[])
            w = mem.write_port()
            r = mem.read_port()
            banks.append(r)
            compute = self.bank == b
            m.d.comb += [
                r.addr.eq(Mux(compute, row, self.rd_addr)),
                r.en.eq(Mux(compute, r_valid, self.rd_en)),
                w.en.eq(Mux(compute, e_valid, clr)),
                w.addr.eq(Mux(compute, e_row, clr_addr)),
                w.data.eq(Mux(compute, e_sum, 0)),
            ]
        mem_old = Mux(self.bank, banks[1].data, banks[0].data)
        m.d.sync += [
            s_old.eq(Mux(s_fwd_e, e_sum, Mux(s_fwd_f, f_sum, mem_old))),
            d_valid.eq(s_valid), d_row.eq(s_row), d_prod.eq(s_prod), d_fwd.eq(s_fwd_d),
            e_valid.eq(d_valid), e_row.eq(d_row), e_sum.eq(Mux(d_fwd, e_sum, s_old) + d_prod),
            f_sum.eq(e_sum),
        ]
        idle_now = ~h_valid & ~a_valid & ~b_valid & ~active & ~c_valid & ~r_valid & ~s_valid & ~d_valid & ~e_valid
        if cfg.wide:
            # The array ANDs every PE's idle: here the stages' part is a register, computed from
            # their next-cycle flags (those written above), so only the queue's flag is live.
            # (c_valid follows issue, r_valid c_valid, ... e_valid d_valid)
            idle_stages = Signal(init=1)
            m.d.sync += idle_stages.eq(~Cat(*s.fetch_next, issue, c_valid, r_valid, s_valid, d_valid).any())
            if self.checks:  # at the clock edge, like the broadcast's
                m.d.sync += Assert(idle_stages == idle_now, "the registered idle mirrors the stages")
        else:
            idle_stages = idle_now
        m.d.comb += [
            self.rd_data.eq(Mux(self.bank, banks[0].data, banks[1].data)),
            self.idle.eq(~self.act.valid & idle_stages),
            self.busy.eq(issue),
        ]

    def _checks(self, m, s):
        """With ``checks``: assertions that the walker's flags mirror its count."""
        can_take, active, w_last, w_left = s.can_take, s.active, s.w_last, s.w_left
        if self.checks:
            m.d.comb += [
                Assert(can_take == (~active | w_last), "can_take mirrors the walker"),
                Assert(~active | (w_last == (w_left == 0)), "w_last mirrors the count"),
            ]

