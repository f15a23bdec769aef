"""Amaranth-simulator unit tests of the EIE array's components against small Python models,
plus the cycle model, the balancing permutation, constructor checks and lint."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from model.hw.balance import balance_rows, pe_loads, unpermute
from model.hw.config import Arith, EIEConfig, Requant
from model.hw.cyclemodel import ideal_cycles, predict_cycles, simulate_vector
from model.errors import SparseFlowError
from model.hw.formats.eie import encode
from model.hw.reference import layer
from rtl.common.config import build_config
from rtl.eie.array import EIEArray
from rtl.eie.broadcast import Broadcast
from rtl.eie.nonzero import NonZeroDetect, NonZeroScan
from rtl.eie.pe import EIEPE
from verif.runner import lint, to_verilog
from verif.spmv_eie import load_words

SMALL = EIEConfig(n_pes=4, index_bits=2, fifo_depth=2, max_rows=16, max_entries=64, arith=Arith(max_cols=16))


def run(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)
    sim.run()  # until every testbench returns (the clock is a background process)


def _front_end_sink(dut, got, ends, prng, p_ready, cycles):
    """A testbench taking the front end's ``nz`` with random back-pressure (``ready`` with
    probability ``p_ready``) for ``cycles`` cycles: ``(col, data)`` of each transfer into
    ``got``, ``end`` of each ``accept`` cycle into ``ends``."""
    async def sink(ctx):
        for _ in range(cycles):
            ctx.set(dut.nz.ready, prng.random() < p_ready)
            _, _, valid, ready, col, data, accept, end = await ctx.tick().sample(
                dut.nz.valid, dut.nz.ready, dut.nz.payload.col, dut.nz.payload.data, dut.accept, dut.end)
            if valid and ready:
                got.append((col, data))
            if accept:
                ends.append(end)
    return sink


def test_nonzero_detect_numbers_columns_and_skips_zeros():
    cfg = SMALL
    dut = NonZeroDetect(cfg)
    rng = random.Random(1)
    vecs = [[rng.choice([0, 0, rng.randint(-9, 9)]) for _ in range(rng.randint(1, 12))] for _ in range(6)]
    vecs[0] = [0, 0, 0]  # an all-zero vector
    cols = 10  # elements past column 10 are dropped even when non-zero
    want = [(j, v) for vec in vecs for j, v in enumerate(vec) if v and j < cols]
    got, ends = [], []

    async def source(ctx):
        ctx.set(dut.cols, cols)
        ctx.set(dut.enable, 1)
        for vec in vecs:
            for j, v in enumerate(vec):
                while rng.random() < 0.3:
                    ctx.set(dut.x.valid, 0)
                    await ctx.tick()
                ctx.set(dut.x.valid, 1)
                ctx.set(dut.x.payload.data, v)
                ctx.set(dut.x.payload.last, j == len(vec) - 1)
                await ctx.tick().until(dut.x.ready)
        ctx.set(dut.x.valid, 0)

    run(dut, source, _front_end_sink(dut, got, ends, random.Random(2), 0.5, 2000))
    assert got == want
    assert ends == [int(j == len(vec) - 1) for vec in vecs for j in range(len(vec))]


def _words(vec, k):
    """A vector as ``(elements, last)`` input words of ``k`` elements, the last one zero-padded."""
    n = -(-len(vec) // k)
    return [((list(vec[w * k:(w + 1) * k]) + [0] * k)[:k], w == n - 1) for w in range(n)]


@pytest.mark.parametrize("k", [2, 8])
def test_nonzero_scan_sends_each_non_zero_once_and_one_step_per_empty_word(k):
    """NonZeroScan: the non-zeros at columns < cols in order with their column numbers, under
    random input gaps and back-pressure; one ``accept`` step per non-zero (a non-zero past
    ``cols`` is dropped in its step), one per word without any, ``end`` on the last word's;
    ``cols`` changed between vectors (enable low) applies to a first word already waiting."""
    seed = 10 + k
    print(f"seed {seed}")
    rng = random.Random(seed)
    cfg = SMALL.with_(frontend_width=k)
    dut = NonZeroScan(cfg)
    vecs = [[rng.choice([0, 0, rng.randint(-9, 9)]) for _ in range(rng.randint(1, 16))] for _ in range(8)]
    vecs[0] = [0] * 9  # all-zero vector
    vecs[1] = [5] * 16  # every element non-zero
    cols = [rng.randint(1, 16) for _ in vecs]
    want = [(j, v) for vec, c in zip(vecs, cols) for j, v in enumerate(vec) if v and j < c]
    steps = []  # (end) per accept
    want_steps = []
    for vec, c in zip(vecs, cols):
        for w, (lanes, last) in enumerate(_words(vec, k)):
            nz = sum(1 for v in lanes if v)  # one step per non-zero, in range or not (dropped)
            want_steps += [0] * (max(nz, 1) - 1) + [int(last)]
    got = []

    async def source(ctx):
        for v, (vec, c) in enumerate(zip(vecs, cols)):
            words = _words(vec, k)
            ctx.set(dut.enable, 0)  # between vectors: the first word goes in, then cols changes
            ctx.set(dut.x.valid, 1)
            ctx.set(dut.x.payload.data, words[0][0]); ctx.set(dut.x.payload.last, words[0][1])
            await ctx.tick().until(dut.x.ready)
            ctx.set(dut.x.valid, 0)
            ctx.set(dut.cols, c)
            await ctx.tick()
            ctx.set(dut.enable, 1)
            for lanes, last in words[1:]:
                while rng.random() < 0.3:
                    ctx.set(dut.x.valid, 0)
                    await ctx.tick()
                ctx.set(dut.x.valid, 1)
                ctx.set(dut.x.payload.data, lanes); ctx.set(dut.x.payload.last, last)
                await ctx.tick().until(dut.x.ready)
            ctx.set(dut.x.valid, 0)
            while sum(steps) < v + 1:  # this vector's last word has left: cols may change
                await ctx.tick()

    run(dut, source, _front_end_sink(dut, got, steps, random.Random(seed + 1), 0.6, 3000))
    assert got == want
    assert steps == want_steps


@pytest.mark.parametrize("depth", [1, 3])
def test_broadcast_feeds_only_pes_with_work_and_waits_only_for_a_full_needed_queue(depth):
    cfg = SMALL.with_(n_pes=3, fifo_depth=depth)
    dut = Broadcast(cfg)
    rng = np.random.default_rng(depth)
    mask = rng.random((3, 16)) < 0.6  # mask[k, j]: PE k has entries in column j
    mask[:, 5] = False  # a column no PE needs
    words = [(int(rng.integers(0, 16)), i - 50) for i in range(80)]
    got = [[] for _ in range(3)]
    level = [0, 0, 0]
    n_reg = []  # model: the word in register N
    staged = []  # model: the two-word FIFO behind it, head first
    sent = np.zeros(3, bool)  # model: queues that already took the head word
    partial = [0]  # cycles some queues took the head word while another was full
    mismatches = []

    async def source(ctx):
        prng = random.Random(3)
        for k in range(3):
            for j in range(16):
                ctx.set(dut.mask_we, 1); ctx.set(dut.mask_pe, k); ctx.set(dut.mask_col, j)
                ctx.set(dut.mask_bit, int(mask[k, j]))
                await ctx.tick()
        ctx.set(dut.mask_we, 0)
        for col, data in words:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload.col, col)
            ctx.set(dut.i.payload.data, data)
            await ctx.tick().until(dut.i.ready)
            if prng.random() < 0.2:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def sinks(ctx):  # one process for all queues: the model sees each edge once
        prng = random.Random(10)
        for _ in range(48):
            await ctx.tick()
        for _ in range(900):
            for k in range(3):
                ctx.set(dut.q[k].ready, prng.random() < 0.3 + 0.2 * k)
            sampled = await ctx.tick().sample(dut.i.valid, dut.i.ready, dut.i.payload.col, dut.pending,
                                              dut.blocked, *(s for k in range(3) for s in (
                                                  dut.q[k].valid, dut.q[k].ready, dut.q[k].payload.col,
                                                  dut.q[k].payload.data)))
            iv, ir, icol, pending, blocked = sampled[2:7]
            rest = sampled[7:]
            head = staged[0] if staged else None
            want = (mask[:, head] & ~sent) if staged else np.zeros(3, bool)
            write = [bool(want[k]) and level[k] < depth for k in range(3)]
            want_blocked = sum(1 << k for k in range(3) if want[k] and level[k] == depth)
            fire = bool(staged) and all(write[k] or not want[k] for k in range(3))
            partial[0] += bool(staged) and not fire and any(write)
            move = bool(n_reg) and len(staged) < 2
            if pending != bool(n_reg or staged) or blocked != want_blocked or ir != (not n_reg or len(staged) < 2):
                mismatches.append((pending, blocked, ir, list(level), n_reg, staged))
            for k in range(3):
                v, r, col, data = rest[4 * k:4 * k + 4]
                if bool(v) != (level[k] > 0):
                    mismatches.append(("queue", k, v, level[k]))
                level[k] += int(write[k]) - int(v and r)
                if v and r:
                    got[k].append((col, data))
            sent[:] = False if fire else (sent | write)
            if fire:
                staged.pop(0)
            if move:
                staged.append(n_reg.pop())
            if iv and ir:
                n_reg[:] = [icol]

    run(dut, source, sinks)
    for k in range(3):
        assert got[k] == [(c, d) for c, d in words if mask[k, c]]
    assert not mismatches[:3]
    assert partial[0] > 0  # queues were served on their own, not all at once


def _pe_case(cfg, w, k, xs):
    """Run PE k of ``cfg`` on the slice of ``w``; return its accumulators after all vectors."""
    m = encode(w, cfg)
    words, ptr = m.words(cfg, k), m.ptr[k]
    dut = EIEPE(cfg, checks=True)
    lrows = len(range(k, w.shape[0], cfg.n_pes))
    out = []

    async def bench(ctx):
        rng = random.Random(5)
        for i, wd in enumerate(words):
            ctx.set(dut.ent_we, 1); ctx.set(dut.ent_addr, i); ctx.set(dut.ent_data, int(wd))
            await ctx.tick()
        ctx.set(dut.ent_we, 0)
        for j, p in enumerate(ptr):
            ctx.set(dut.ptr_we, 1); ctx.set(dut.ptr_addr, j); ctx.set(dut.ptr_data, int(p))
            await ctx.tick()
        ctx.set(dut.ptr_we, 0)
        for v, x in enumerate(xs):
            ctx.set(dut.bank, v % 2)  # compute into bank v % 2 ...
            for j in np.flatnonzero(x):
                ctx.set(dut.act.valid, 1)
                ctx.set(dut.act.payload.col, int(j)); ctx.set(dut.act.payload.data, int(x[j]))
                await ctx.tick().until(dut.act.ready)
                if rng.random() < 0.3:
                    ctx.set(dut.act.valid, 0)
                    await ctx.tick()
            ctx.set(dut.act.valid, 0)
            await ctx.tick().until(dut.idle)
            ctx.set(dut.bank, (v + 1) % 2)  # ... and read it out while the other bank computes
            acc = []
            for l in range(lrows):  # read out with gaps: data must hold while rd_en is low
                ctx.set(dut.rd_en, 1); ctx.set(dut.rd_addr, l)
                await ctx.tick()
                ctx.set(dut.rd_en, 0)
                for _ in range(rng.randint(0, 2)):
                    await ctx.tick()
                acc.append(ctx.get(dut.rd_data))
            await ctx.tick()
            out.append(acc)

    run(dut, bench)
    return np.array(out).T  # (local rows, vectors)


@pytest.mark.parametrize("case", ["random", "padding", "one_row_consecutive", "empty_columns"])
def test_pe_accumulates_its_rows(case):
    rng = np.random.default_rng(7)
    cfg = SMALL
    if case == "random":
        w = rng.integers(-128, 128, (13, 16)) * (rng.random((13, 16)) < 0.4)
    elif case == "padding":  # local-row gaps of 3 > max_gap 3 -> padding entries
        w = np.zeros((16, 16), dtype=int)
        w[[0, 13, 15], :] = rng.integers(-128, 128, (3, 16))
        w[:, ::3] = 0
    elif case == "one_row_consecutive":  # back-to-back updates of one accumulator
        w = rng.integers(-128, 128, (1, 16))
        w[0, w[0] == 0] = 5
    else:
        w = rng.integers(-128, 128, (16, 16)) * (rng.random((16, 16)) < 0.5)
        w[:, [1, 2, 3, 7, 8]] = 0
    xs = [rng.integers(-30000, 30000, 16) * (rng.random(16) < 0.7) for _ in range(3)]
    xs.append(np.zeros(16, dtype=int))
    k = 0
    acc = _pe_case(cfg, w, k, xs)
    want = (w @ np.array(xs).T)[k::cfg.n_pes]
    np.testing.assert_array_equal(acc, want)


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_constructors_check_arguments():
    with pytest.raises(SparseFlowError, match="^cfg must be an EIEConfig, not str$"):
        EIEArray("cfg")
    with pytest.raises(SparseFlowError, match="^init must be an EIEMatrix or None, not ndarray$"):
        EIEArray(SMALL, init=np.zeros((2, 2)))
    m = encode(np.ones((4, 4), dtype=int), SMALL.with_(n_pes=2))
    with pytest.raises(SparseFlowError, match="^matrix is encoded for 2 PEs, the array has 4$"):
        EIEArray(SMALL, init=m)
    big = encode(np.ones((16, 16), dtype=int), SMALL.with_(max_entries=1024))
    with pytest.raises(SparseFlowError, match=r"^PE 0 needs 64 entries \(padding included\); its memory holds 63$"):
        EIEArray(SMALL.with_(max_entries=63), init=big)
    for cls in (NonZeroDetect, Broadcast, EIEPE):
        with pytest.raises(SparseFlowError, match="^cfg must be an EIEConfig, not int$"):
            cls(3)


async def _send_vector(ctx, dut, x):
    k = dut.cfg.frontend_width
    for data, last in _words([int(v) for v in x], k) if k > 1 else [(int(v), j == len(x) - 1) for j, v in enumerate(x)]:
        ctx.set(dut.x.valid, 1)
        ctx.set(dut.x.payload.data, data); ctx.set(dut.x.payload.last, last)
        await ctx.tick().until(dut.x.ready)
    ctx.set(dut.x.valid, 0)


async def _receive_vector(ctx, dut, rows):
    """The next ``rows`` results (``y.ready`` held high), ``last`` on the final one only."""
    y = []
    while len(y) < rows:
        _, _, v, d, last = await ctx.tick().sample(dut.y.valid, dut.y.payload.data, dut.y.payload.last)
        if v:
            y.append(d)
            assert last == (len(y) == rows)
    return y


def _array_run(dut, loads, xs, rows, cycles=None):
    """Load, then each vector in turn (input at full speed); ``cycles``: a list that gets
    each vector's ``cycles`` counter, read after its last result."""
    ys = []

    async def bench(ctx):
        for wd in loads:
            ctx.set(dut.load.valid, 1); ctx.set(dut.load.payload.as_value(), int(wd))
            await ctx.tick().until(dut.load.ready)
        ctx.set(dut.load.valid, 0)
        ctx.set(dut.y.ready, 1)
        for x in xs:
            await _send_vector(ctx, dut, x)
            ys.append(await _receive_vector(ctx, dut, rows))
            if cycles is not None:
                cycles.append(ctx.get(dut.cycles))

    run(dut, bench)
    return np.array(ys).T


@pytest.mark.parametrize("k", [1, 4])
def test_array_elaboration_time_init_needs_no_load(k):
    rng = np.random.default_rng(9)
    cfg = SMALL.with_(arith=Arith(max_cols=16, requant=Requant(shift=6, relu=True)), frontend_width=k)
    w = rng.integers(-128, 128, (11, 9)) * (rng.random((11, 9)) < 0.5)
    xs = [rng.integers(-3000, 3000, 9) for _ in range(2)]
    y = _array_run(EIEArray(cfg, init=encode(w, cfg), checks=True), [], xs, 11)
    np.testing.assert_array_equal(y, layer(w, np.array(xs).T, cfg.arith))


def test_array_a_waiting_element_goes_before_a_load_word():
    # A shift write offered in the cycle the first element reaches the input queue's head
    # (one cycle after its transfer): the vector runs first (old shift), the write is taken
    # after its read-out, the next vector sees the new shift.
    from dataclasses import replace
    from rtl.common.protocol import Reg
    from rtl.eie.layouts import LoadKind
    rng = np.random.default_rng(2)
    cfg = SMALL.with_(arith=Arith(max_cols=16, requant=Requant(shift=2)))
    w = rng.integers(-128, 128, (8, 6)) * (rng.random((8, 6)) < 0.6)
    xs = [rng.integers(-3000, 3000, 6) for _ in range(2)]
    dut = EIEArray(cfg, init=encode(w, cfg), checks=True)
    ys, events = [], []

    async def loader(ctx):
        await ctx.tick()
        ctx.set(dut.load.valid, 1)
        ctx.set(dut.load.payload.kind, LoadKind.REG); ctx.set(dut.load.payload.addr, Reg.SHIFT)
        ctx.set(dut.load.payload.data, 5)
        await ctx.tick().until(dut.load.ready)
        events.append("load")  # the testbenches run in simulation-time order
        ctx.set(dut.load.valid, 0)

    async def bench(ctx):
        ctx.set(dut.y.ready, 1)
        for x in xs:
            await _send_vector(ctx, dut, x)
            ys.append(await _receive_vector(ctx, dut, 8))
            events.append("vector")
            for _ in range(5):  # let the load in before the second vector
                await ctx.tick()

    run(dut, bench, loader)
    assert events == ["vector", "load", "vector"], events
    x = np.array(xs).T
    np.testing.assert_array_equal(ys[0], layer(w, x[:, :1], cfg.arith)[:, 0])
    np.testing.assert_array_equal(ys[1], layer(w, x[:, 1:], replace(cfg.arith, requant=Requant(shift=5)))[:, 0])


def test_array_codebook_mode():
    rng = np.random.default_rng(4)
    cfg = SMALL.with_(codebook=True, codebook_bits=3)
    book = np.array([0, -128, -5, 1, 7, 33, 100, 127])
    idx = rng.integers(0, 8, (10, 12)) * (rng.random((10, 12)) < 0.5)
    m = encode(idx, cfg, book)
    xs = [rng.integers(-32768, 32768, 12) for _ in range(2)]
    y = _array_run(EIEArray(cfg, checks=True), load_words(m, cfg), xs, 10)
    np.testing.assert_array_equal(y, book[idx] @ np.array(xs).T)


@pytest.mark.parametrize("k", [4, 16])
def test_array_wide_front_end(k):
    """The array with NonZeroScan (every mirrored-flag assertion on): results and cycles equal
    the golden model and the cycle model; vectors all zero, sparse, dense and over a padded
    last word (14 columns)."""
    print("seed 12")
    rng = np.random.default_rng(12)
    cfg = SMALL.with_(frontend_width=k)
    w = rng.integers(-128, 128, (10, 14)) * (rng.random((10, 14)) < 0.5)
    xs = [rng.integers(-3000, 3000, 14) * (rng.random(14) < p) for p in (0.0, 0.2, 0.5, 1.0)]
    cyc = []
    y = _array_run(EIEArray(cfg, checks=True), load_words(encode(w, cfg), cfg), xs, 10, cyc)
    np.testing.assert_array_equal(y, w @ np.array(xs).T)
    assert cyc == [predict_cycles(w, x, cfg) for x in xs]


def test_requant_only_configs_share_one_verilog():
    def cfg(shift, relu):
        return SMALL.with_(n_pes=2, arith=Arith(max_cols=16, requant=Requant(shift=shift, relu=relu)))
    a = to_verilog(EIEArray(build_config(cfg(3, True))), "eie_array")
    b = to_verilog(EIEArray(build_config(cfg(11, False))), "eie_array")
    assert a == b
    assert build_config(SMALL) is SMALL


def test_cycle_model_by_hand():
    # One PE, queue depth 1; worked out with the rules in model.hw.cyclemodel's docstring.
    cfg = EIEConfig(n_pes=1, fifo_depth=1, max_rows=4, max_entries=8, arith=Arith(max_cols=3))
    # Columns hold 3, 1, 1 entries. T taken, M N->FIFO, R FIFO head, F fire, Q pop, H head->A,
    # X A->B, C walker takes.
    #   c0: T=0 M=1 R=2 F=2 Q=3 H=4 X=5 C=6, issues 7..9
    #   c1: T=1 M=2 R=3, queue full until the pop at 3 -> F=4 (stall 1), Q=5 H=6 X=7,
    #       C=9 (walker busy), issue 10
    #   c2: T=2 M=3 R=5 F=6 (stall 1) Q=7 H=8 X=9 C=10, issue 11; drained 11+6 = 17, done 18 -> 19 cycles
    w = np.array([[1, 1, 1], [1, 0, 0], [1, 0, 0]])
    p = simulate_vector(w, [1, 1, 1], cfg)
    assert (p["cycles"], p["busy"].tolist(), p["stall"].tolist()) == (19, [5], [2])
    assert p["total_cycles"] == 19 + 3 + 1
    # An empty column never reaches the PE: c0 issues 7..9; c1 fires at 3, pushes nothing;
    # c2: T=2 M=3 R=4 F=4 Q=5 H=6 X=7 C=9, issue 10 -> drained 16, done 17 -> 18 cycles, no stall
    w = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 1]])
    p = simulate_vector(w, [1, 1, 1], cfg)
    assert (p["cycles"], p["busy"].tolist(), p["stall"].tolist()) == (18, [4], [0])
    assert predict_cycles(w, [0, 0, 0], cfg) == 5  # all zeros: 3 elements, drained, done
    # Scanning front end, 4 wide: the three columns are one word, its non-zeros step one per
    # cycle into the output register O (S = 0, 1, 2) and reach N one cycle later (T = 1, 2,
    # 3): one cycle more than one element per word; 10 zeros are 3 words (steps 0, 1, 2), not
    # 10 elements.
    wide = cfg.with_(frontend_width=4, arith=Arith(max_cols=16))
    assert predict_cycles(w, [1, 1, 1], wide) == 19
    assert predict_cycles(np.zeros((1, 10), dtype=int), np.zeros(10, dtype=int), wide) == 5
    assert predict_cycles(np.zeros((1, 10), dtype=int), np.zeros(10, dtype=int), wide.with_(frontend_width=1)) == 12
    # Non-zeros at columns 1 and 9 (words 0 and 2): S = 0 and 2 (word 1 passes at 1), T = 1, 3.
    one = np.zeros((1, 10), dtype=int)
    one[0, 9] = 1
    x = np.zeros(10, dtype=int)
    x[[1, 9]] = 1
    # c9: T=3 M=4 R=5 F=5 Q=6 H=7 X=8 C=9, issues 10 -> drained 16, done 17 -> 18 cycles
    assert predict_cycles(one, x, wide) == 18
    assert ideal_cycles(w, [1, 0, 1], 2) == 2.0


def test_balance_permutation_evens_out_pe_loads():
    rng = np.random.default_rng(0)
    w = (rng.random((64, 40)) < rng.random((64, 1))) * rng.integers(1, 9, (64, 40))
    perm = balance_rows(w, 8)
    assert sorted(perm) == list(range(64))
    before, after = pe_loads(w, 8), pe_loads(w[perm], 8)
    assert after.max() - after.min() < before.max() - before.min()
    assert after.max() <= before.max()
    x = rng.integers(-9, 9, 40)
    np.testing.assert_array_equal(unpermute(w[perm] @ x, perm), w @ x)


# Verilator -Wall on Amaranth's Verilog: these classes are artefacts of the code generator, not of
# the design: DECLFILENAME (lint() names the file <top>-<pid>.v), PROCASSINIT (reset values are
# declaration initialisers), WIDTHEXPAND/WIDTHTRUNC (Yosys relies on Verilog's context-determined
# widths; Amaranth defines the arithmetic), UNUSEDSIGNAL (bits of intermediate `$n` wires and of
# flattened port aliases), CASEINCOMPLETE (Yosys emits `casez` after a default assignment).
# Everything else (latches, multi-driven signals, combinational loops, blocking/non-blocking
# mix-ups...) must stay clean.
WAIVERS = ["-Wno-DECLFILENAME", "-Wno-PROCASSINIT", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
           "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE"]


@pytest.mark.parametrize("codebook", [False, True])
def test_lint_clean(codebook):
    # the codebook build also has the scanning front end (8 wide)
    cfg = SMALL.with_(n_pes=2 if codebook else 4, arith=Arith(max_cols=16, requant=Requant(3)), codebook=codebook,
                      frontend_width=8 if codebook else 1)
    lint(EIEArray(cfg), toplevel="eie_array", waivers=WAIVERS)


def test_pair_buffer_is_a_two_word_syncfifo_and_announces_its_head():
    from amaranth import Module
    from amaranth.lib.fifo import SyncFIFO
    from rtl.common.pair import PairBuffer
    top = Module()
    ref = top.submodules.ref = SyncFIFO(width=8, depth=2)
    dut = top.submodules.dut = PairBuffer(8)
    seen = []
    announced = []

    async def bench(ctx):
        rng = random.Random(5)
        head = None  # (head_next) announced at the last edge
        kept = None  # the head before the last edge, if it was not read then
        for i in range(600):
            w_en, r_en = rng.random() < 0.6, rng.random() < 0.5
            for f in (ref, dut):
                ctx.set(f.w_en, w_en); ctx.set(f.r_en, r_en); ctx.set(f.w_data, i & 0xFF)
            got = [tuple(ctx.get(s) for s in (f.w_rdy, f.r_rdy)) for f in (ref, dut)]
            assert got[0] == got[1], (i, got)
            if got[0][1]:
                assert ctx.get(ref.r_data) == ctx.get(dut.r_data)
                seen.append(r_en)
            if head is not None:  # head_load/head_next said what the head would become
                assert got[1][1] and ctx.get(dut.r_data) == head, i
                announced.append(head)
            elif got[1][1]:  # a head that was not announced is the one that was kept
                assert kept is not None and ctx.get(dut.r_data) == kept, i
            head = ctx.get(dut.head_next) if ctx.get(dut.head_load) else None
            kept = ctx.get(dut.r_data) if got[1][1] and not r_en else None
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert sum(seen) > 150  # the comparison covered many reads
    assert len(announced) > 150


@pytest.mark.parametrize("k,depth", [(1, 1), (4, 2), (1, 8)])
def test_array_wide_timing_is_cycle_exact(k, depth):
    """``wide_timing`` (the build of arrays over 16 PEs) forced on a small array, every mirrored
    flag asserted (landing words find room, the registered idle equals the stages, the bank and
    row copies what they copy): results equal the golden model, ``cycles`` the cycle model; queues of depth 1
    (SyncFIFO), 2 (PairBuffer) and 8 under dense and sparse vectors."""
    print("seed 13")
    rng = np.random.default_rng(13)
    cfg = SMALL.with_(frontend_width=k, fifo_depth=depth, wide_timing=True)
    w = rng.integers(-128, 128, (10, 14)) * (rng.random((10, 14)) < 0.5)
    w[:, 3] = 0  # a column no PE holds
    xs = [rng.integers(-3000, 3000, 14) * (rng.random(14) < p) for p in (0.0, 0.3, 1.0)]
    cyc = []
    y = _array_run(EIEArray(cfg, checks=True), load_words(encode(w, cfg), cfg), xs, 10, cyc)
    np.testing.assert_array_equal(y, w @ np.array(xs).T)
    assert cyc == [predict_cycles(w, x, cfg) for x in xs]
