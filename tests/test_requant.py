"""rtl.common.requant.Requantizer against model.hw.reference.requantize, in Amaranth's simulator."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from model.hw.config import Arith, Requant
from model.hw.reference import requantize
from rtl.common.requant import Requantizer


@pytest.mark.parametrize("requant", [None, Requant(0, True)])
def test_requantizer_matches_reference(requant):
    arith = Arith(weight_bits=8, act_bits=8, max_cols=16, requant=requant)
    dut = Requantizer(arith)
    rng = np.random.default_rng(0)
    lo, hi = arith.acc_range
    accs = np.concatenate([[lo, hi, 0, -1, 1, 127, 128, -128, -129, 255, 256],
                           rng.integers(lo, hi + 1, 300), rng.integers(-600, 600, 300)])
    cases = [(int(a), int(s), int(r)) for a in accs for s, r in [(rng.integers(0, 12), rng.integers(0, 2))]]
    cases += [(int(a), s, r) for a in (lo, hi, -1, 1, -3, 3) for s in (0, 1, 2, 31) for r in (0, 1)]

    async def bench(ctx):
        for acc, shift, relu in cases:
            ctx.set(dut.acc, acc)
            ctx.set(dut.shift, shift)
            ctx.set(dut.relu, relu)
            got = ctx.get(dut.out)
            ref_arith = arith if requant is None else Arith(8, 8, max_cols=16, requant=Requant(shift, bool(relu)))
            assert got == int(requantize(np.array([acc]), ref_arith)[0]), (acc, shift, relu)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
