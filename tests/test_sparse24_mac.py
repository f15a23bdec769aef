"""rtl.sparse24.mac.Sparse24MAC in Amaranth's simulator against a plain-Python model."""
import gc
import itertools
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from model.hw.config import Arith
from model.errors import SparseFlowError
from model.hw.formats import nm
from rtl.sparse24.mac import LATENCY, Sparse24MAC

# Constructor-error tests leave half-built components behind; Amaranth warns when they are
# collected, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

PAIRS = list(itertools.combinations(range(4), 2))  # the six valid position pairs


def model_dot(groups):
    """The documented semantics: each kept value times the activation at its own position."""
    return sum(w0 * a[p0] + w1 * a[p1] for a, (w0, w1), (p0, p1) in groups)


def dense_dot(groups):
    """The same dot product through the 2:4 decoder (valid metadata only)."""
    vals = np.array([[w for _, ws, _ in groups for w in ws]])
    pos = np.array([[p for _, _, ps in groups for p in ps]])
    w = nm.decode(nm.NMMatrix((1, 4 * len(groups)), vals, pos))[0]
    acts = np.array([x for a, _, _ in groups for x in a])
    return int(w @ acts)


def simulate(arith, dots, idle=0.3, seed=0):
    """Feed ``dots`` (lists of groups) with random bubbles; return [(cycle, result)] and the
    cycles at which each dot product's last group was taken."""
    dut = Sparse24MAC(arith)
    rng = random.Random(seed)
    results, last_cycles = [], []

    async def bench(ctx):
        cycle = 0
        schedule = []
        for dot in dots:
            for i, grp in enumerate(dot):
                while rng.random() < idle:
                    schedule.append(None)
                schedule.append((i == 0, i == len(dot) - 1, grp))
        schedule += [None] * (LATENCY + 2)
        for item in schedule:
            if item is None:
                ctx.set(dut.valid, 0)
                # garbage on the data inputs while idle must not matter
                ctx.set(dut.act, [rng.randint(-8, 7) for _ in range(4)])
                ctx.set(dut.first, rng.randint(0, 1))
                ctx.set(dut.last, rng.randint(0, 1))
            else:
                first, last, (acts, ws, ps) = item
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, first)
                ctx.set(dut.last, last)
                ctx.set(dut.act, list(acts))
                ctx.set(dut.weight, list(ws))
                ctx.set(dut.pos, list(ps))
                if last:
                    last_cycles.append(cycle)
            if ctx.get(dut.result_valid):
                results.append((cycle, ctx.get(dut.result)))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results, last_cycles


def random_group(rng, arith, pair=None, valid=True):
    alo, ahi = arith.act_range
    wlo, whi = arith.weight_range
    acts = [rng.randint(alo, ahi) for _ in range(4)]
    ws = (rng.randint(wlo, whi), rng.randint(wlo, whi))
    if pair is None:
        pair = rng.choice(PAIRS) if valid else (rng.randint(0, 3), rng.randint(0, 3))
    return acts, ws, pair


def check(arith, dots, **kw):
    results, last_cycles = simulate(arith, dots, **kw)
    assert [c for c, _ in results] == [c + LATENCY for c in last_cycles], "result timing"
    assert [r for _, r in results] == [model_dot(d) for d in dots]
    return results


@pytest.mark.parametrize("idle", [0.0, 0.4])
def test_random_dot_products_match_decoder(idle):
    arith = Arith(weight_bits=8, act_bits=16, max_cols=64)
    rng = random.Random(1)
    dots = [[random_group(rng, arith) for _ in range(rng.randint(1, 16))] for _ in range(40)]
    results = check(arith, dots, idle=idle, seed=2)
    assert [r for _, r in results] == [dense_dot(d) for d in dots]


def test_every_position_pair_and_extremes():
    arith = Arith(weight_bits=8, act_bits=16, max_cols=64)
    lo, hi = arith.act_range
    dots = []
    for pair in PAIRS:  # adjacent (0,1) (1,2) (2,3) and apart (0,2) (0,3) (1,3)
        dots.append([([1, 10, 100, 1000], (3, -5), pair)])
        dots.append([([lo, lo, lo, lo], (-128, -128), pair)] * 16)  # largest positive sum
        dots.append([([hi, lo, hi, lo], (-128, 127), pair)] * 16)
    dots.append([([hi, hi, hi, hi], (0, 0), (0, 1))] * 5)  # all kept weights zero
    results = check(arith, dots, idle=0.2, seed=3)
    assert results[0][1] == 3 * 1 - 5 * 10
    assert results[1][1] == 16 * 2 * 128 * 32768
    assert [r for _, r in results] == [dense_dot(d) for d in dots]


def test_invalid_metadata_uses_each_stated_position():
    """Equal or descending positions: documented as sum of v0*a[p0] + v1*a[p1], not flagged."""
    arith = Arith(weight_bits=8, act_bits=8, max_cols=16)
    acts = [2, 3, 5, 7]
    dots = [[(acts, (10, 1), (p, p))] for p in range(4)]          # equal: (w0 + w1) * a[p]
    dots += [[(acts, (10, 1), (q, p))] for p, q in PAIRS]          # descending: swapped pair
    results = [r for _, r in check(arith, dots, idle=0.0)]
    assert results[:4] == [11 * a for a in acts]
    assert results[4:] == [10 * acts[q] + acts[p] for p, q in PAIRS]
    rng = random.Random(5)
    check(arith, [[random_group(rng, arith, valid=False) for _ in range(4)] for _ in range(30)], idle=0.3)


def test_one_group_per_cycle_back_to_back():
    arith = Arith(weight_bits=4, act_bits=4, max_cols=16)
    rng = random.Random(7)
    dots = [[random_group(rng, arith)] for _ in range(20)]  # first and last on every group
    results = check(arith, dots, idle=0.0)
    cycles = [c for c, _ in results]
    assert cycles == list(range(cycles[0], cycles[0] + 20))


def test_constructor_checks_its_argument():
    with pytest.raises(SparseFlowError, match=r"^Sparse24MAC needs an Arith, not 8$"):
        Sparse24MAC(8)
    gc.collect()
    mac = Sparse24MAC(Arith(weight_bits=8, act_bits=8, max_cols=16))
    assert mac.result.shape().width == mac.arith.acc_bits == 8 + 8 + 4
