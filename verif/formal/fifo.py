"""Formal proofs that :class:`rtl.common.pair.PairBuffer` and the broadcast queues of
:class:`rtl.eie.broadcast.Broadcast` behave as a reference FIFO.

The reference (:func:`ref_fifo`) is the plainest FIFO there is: ``capacity`` registers kept in
order, the head in entry 0, and a level; a push appends, a pop shifts every entry down. As in
Amaranth's own ``FIFOModelEquivalenceSpec`` (``tests/test_lib_fifo.py``), the design under test
and the reference see the same free inputs, and with ``platform == "formal"`` the harness
asserts every cycle that what the design shows equals what the reference holds.

* :class:`PairBufferSpec`: ``w_rdy``, ``r_rdy``, ``r_data`` equal those of a 2-entry
  ``SyncFIFO``-timed reference, and ``head_load``/``head_next`` announce exactly the next head;
  when full, ``head_next`` shows the second entry, so the design's whole content is compared;
  with one more assertion on its two pointers (they differ exactly at level 1) the
  assertions are k-inductive (``mode prove``: every input sequence, any length).
* :class:`BroadcastSpec`: per PE ``k``, the words that leave queue ``k`` (``q[k]``) are, in
  order, the accepted words whose column-occupancy bit for ``k`` is set; a queue never shows
  a word the reference does not hold, and once the broadcast is empty (``~pending``) with
  queue ``k`` empty, no word for ``k`` is outstanding (nothing was dropped). The occupancy
  memory is written through the ports (the reference mirrors the writes), under the array's
  rule that a write happens only while no word is in or entering the broadcast. The design
  holds state that no port shows (the word in register N, the staged pair), so this is a
  bounded proof (``mode bmc``) from reset.

``mutant``: a deliberately broken design for the non-vacuity check (see each class).
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from model.hw.config import Arith, EIEConfig, clog2
from rtl.common.pair import PairBuffer
from rtl.eie.broadcast import Broadcast
from rtl.eie.layouts import nz_layout

from .sby import Proof


def ref_fifo(m: Module, name: str, width: int, capacity: int, push, data, pop):
    """A reference FIFO of ``capacity`` entries in ``m``: returns (entries, level), entry 0
    the head. ``pop`` on an empty or ``push`` on a full reference is the caller's error (it
    asserts ``level`` within bounds where that matters)."""
    entries = [Signal(width, name=f"{name}_e{i}") for i in range(capacity)]
    level = Signal(range(capacity + 1), name=f"{name}_level")
    m.d.sync += level.eq(level + push - pop)
    for i in range(capacity):
        # After a pop entry i takes entry i+1; a push lands at the first free entry.
        keep = entries[i + 1] if i + 1 < capacity else entries[i]
        shifted = Mux(pop, keep, entries[i])
        target = level - pop
        m.d.sync += entries[i].eq(Mux(push & (target == i), data, shifted))
    return entries, level


class _BrokenPairBuffer(PairBuffer):
    """A PairBuffer that still says it has room after the write that fills it."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.w_en & self.w_rdy & self.r_rdy & ~self.r_en):
            m.d.sync += self.w_rdy.eq(1)
        return m


class PairBufferSpec(wiring.Component):
    """PairBuffer(width) against a two-entry reference FIFO (``SyncFIFO(width, 2)`` timing)."""

    def __init__(self, width: int = 4, mutant: bool = False):
        self.width = width
        self.mutant = mutant
        super().__init__({"w_data": In(width), "w_en": In(1), "r_en": In(1)})

    def elaborate(self, platform):
        m = Module()
        dut = m.submodules.dut = (_BrokenPairBuffer if self.mutant else PairBuffer)(self.width)
        m.d.comb += [dut.w_data.eq(self.w_data), dut.w_en.eq(self.w_en), dut.r_en.eq(self.r_en)]
        level_ok = Signal(range(3))  # the reference's level, for the push/pop decisions
        push = self.w_en & (level_ok != 2)
        pop = self.r_en & (level_ok != 0)
        entries, level = ref_fifo(m, "ref", self.width, 2, push, self.w_data, pop)
        m.d.comb += level_ok.eq(level)
        if platform == "formal":
            # The head changes at this edge: a pop with a second entry, or a push into an
            # empty reference (or one emptied by this pop).
            changes = (pop & (level == 2)) | (push & (level - pop == 0))
            new_head = Mux(level == 2, entries[1], self.w_data)
            m.d.comb += [
                Assert(dut.w_rdy == (level != 2), "w_rdy"),
                Assert(dut.r_rdy == (level != 0), "r_rdy"),
                Assert(dut.head_load == changes, "head_load"),
            ]
            with m.If(level != 0):
                m.d.comb += Assert(dut.r_data == entries[0], "head data")
            with m.If(changes):
                m.d.comb += Assert(dut.head_next == new_head, "head_next")
            with m.If(level == 2):
                m.d.comb += Assert(dut.head_next == entries[1], "second entry")
            # The one invariant no port shows: the pointers differ exactly at level 1.
            m.d.comb += [Assert(level <= 2, "reference level"),
                         Assert((dut._w_ptr != dut._r_ptr) == (level == 1), "pointers")]
        return m


class _BrokenBroadcast(Broadcast):
    """A Broadcast that accepts a word whenever offered, so a word in N can be overwritten."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(1)
        return m


def broadcast_config(n_pes: int = 2, fifo_depth: int = 2) -> EIEConfig:
    """The small configuration of the broadcast proof: 4 columns, 3-bit activations."""
    return EIEConfig(n_pes=n_pes, arith=Arith(weight_bits=2, act_bits=3, max_cols=4), fifo_depth=fifo_depth,
                     max_rows=4, max_entries=4)


class BroadcastSpec(wiring.Component):
    """Broadcast(cfg) against one reference FIFO per PE (see the module docstring)."""

    def __init__(self, cfg: EIEConfig, mutant: bool = False):
        self.cfg = cfg
        self.mutant = mutant
        layout = nz_layout(cfg)
        n = cfg.n_pes
        super().__init__({
            "i_valid": In(1), "i_word": In(layout.size), "q_ready": In(n),
            "mask_we": In(1), "mask_pe": In(clog2(n)), "mask_col": In(clog2(cfg.max_cols)), "mask_bit": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, n = self.cfg, self.cfg.n_pes
        layout = nz_layout(cfg)
        dut = m.submodules.dut = (_BrokenBroadcast if self.mutant else Broadcast)(cfg)
        m.d.comb += [
            dut.i.valid.eq(self.i_valid), dut.i.payload.eq(self.i_word),
            dut.mask_we.eq(self.mask_we), dut.mask_pe.eq(self.mask_pe), dut.mask_col.eq(self.mask_col),
            dut.mask_bit.eq(self.mask_bit),
        ]
        m.d.comb += [dut.q[k].ready.eq(self.q_ready[k]) for k in range(n)]

        # The occupancy bits, mirrored from the writes.
        # reset_less: like the memory it mirrors (the free reset input may fire at any cycle).
        ref_mask = [Signal(n, name=f"ref_mask{j}", reset_less=True) for j in range(cfg.max_cols)]
        for j in range(cfg.max_cols):
            for k in range(n):
                with m.If(self.mask_we & (self.mask_col == j) & (self.mask_pe == k)):
                    m.d.sync += ref_mask[j][k].eq(self.mask_bit)
        col = self.i_word[:clog2(cfg.max_cols + 1)]
        col_mask = Signal(n)
        for j in range(cfg.max_cols):
            with m.If(col == j):
                m.d.comb += col_mask.eq(ref_mask[j])
        take = dut.i.valid & dut.i.ready
        # Words a PE can be owed: one in N, two staged, fifo_depth in its queue; one more
        # entry lets an overrun show as a level past that bound.
        capacity = 3 + cfg.fifo_depth + 1
        for k in range(n):
            pop = dut.q[k].valid & dut.q[k].ready
            entries, level = ref_fifo(m, f"ref{k}", layout.size, capacity, take & col_mask[k], self.i_word, pop)
            if platform == "formal":
                m.d.comb += Assert(level < capacity, "no more words owed than the broadcast can hold")
                with m.If(dut.q[k].valid):
                    m.d.comb += [Assert(level != 0, "no spurious word"),
                                 Assert(dut.q[k].payload.as_value() == entries[0], "words in order")]
                with m.If(~dut.pending & ~dut.q[k].valid):
                    m.d.comb += Assert(level == 0, "no word dropped")
        if platform == "formal":
            # The array's rules: columns in range; the mask is written only between vectors.
            with m.If(self.i_valid):
                m.d.comb += Assume(col < cfg.max_cols)
            with m.If(self.mask_we):
                m.d.comb += Assume(~self.i_valid & ~dut.pending)
        return m


def pair_buffer_proof(mutant: bool = False, width: int = 4, depth: int = 4) -> Proof:
    return Proof("pair_buffer", PairBufferSpec(width, mutant), "prove", depth)


def broadcast_proof(mutant: bool = False, depth: int = 14, cfg: EIEConfig | None = None) -> Proof:
    return Proof("broadcast", BroadcastSpec(cfg or broadcast_config(), mutant), "bmc", depth, ("memory_map",))
