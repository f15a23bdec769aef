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
sequence of any length, not only a bound.

``python -m verif.formal.sparse24_mac [workdir]`` runs the proof and prints the SBY status.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from amaranth import Assert, Assume, Module, Mux, Signal, signed, unsigned
from amaranth.back import rtlil
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from model.hw.config import Arith
from rtl.sparse24.mac import GROUP, KEPT, POS_BITS, Sparse24MAC

TOP = "sparse24_mac_formal"


class MACHarness(wiring.Component):
    """Free inputs (the MAC's own), the MAC, the reference and the assertions.

    ``valid_meta``: assume ``pos[0] < pos[1]`` on every valid group (the encoder's guarantee);
    with ``False`` the proof covers any metadata under the documented sum semantics.
    ``mutant``: a deliberately wrong reference (each weight at the other's position), which the
    proof must refute; it shows the assertions are not vacuous.
    """

    def __init__(self, arith: Arith, valid_meta: bool = True, mutant: bool = False):
        self.arith = arith
        self.valid_meta = valid_meta
        self.mutant = mutant
        super().__init__({
            "valid": In(1), "first": In(1), "last": In(1),
            "act": In(data.ArrayLayout(signed(arith.act_bits), GROUP)),
            "weight": In(data.ArrayLayout(signed(arith.weight_bits), KEPT)),
            "pos": In(data.ArrayLayout(unsigned(POS_BITS), KEPT)),
        })

    def elaborate(self, platform):
        m = Module()
        a = self.arith
        m.submodules.mac = mac = Sparse24MAC(a)
        for name in ("valid", "first", "last", "act", "weight", "pos"):
            m.d.comb += getattr(mac, name).eq(getattr(self, name))

        # Decompress the group, then a plain 4-term dot product.
        p0, p1 = (self.pos[1], self.pos[0]) if self.mutant else (self.pos[0], self.pos[1])
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
            if self.valid_meta:
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


SBY = """\
[options]
mode prove
depth {depth}

[engines]
smtbmc yices

[script]
read_rtlil {top}.il
prep -top {top}

[files]
{top}.il
"""


def write_proof(workdir: Path, arith: Arith, valid_meta: bool = True, depth: int = 3,
                mutant: bool = False) -> Path:
    """Write ``<top>.il`` and ``<top>.sby`` into ``workdir``; return the .sby path."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = rtlil.convert(MACHarness(arith, valid_meta, mutant), name=TOP, platform="formal", emit_src=False)
    (workdir / f"{TOP}.il").write_text(text)
    sby = workdir / f"{TOP}.sby"
    sby.write_text(SBY.format(top=TOP, depth=depth))
    return sby


def run_proof(workdir: Path, arith: Arith, valid_meta: bool = True, depth: int = 3,
              timeout: float = 600, mutant: bool = False) -> tuple[str, str]:
    """Run SymbiYosys in ``workdir`` (YoWASP tools see only the cwd tree); return (status, log)."""
    from verif.tools import tool_env
    sby = write_proof(workdir, arith, valid_meta, depth, mutant)
    env = tool_env()
    # Own process group, so a timeout also ends the smtbmc/yices children.
    proc = subprocess.Popen([env["SBY"], "-f", sby.name], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        return "TIMEOUT", log
    status_file = workdir / TOP / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    return status, log


if __name__ == "__main__":
    where = Path(sys.argv[1] if len(sys.argv) > 1 else "build/formal/sparse24_mac")
    st, out = run_proof(where, Arith(weight_bits=8, act_bits=16, max_cols=1024))
    print(out[-2000:])
    print(f"sparse24 MAC proof: {st}")
    sys.exit(0 if st == "PASS" else 1)
