"""Formal proof (SymbiYosys, k-induction, yices) that the 2:4 MAC computes the dense dot product.

:class:`MACHarness` wraps :class:`rtl.sparse24.mac.Sparse24MAC`; its inputs are free (top-level
ports of the proof). Beside the MAC it keeps an independent reference: each group's dot
product with the *decompressed* weights (``dense[i] = sum of the kept values whose position is
i``, which is ``model.hw.formats.nm.decode`` for valid metadata) pushed through the same three-stage
timing. With ``platform == "formal"`` it asserts, every cycle, that the MAC's stage flags equal
the reference's, that its selected activations times their weights sum to the reference group
product, that its product register sum equals the (delayed) reference group product and that
its accumulator equals the reference sum, and that a ``result_valid`` result is the reference
dot product. The assertions together are 1-inductive, so ``mode prove`` closes for every input
sequence of any length, not only a bound; but only at small widths (the solver must equate two
arrangements of multipliers).

At full width the same theorem is proven as four lemmas, each its own harness (:data:`LEMMAS`:
select, product, accumulate, decompress; ``docs/formal.md`` shows how they compose), each with
a broken MAC that must fail it (``mutant=True``).

``python -m verif.formal.sparse24_mac [workdir]`` runs the four lemmas at full width and prints
each status and time.
"""
from __future__ import annotations

import sys
from pathlib import Path

from amaranth import C, Assert, Assume, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from model.hw.config import Arith
from rtl.sparse24.mac import GROUP, KEPT, POS_BITS, Sparse24MAC

from .sby import Proof, cut, run, write

TOP = "sparse24_mac_formal"


class MACHarness(wiring.Component):
    """Free inputs (the MAC's own), the MAC, the reference and the assertions.

    ``valid_meta``: assume ``pos[0] < pos[1]`` on every valid group (the encoder's guarantee);
    with ``False`` the proof covers any metadata under the documented sum semantics.
    ``mutant``: a deliberately wrong reference (each weight at the other's position), which the
    proof must refute; it shows the assertions are not vacuous.
    """

    def __init__(self, arith: Arith, valid_meta: bool = True, mutant: bool = False, pos=None):
        self.arith = arith
        self.valid_meta = valid_meta
        self.mutant = mutant
        self.fixed_pos = pos
        sig = {
            "valid": In(1), "first": In(1), "last": In(1),
            "act": In(data.ArrayLayout(signed(arith.act_bits), GROUP)),
            "weight": In(data.ArrayLayout(signed(arith.weight_bits), KEPT)),
        }
        if pos is None:
            sig["pos"] = In(data.ArrayLayout(unsigned(POS_BITS), KEPT))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        a = self.arith
        m.submodules.mac = mac = Sparse24MAC(a)
        for name in ("valid", "first", "last", "act", "weight"):
            m.d.comb += getattr(mac, name).eq(getattr(self, name))
        pos = [C(p, POS_BITS) for p in self.fixed_pos] if self.fixed_pos else [self.pos[k] for k in range(KEPT)]
        m.d.comb += [mac.pos[k].eq(pos[k]) for k in range(KEPT)]

        # Decompress the group, then a plain 4-term dot product.
        p0, p1 = (pos[1], pos[0]) if self.mutant else (pos[0], pos[1])
        dense = [Mux(p0 == i, self.weight[0], 0) + Mux(p1 == i, self.weight[1], 0) for i in range(GROUP)]
        dot = Signal(signed(a.weight_bits + a.act_bits + 2))
        m.d.comb += dot.eq(sum(dense[i] * self.act[i] for i in range(GROUP)))

        # The reference through the MAC's three-stage timing: stage 1 holds the group's dot
        # product, stage 2 the product sum, stage 3 accumulates.
        ref_dot = Signal.like(dot)
        ref_prod = Signal.like(dot)
        ref_flags = [[Signal(name=f"ref_s{st}_{f}") for f in ("valid", "first", "last")] for st in (1, 2)]
        (r1_valid, r1_first, r1_last), (r2_valid, r2_first, r2_last) = ref_flags
        ref_acc = Signal(signed(a.acc_bits))
        m.d.sync += [r1_valid.eq(self.valid), r1_first.eq(self.first), r1_last.eq(self.last),
                     r2_valid.eq(r1_valid), r2_first.eq(r1_first), r2_last.eq(r1_last)]
        with m.If(self.valid):
            m.d.sync += ref_dot.eq(dot)
        with m.If(r1_valid):
            m.d.sync += ref_prod.eq(ref_dot)
        with m.If(r2_valid):
            m.d.sync += ref_acc.eq(Mux(r2_first, 0, ref_acc) + ref_prod)

        if platform == "formal":
            if self.valid_meta and self.fixed_pos is None:
                with m.If(self.valid):
                    m.d.comb += Assume(self.pos[0] < self.pos[1])
            sel = sum(mac._sel_weight[k] * mac._sel_act[k] for k in range(KEPT))
            m.d.comb += [
                Assert(mac._flags[0][i] == ref_flags[0][i], "stage 1 flags") for i in range(3)
            ] + [
                Assert(mac._flags[1][i] == ref_flags[1][i], "stage 2 flags") for i in range(3)
            ] + [
                Assert(sel == ref_dot, "select stage"),
                Assert(mac._prods[0] + mac._prods[1] == ref_prod, "product stage"),
                Assert(mac._acc == ref_acc, "accumulator"),
            ]
            with m.If(mac.result_valid):
                m.d.comb += Assert(mac.result == ref_acc, "result")
        return m


class _Lemma(wiring.Component):
    """A MAC (submodule ``mac``) on free inputs; subclasses add the lemma's reference and
    assertions in :meth:`check`. ``mutant``: the MAC is :class:`_BrokenMAC` of kind
    ``broken`` (None: the lemma breaks it in the netlist instead, see :func:`lemma`)."""

    broken: str | None = None

    def __init__(self, arith: Arith, mutant: bool = False):
        self.arith = arith
        self.mutant = mutant
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1),
            "act": In(data.ArrayLayout(signed(arith.act_bits), GROUP)),
            "weight": In(data.ArrayLayout(signed(arith.weight_bits), KEPT)),
            "pos": In(data.ArrayLayout(unsigned(POS_BITS), KEPT)),
        })

    def elaborate(self, platform):
        m = Module()
        broken = self.broken if self.mutant else None
        mac = m.submodules.mac = Sparse24MAC(self.arith) if broken is None else _BrokenMAC(self.arith, broken)
        for name in ("valid", "first", "last", "act", "weight", "pos"):
            m.d.comb += getattr(mac, name).eq(getattr(self, name))
        self.check(m, mac, platform)
        return m

    def check(self, m: Module, mac: Sparse24MAC, platform):
        raise NotImplementedError


def _delayed(m: Module, signals, prefix: str) -> list:
    """Registered copies of ``signals`` (one cycle later), named ``<prefix>_<i>``."""
    regs = [Signal.like(sig, name=f"{prefix}_{i}") for i, sig in enumerate(signals)]
    m.d.sync += [r.eq(sig) for r, sig in zip(regs, signals)]
    return regs


class SelectLemma(_Lemma):
    """Lemma 1 (select), any metadata: one cycle after the MAC takes a group, its stage-1
    registers hold ``(weight[k], act[pos[k]])`` for k = 0, 1 and the group's flags.

    The reference selects with a one-hot OR of masked activations rather than the RTL's
    indexed read. ``mutant``: a broken MAC that pairs weight 0 with ``act[pos[1]]``.
    """

    broken = "select"

    def check(self, m, mac, platform):
        a = self.arith
        ref_flags = _delayed(m, [self.valid, self.first, self.last], "ref_s1")
        ref_w = [Signal(signed(a.weight_bits), name=f"ref_w{k}") for k in range(KEPT)]
        ref_a = [Signal(signed(a.act_bits), name=f"ref_a{k}") for k in range(KEPT)]
        with m.If(self.valid):
            for k in range(KEPT):
                picked = 0
                for i in range(GROUP):
                    picked = picked | Mux(self.pos[k] == i, self.act[i], 0)
                m.d.sync += [ref_w[k].eq(self.weight[k]), ref_a[k].eq(picked)]
        if platform == "formal":
            m.d.comb += [Assert(mac._flags[0][i] == ref_flags[i], "stage 1 flags") for i in range(3)]
            for k in range(KEPT):
                # Stage 1 holds data only after a valid group (its registers are enabled by valid).
                with m.If(mac._flags[0][0]):
                    m.d.comb += [Assert(mac._sel_weight[k] == ref_w[k], "selected weight"),
                                 Assert(mac._sel_act[k] == ref_a[k], "selected activation")]


class ProductLemma(_Lemma):
    """Lemma 2 (product): one cycle after stage 1 holds a group, each product register holds
    the exact signed product ``sel_weight[k] * sel_act[k]`` (the reference multiplies at two
    bits wider than the register, so a truncated or unsigned product fails), and the flags
    move on. ``mutant``: a broken MAC whose first multiplier takes the activation as unsigned.
    """

    broken = "product"

    def check(self, m, mac, platform):
        a = self.arith
        wide = signed(a.weight_bits + a.act_bits + 2)
        ref_flags = _delayed(m, mac._flags[0], "ref_s2")
        ref_p = [Signal(wide, name=f"ref_p{k}") for k in range(KEPT)]
        with m.If(mac._flags[0][0]):
            for k in range(KEPT):
                m.d.sync += ref_p[k].eq(mac._sel_weight[k] * mac._sel_act[k])
        if platform == "formal":
            m.d.comb += [Assert(mac._flags[1][i] == ref_flags[i], "stage 2 flags") for i in range(3)]
            with m.If(mac._flags[1][0]):
                m.d.comb += [Assert(mac._prods[k] == ref_p[k], "exact product") for k in range(KEPT)]


class AccumulateLemma(_Lemma):
    """Lemma 3 (accumulate): for *any* values in the product registers (the proof cuts them
    loose, see :data:`ACC_CUT`), the carry-save accumulator equals a plain running sum
    ``acc' = (first ? 0 : acc) + prod0 + prod1`` taken on each valid stage-2 group, ``result``
    is that sum, and ``result_valid`` is high exactly one cycle after a stage-2 group with
    ``last`` (all modulo ``2**acc_bits``, which ``Arith.acc_bits`` makes exact).
    ``mutant``: a broken MAC whose carry register is cut loose too (:data:`ACC_BROKEN`).
    """

    def check(self, m, mac, platform):
        s2_valid, s2_first, s2_last = mac._flags[1]
        ref_acc = Signal(signed(self.arith.acc_bits), name="ref_acc")
        (ref_done,) = _delayed(m, [s2_valid & s2_last], "ref_done")
        with m.If(s2_valid):
            m.d.sync += ref_acc.eq(Mux(s2_first, 0, ref_acc) + mac._prods[0] + mac._prods[1])
        if platform == "formal":
            m.d.comb += [Assert(mac._acc == ref_acc, "accumulator"),
                         Assert(mac.result == ref_acc, "result"),
                         Assert(mac.result_valid == ref_done, "result_valid")]


# The product registers as free values: the accumulate lemma holds whatever they contain.
ACC_CUT = (cut("w:mac.prod0 w:mac.prod1"),)
# The broken accumulator of the non-vacuity check: its carries (register acc_c) are any value.
ACC_BROKEN = ACC_CUT + (cut("w:mac.acc_c"),)


class DecompressLemma(wiring.Component):
    """Lemma 4 (decompress), valid metadata, combinational: for each of the six ascending
    position pairs ``p0 < p1`` (one case each, positions constant), ``w0 * act[p0] +
    w1 * act[p1]`` equals the dense dot product ``sum_i dense[i] * act[i]`` of the decompressed
    group (``dense[i]`` = the kept value at position ``i``, else 0: ``model.hw.formats.nm.decode``).
    ``mutant``: the dense side decompresses with the positions swapped.
    """

    def __init__(self, arith: Arith, mutant: bool = False):
        self.arith = arith
        self.mutant = mutant
        super().__init__({"act": In(data.ArrayLayout(signed(arith.act_bits), GROUP)),
                          "weight": In(data.ArrayLayout(signed(arith.weight_bits), KEPT))})

    def elaborate(self, platform):
        m = Module()
        a = self.arith
        wide = signed(a.weight_bits + a.act_bits + 2)
        for p0 in range(GROUP):
            for p1 in range(p0 + 1, GROUP):
                d0, d1 = (p1, p0) if self.mutant else (p0, p1)
                dense = [Mux(d0 == i, self.weight[0], 0) + Mux(d1 == i, self.weight[1], 0) for i in range(GROUP)]
                dot = Signal(wide, name=f"dense_dot_{p0}{p1}")
                sel = Signal(wide, name=f"sel_dot_{p0}{p1}")
                m.d.comb += [dot.eq(sum(dense[i] * self.act[i] for i in range(GROUP))),
                             sel.eq(self.weight[0] * self.act[p0] + self.weight[1] * self.act[p1])]
                if platform == "formal":
                    m.d.comb += Assert(sel == dot, f"decompress {p0}{p1}")
        return m


class _BrokenMAC(Sparse24MAC):
    """A deliberately wrong MAC for the non-vacuity checks (later assignments in the same
    module override the RTL's): ``select``: weight 0 is paired with ``act[pos[1]]``;
    ``product``: product 0 takes its activation as unsigned."""

    def __init__(self, arith: Arith, kind: str):
        self.kind = kind
        super().__init__(arith)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.kind == "select":
            with m.If(self.valid):
                m.d.sync += self._sel_act[0].eq(self.act[self.pos[1]])
        elif self.kind == "product":
            with m.If(self._flags[0][0]):
                m.d.sync += self._prods[0].eq(self._sel_weight[0] * self._sel_act[0].as_unsigned())
        return m


FULL = Arith(weight_bits=8, act_bits=16, max_cols=1024)

# name -> (harness class, SBY mode, depth). k-induction of length 4: its base case (a 4-cycle
# BMC from reset) is what refutes a broken MAC, whose error needs up to 4 cycles to show.
LEMMAS = {
    "select": (SelectLemma, "prove", 4),
    "product": (ProductLemma, "prove", 4),
    "accumulate": (AccumulateLemma, "prove", 4),
    "decompress": (DecompressLemma, "bmc", 1),
}


def lemma(name: str, arith: Arith = FULL, mutant: bool = False) -> Proof:
    """The SBY task of lemma ``name`` (see :data:`LEMMAS`) at ``arith`` (default: full width);
    ``mutant``: against the lemma's deliberately broken variant (see each class)."""
    cls, mode, depth = LEMMAS[name]
    script = (ACC_BROKEN if mutant else ACC_CUT) if name == "accumulate" else ()
    return Proof(f"mac_{name}", cls(arith, mutant), mode, depth, script)


def write_proof(workdir: Path, arith: Arith, valid_meta: bool = True, depth: int = 3,
                mutant: bool = False) -> Path:
    """Write the whole-MAC proof's ``<top>.il`` and ``<top>.sby`` into ``workdir``."""
    return write(Proof(TOP, MACHarness(arith, valid_meta, mutant), "prove", depth), workdir)


def run_proof(workdir: Path, arith: Arith, valid_meta: bool = True, depth: int = 3,
              timeout: float = 600, mutant: bool = False) -> tuple[str, str]:
    """Run the whole-MAC proof in ``workdir``; return (status, log)."""
    r = run(Proof(TOP, MACHarness(arith, valid_meta, mutant), "prove", depth), workdir, timeout)
    return r.status, r.log


if __name__ == "__main__":
    # python -m verif.formal.sparse24_mac [workdir]: the four lemmas at full width, timed.
    where = Path(sys.argv[1] if len(sys.argv) > 1 else "build/formal/sparse24_mac")
    bad = 0
    for lemma_name in LEMMAS:
        res = run(lemma(lemma_name), where / lemma_name)
        bad += res.status != "PASS"
        print(f"{lemma_name:12s} {res.status} {res.seconds:.1f} s")
    sys.exit(1 if bad else 0)
