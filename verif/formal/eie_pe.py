"""Formal proofs of the EIE PE (:class:`rtl.eie.pe.EIEPE`) and the array's mirrored flags.

:class:`PESpec` checks, by bounded model checking from reset at a small configuration, that
every accumulator the read-out returns is the sum the PE's columns put there: the harness
keeps its own copy of the entry and pointer memories (mirroring the writes on the ports) and
a plain accumulator array, to which it adds a column's whole contribution at the edge the PE
pops that column (``acc[row] += weight * a`` for each entry, rows decoded from the relative
indices as the encoder writes them). The PE does the same work over its eight-stage
pipeline, where an entry may read its row while one, two or three entries ahead (the same
column or the one before, back to back) have not written theirs yet: these are the
read-after-write bypasses, and a wrong one shows as a wrong read-out. The PE is built with
``checks=True``, so its mirrored timing flags (``can_take == ~active | w_last``, and
``w_last`` == "no entry left") are asserted in the same run.

The environment follows the PE's contract: the entry and pointer memories and ``bank`` change
only while the PE is ``idle``; the read-out reads a new row each cycle (never the row it read
the cycle before, whose clear is still pending), and ``bank`` does not change while a
read-out is in flight (a read, or its clear, in that cycle); columns are in range and their
pointers ascending within ``max_entries``; reset is not asserted after the start.

:class:`FreeInputs` proves by k-induction (every input sequence, any length) the assertions a
component elaborates itself: the PE's flags (:func:`flag_proof`) and the array's (``run``,
``idle_ok``, ``rows == 0/1``, ``one_left``, and each PE's; :func:`array_flag_proof`) on a
whole :class:`rtl.eie.array.EIEArray` with free inputs: the assertions the Amaranth simulator
checks in the unit tests (``checks=True``), here for every input.

``mutant``: for PESpec the name of a bypass register (``s_fwd_d``, ``s_fwd_e``, ``s_fwd_f``:
the entry one, two, three ahead has the same row) forced to 0 in the netlist, i.e. a PE
without that bypass; for the flag proofs, a flag register cut loose (any value).
"""
from __future__ import annotations

from amaranth import Module, Mux, ResetSignal, Signal, signed
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from model.hw.config import Arith, EIEConfig, clog2
from rtl.eie.array import EIEArray
from rtl.eie.pe import EIEPE

from .sby import Proof, cut

BYPASSES = ("s_fwd_d", "s_fwd_e", "s_fwd_f")


def pe_config() -> EIEConfig:
    """The proof's PE: 4 rows, 2 columns, 4 entries, 2-bit weights and activations, 2-bit
    relative indices (so a column's rows can wrap onto one another)."""
    return EIEConfig(n_pes=1, arith=Arith(weight_bits=2, act_bits=2, max_cols=2), index_bits=2, fifo_depth=2,
                     max_rows=4, max_entries=4)


def pe_image(cfg: EIEConfig) -> tuple[list[int], list[int]]:
    """The memories' contents at reset (entry words, pointers): column 0 holds rows 0, 2 and
    column 1 rows 2, 0, every weight 1. Popping 0 then 1 updates rows 0, 2, 2, 0 (the same row
    one and three entries apart), 0 then 0 rows 0, 2, 0, 2 (two apart): every bypass is
    reached without a memory write, which keeps the bounded proof short. The writes on the
    ports still change any of it."""
    vb = cfg.value_bits
    entries = [(0, 1), (1, 1), (2, 1), (1, 1)]  # (relative index z, weight)
    return [(z << vb) | w for z, w in entries], [0, 2, 4]


class PESpec(wiring.Component):
    """EIEPE(cfg, checks=True) against a pop-time reference of its accumulators, both
    starting from :func:`pe_image`."""

    def __init__(self, cfg: EIEConfig):
        self.cfg = cfg
        self.words, self.ptr = pe_image(cfg)
        super().__init__({
            "act_valid": In(1), "act_col": In(clog2(cfg.max_cols + 1)), "act_data": In(signed(cfg.arith.act_bits)),
            "ent_we": In(1), "ent_addr": In(clog2(cfg.max_entries)), "ent_data": In(cfg.entry_bits),
            "ptr_we": In(1), "ptr_addr": In(clog2(cfg.max_cols + 1)), "ptr_data": In(cfg.ptr_bits),
            "flip": In(1), "rd_en": In(1), "rd_addr": In(clog2(cfg.rows_per_pe)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, a = self.cfg, self.cfg.arith
        rows = cfg.rows_per_pe
        pe = m.submodules.pe = EIEPE(cfg, self.words, self.ptr, checks=True)
        bank = Signal(name="bank")
        m.d.comb += [
            pe.act.valid.eq(self.act_valid), pe.act.payload.col.eq(self.act_col),
            pe.act.payload.data.eq(self.act_data),
            pe.ent_we.eq(self.ent_we), pe.ent_addr.eq(self.ent_addr), pe.ent_data.eq(self.ent_data),
            pe.ptr_we.eq(self.ptr_we), pe.ptr_addr.eq(self.ptr_addr), pe.ptr_data.eq(self.ptr_data),
            pe.bank.eq(bank), pe.rd_en.eq(self.rd_en), pe.rd_addr.eq(self.rd_addr),
        ]
        with m.If(self.flip):
            m.d.sync += bank.eq(~bank)

        # Shadow copies of the PE's memories (reset_less, as memories are).
        ent = [Signal(cfg.entry_bits, name=f"ref_ent{i}", reset_less=True, init=self.words[i])
               for i in range(cfg.max_entries)]
        ptr = [Signal(cfg.ptr_bits, name=f"ref_ptr{j}", reset_less=True, init=self.ptr[j])
               for j in range(cfg.max_cols + 1)]
        for i in range(cfg.max_entries):
            with m.If(self.ent_we & (self.ent_addr == i)):
                m.d.sync += ent[i].eq(self.ent_data)
        for j in range(cfg.max_cols + 1):
            with m.If(self.ptr_we & (self.ptr_addr == j)):
                m.d.sync += ptr[j].eq(self.ptr_data)

        def pick(regs, index, name):
            out = Signal.like(regs[0], name=name)
            for i, r in enumerate(regs):
                with m.If(index == i):
                    m.d.comb += out.eq(r)
            return out

        # The column popped this cycle: its bounds and entries, decoded as the encoder writes them.
        start = pick(ptr, self.act_col, "ref_start")
        end = pick(ptr, self.act_col + 1, "ref_end")
        acc = [[Signal(signed(a.acc_bits), name=f"ref_acc{b}_{r}", reset_less=True) for r in range(rows)]
               for b in range(2)]
        rb = max(1, clog2(rows))
        vb = cfg.value_bits
        contrib = [0] * rows  # sum of this column's products per row
        row = None
        for i in range(cfg.max_entries):
            word = pick(ent, start + i, f"ref_word{i}")
            z = word[vb:]
            here = Signal(rb, name=f"ref_row{i}")
            m.d.comb += here.eq(z if row is None else row + 1 + z)
            row = here
            prod = Signal(signed(a.weight_bits + a.act_bits), name=f"ref_prod{i}")
            m.d.comb += prod.eq(Mux(start + i < end, word[:vb].as_signed() * self.act_data, 0))
            for r in range(rows):
                contrib[r] = contrib[r] + Mux(here == r, prod, 0)
        pop = pe.act.valid & pe.act.ready
        for b in range(2):
            for r in range(rows):
                with m.If(pop & (bank == b)):
                    m.d.sync += acc[b][r].eq(acc[b][r] + contrib[r])

        # Read-out: the value read at an edge is on rd_data in the next cycle; the row is then 0.
        rd_prev = Signal(name="rd_prev")
        rd_prev_addr = Signal.like(self.rd_addr, name="rd_prev_addr")
        expect = Signal(signed(a.acc_bits), name="rd_expect")
        m.d.sync += [rd_prev.eq(self.rd_en), rd_prev_addr.eq(self.rd_addr)]
        for b in range(2):
            for r in range(rows):
                with m.If(self.rd_en & (bank != b) & (self.rd_addr == r)):
                    m.d.sync += [expect.eq(acc[b][r]), acc[b][r].eq(0)]
                    # (a pop adds to bank ``bank`` only, never to the bank being read)

        if platform == "formal":
            m.d.comb += Assume(~ResetSignal())
            with m.If(self.ent_we | self.ptr_we | self.flip):
                m.d.comb += Assume(pe.idle)
            with m.If(self.flip):
                m.d.comb += Assume(~self.rd_en & ~rd_prev)
            with m.If(self.rd_en & rd_prev):
                m.d.comb += Assume(self.rd_addr != rd_prev_addr)
            with m.If(self.ptr_we):
                m.d.comb += Assume(self.ptr_addr <= cfg.max_cols)
            with m.If(self.act_valid):
                m.d.comb += Assume((self.act_col < cfg.max_cols) & (start <= end) & (end <= cfg.max_entries))
            with m.If(rd_prev):
                m.d.comb += Assert(pe.rd_data == expect, "read-out returns the reference sum")
        return m


class FreeInputs(wiring.Component):
    """``component`` (submodule ``dut``) with every input port free: the proof of the
    assertions it elaborates itself (``EIEPE``/``EIEArray`` with ``checks=True``)."""

    def __init__(self, component: wiring.Component):
        self._dut = component
        super().__init__({name: In(member.shape) for name, member in _flat_inputs(component)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self._dut
        for name, _ in _flat_inputs(self._dut):
            m.d.comb += _lookup(self._dut, name).eq(getattr(self, name))
        return m


def _flat_inputs(component):
    """(name, member) of every input port of ``component``, paths joined with ``__``."""
    for path, member, _ in component.signature.flatten(component):
        if member.flow == In:
            yield "__".join(str(p) for p in path), member


def _lookup(component, name: str):
    obj = component
    for part in name.split("__"):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def array_config() -> EIEConfig:
    """The array of the flag proof: 2 PEs, 4 rows, 2 columns, 2-bit widths."""
    return EIEConfig(n_pes=2, arith=Arith(weight_bits=2, act_bits=2, max_cols=2), index_bits=2, fifo_depth=2,
                     max_rows=4, max_entries=4)


def _zero_net(top: str, name: str) -> tuple[str, ...]:
    """Yosys commands tying the (flattened) PE register ``name`` to 0: the bypass removed."""
    return (f"select -assert-count 1 w:pe.{name}", f"cd {top}", f"connect -set \\pe.{name}  1'0", "cd")


def pe_proof(mutant: str | None = None, depth: int = 20) -> Proof:
    if mutant is not None and mutant not in BYPASSES:
        raise ValueError(f"mutant must be one of {BYPASSES}, not {mutant!r}")
    return Proof("eie_pe", PESpec(pe_config()), "bmc", depth,
                 ("memory_map",) + (_zero_net("eie_pe", mutant) if mutant else ()))


def flag_proof(mutant: bool = False, depth: int = 2) -> Proof:
    return Proof("eie_pe_flags", FreeInputs(EIEPE(pe_config(), checks=True)), "prove", depth,
                 ("memory_map",) + ((cut("w:dut.can_take"),) if mutant else ()))


def array_flag_proof(mutant: bool = False, depth: int = 2) -> Proof:
    return Proof("eie_array_flags", FreeInputs(EIEArray(array_config(), checks=True)), "prove", depth,
                 ("memory_map",) + ((cut("w:dut.rows_zero"),) if mutant else ()))
