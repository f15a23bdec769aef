"""The regression's random and corner cases, shared by the tests and the mutation screen.

``tests/test_eie_array.py``, ``tests/test_sparse24_engine.py``, ``tests/test_native.py`` and
:mod:`verif.mutation` draw their matrices and vectors from here, so the mutation screen
measures the cases the regression runs (same generators, same seeds give the same cases).
"""
from __future__ import annotations

import itertools

import numpy as np

from model.hw.config import EIEConfig, Requant
from model.hw.cyclemodel import simulate_vector

PAIRS = list(itertools.combinations(range(4), 2))
BACKPRESSURE_SEED = 31  # lane_backpressure_cases in the regression and the screen (2:4; dense: + 1)
OVERLONG_SEED = 41  # input past the matrix's columns, likewise


# ---- EIE array ---------------------------------------------------------------------------
def random_jobs(rng, cfg: EIEConfig, count: int, batch: int = 3) -> list:
    """``count`` random (weights, x) jobs of random shape, density and input sparsity."""
    jobs = []
    lo, hi = cfg.arith.weight_range
    alo, ahi = cfg.arith.act_range
    for _ in range(count):
        r, c = int(rng.integers(1, cfg.max_rows + 1)), int(rng.integers(1, cfg.max_cols + 1))
        w = rng.integers(lo, hi + 1, (r, c)) * (rng.random((r, c)) < rng.choice([0.05, 0.2, 0.5, 0.9]))
        x = rng.integers(alo, ahi + 1, (c, batch)) * (rng.random((c, batch)) < rng.choice([0.1, 0.4, 0.8, 1.0]))
        jobs.append((w, x))
    return jobs


def directed_jobs(rng, cfg: EIEConfig) -> list:
    """The EIE corner cases: empty columns, zero vectors, dense rows, padding entries, an idle
    PE, extreme values, 1x1."""
    R, C = cfg.max_rows, cfg.max_cols
    lo, hi = cfg.arith.weight_range
    alo, ahi = cfg.arith.act_range
    jobs = []
    w = rng.integers(lo, hi + 1, (R, C)) * (rng.random((R, C)) < 0.5)
    w[:, [0, 3, 4, 5, C - 1]] = 0  # empty columns, first and last included
    jobs.append((w, rng.integers(alo, ahi + 1, (C, 2))))
    jobs.append((w, np.zeros((C, 1), dtype=int)))  # all-zero activation vector
    jobs.append((rng.integers(lo, hi + 1, (R // 2, C)) | 1, rng.integers(alo, ahi + 1, (C, 2))))  # fully dense
    w = np.zeros((R, C), dtype=int)  # local-row gaps longer than max_gap: padding entries
    w[[0, R - 1], :] = rng.integers(lo, hi + 1, (2, C))
    w[R // 2, ::3] = hi
    jobs.append((w, rng.integers(alo, ahi + 1, (C, 2))))
    jobs.append((rng.integers(lo, hi + 1, (1, C)) | 1, rng.integers(alo, ahi + 1, (C, 2))))  # one row, every column
    jobs.append((rng.integers(lo, hi + 1, (max(1, cfg.n_pes - 1), 5)), rng.integers(alo, ahi + 1, (5, 2))))  # idle PE
    ext = np.where(rng.random((R // 2, C)) < 0.5, lo, hi)  # extremes: -128/127 times -32768/32767
    xe = np.stack([np.full(C, alo), np.full(C, ahi), np.where(np.arange(C) % 2, alo, ahi)], axis=1)
    jobs.append((ext, xe))
    jobs.append((np.array([[hi]]), np.array([[ahi, alo, 0]])))  # 1x1
    return jobs


def codebook_jobs(rng, cfg: EIEConfig) -> list:
    """Codebook-mode jobs ``(indices, x, None, codebook, None, index_bits)`` for an array built
    with ``cfg.codebook``: the directed and random matrices of :func:`directed_jobs` /
    :func:`random_jobs` as index patterns (so the same corners: empty columns, padding, dense,
    one row, idle PE, 1x1), each with its own codebook (the extreme weights included, so one
    build runs every layer's table), half of them encoded with a narrower relative index than
    the build's (``model.network.engines.layer_eie_config``: the per-layer width)."""
    n = 1 << cfg.codebook_bits
    lo, hi = cfg.arith.weight_range
    jobs = []
    for j, (w, x) in enumerate(directed_jobs(rng, cfg) + random_jobs(rng, cfg, 2)):
        book = np.concatenate([[0], rng.integers(lo, hi + 1, n - 1)])
        book[1:3] = (lo, hi)
        idx = np.where(np.asarray(w) != 0, rng.integers(1, n, np.shape(w)), 0)
        bits = None if j % 2 else int(rng.integers(1, cfg.index_bits + 1))
        jobs.append((idx, x, None, book, None, bits))
    return jobs


def requant_jobs(rng, n: int = 16) -> list:
    """(weights, x, Requant) jobs over the shift/ReLU range, then saturation high and low
    (n x n, 8-bit weights, 16-bit inputs)."""
    jobs = []
    # 3, 14 and 22: shift bits 1 and 4 in an unsaturated result (mutation screening found bit 1
    # unchecked: only shift 31 set it, and its results round to zero).
    for shift, relu in [(0, False), (0, True), (5, False), (9, True), (31, False), (12, False), (3, False),
                        (14, False), (22, False)]:
        w = rng.integers(-128, 128, (n, n)) * (rng.random((n, n)) < 0.6)
        x = rng.integers(-32768, 32768, (n, 3))
        jobs.append((w, x, Requant(shift, relu)))
    jobs.append((np.full((n, n), 127), np.full((n, 2), 32767), Requant(2, False)))  # saturates high
    jobs.append((np.full((n, n), -128), np.full((n, 2), 32767), Requant(1, False)))  # saturates low
    return jobs


def counter_mismatch(matrix, x, cfg: EIEConfig, cycles, busy, stall) -> str | None:
    """The first EIE counter (of a full-speed-input run) that differs from the cycle model, as
    a message; None when all agree."""
    for b in range(x.shape[1]):
        p = simulate_vector(matrix, x[:, b], cfg)
        for name, got, want in (("cycles", cycles[b], p["cycles"]), ("busy", busy[b], p["busy"].tolist()),
                                ("stall", stall[b], p["stall"].tolist())):
            if list(np.atleast_1d(got)) != list(np.atleast_1d(want)):
                return f"{name} of vector {b}: {got}, cycle model {want}"
    return None


def busy_mismatch(matrix, x, cfg: EIEConfig, busy) -> str | None:
    """``busy`` of every vector against the cycle model (it holds at any stream pacing), as a
    message; None when they agree."""
    want = [simulate_vector(matrix, x[:, b], cfg)["busy"].tolist() for b in range(x.shape[1])]
    got = [list(b) for b in busy]
    return None if got == want else f"busy {got}, cycle model {want}"


def vector_counter_mismatch(vectors, done: int) -> str | None:
    """The EIE ``vectors`` counter read after each vector of a job, against ``done`` earlier
    vectors of the run plus one per vector; None when it counts right."""
    want = list(range(done + 1, done + len(vectors) + 1))
    return None if list(vectors) == want else f"vector counter {list(vectors)}, expected {want}"


# ---- 2:4 and dense lane engines ------------------------------------------------------------
def random_24(rng, rows: int, cols: int, wb: int = 8) -> np.ndarray:
    """A 2:4 matrix whose groups hold 0, 1 or 2 non-zeros at random positions."""
    lo, hi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    w = rng.integers(lo, hi + 1, (rows, cols // 4, 4))
    for r in range(rows):
        for g in range(cols // 4):
            keep = rng.choice(4, size=rng.integers(0, 3), replace=False)
            mask = np.zeros(4, bool)
            mask[keep] = True
            w[r, g, ~mask] = 0
    return w.reshape(rows, cols)


def corner_matrix() -> np.ndarray:
    """Rows: all kept weights zero; each of the six position pairs at the extremes; -128 on
    every kept slot; a row that is dense in every other group (32 columns)."""
    C = 32
    rows = [np.zeros(C, int)]
    for p0, p1 in PAIRS:  # adjacent (0,1) (1,2) (2,3) and apart (0,2) (0,3) (1,3)
        row = np.zeros((C // 4, 4), int)
        row[:, p0], row[:, p1] = -128, 127
        rows.append(row.reshape(C))
    rows.append(np.tile([-128, 0, -128, 0], C // 4))
    rows.append(np.tile([0, 0, 0, 0, 1, -1, 0, 0], C // 8))
    return np.array(rows)


def corner_inputs(act_range: tuple[int, int] = (-32768, 32767)) -> np.ndarray:
    """Four 32-element vectors: all minimum, all maximum, alternating, a ramp through zero."""
    lo, hi = act_range
    return np.stack([np.full(32, lo), np.full(32, hi), np.tile([lo, hi], 16), np.arange(32) - 16], axis=1)


def lane_backpressure_cases(rng, dense: bool = False, rows: int = 16, cols: int = 32) -> list:
    """Input at full speed, a slow ``y`` consumer: the result queues fill to their depth while
    the lanes keep computing. Shifts set each bit of the 5-bit register (0..24), so the high
    accumulator bits reach a result unsaturated; ReLU on and off. Found by mutation screening: the random
    cases (all streams at one pacing) never filled the queues' deeper entries nor used shift
    bits 3 and 4. Returns ``(weights, x, shift, relu, out_pacing, seed)`` tuples."""
    def weights(r, c):
        return rng.integers(-128, 128, (r, c)) if dense else random_24(rng, r, c)

    out = []
    # Shapes too: row counts around one and two blocks of lanes, column counts that set each
    # bit of the cols register (the sequencer's group counts and flags are derived from them).
    for k, (shift, relu, amp, out_p, batch, r, c) in enumerate([
            (0, False, 6, 0.15, 4, rows, cols), (6, True, 600, 0.2, 4, 5, 12), (12, False, 32768, 0.25, 4, 13, 24),
            (17, False, 32768, 0.15, 4, 4, 8), (24, True, 32768, 0.3, 4, 11, 28), (20, False, 32768, 0.2, 4, 7, 20),
            (9, False, 32768, 0.6, 40, rows, 16),  # 40 vectors: the vector counter's and timestamps' higher bits
            (10, False, 32768, 0.05, 12, rows, cols),  # every queue full, every timestamp slot in use
            # Full queues again, at shift 0 with results unsaturated: every bit of the entries
            # behind the head reaches an output (dense mutant 84, round 3: entry 2's bit 6).
            (0, False, 6, 0.05, 12, rows, cols)]):
        x = rng.integers(-amp, amp, (c, batch))
        x[:, 0] = -amp if k % 2 else amp - 1  # one vector at an extreme: the high accumulator bits
        out.append((weights(min(r, rows), min(c, cols)), x[:min(c, cols)], shift, relu, out_p, k))
    return out


def overlong(x, length: int, rng) -> np.ndarray:
    """``x`` (C, B) extended to ``length`` rows with random non-zero elements: input past the
    matrix's columns, which the engines drop (``rtl/eie/nonzero.py`` ``cols``, the lane engines
    past ``max_cols``). The result must equal the matrix times ``x`` alone. Found by mutation
    screening: the host never sends such input, so nothing checked the dropping."""
    x = np.asarray(x)
    extra = rng.integers(1, 1000, (length - x.shape[0], x.shape[1])) * rng.choice([-1, 1], (length - x.shape[0], 1))
    return np.concatenate([x, extra]).astype(np.int64)


def overlong_jobs(cfg) -> list:
    """EIE jobs for input past the matrix's columns: a narrow and a full-width matrix."""
    rng = np.random.default_rng(OVERLONG_SEED)
    w = rng.integers(-128, 128, (cfg.max_rows, cfg.max_cols)) * (rng.random((cfg.max_rows, cfg.max_cols)) < 0.5)
    x = rng.integers(-32768, 32768, (cfg.max_cols, 2))
    return random_jobs(rng, cfg, 2) + [(w[:, :cfg.max_cols // 2], x[:cfg.max_cols // 2]), (w, x)]


def lane_overlong_case(rows: int = 16, cols: int = 32, extra: int = 5) -> tuple:
    """Lane engines: ``(weights, x, x extended past max_cols)``. Full height, so a vector's
    compute outlasts the next vector's input and the dropped elements would land in the buffer
    still being read."""
    rng = np.random.default_rng(OVERLONG_SEED)
    w, x = random_24(rng, rows, cols), rng.integers(-32768, 32768, (cols, 4))
    # Every row reads column 0: dropped input that landed on the other buffer's group 0 (2:4
    # mutant 84, found by mutation screening) would change every row, not only some.
    for r in range(rows):
        w[r, 1 + np.flatnonzero(w[r, 1:4])[1:]] = 0  # at most one other non-zero in group 0
    w[:, 0] = np.where(np.arange(rows) % 2, 77, -91)
    return w, x, overlong(x, cols + extra, rng)


# ---- many vectors: the vector counter's higher bits -----------------------------------------
MANY_VECTORS_SEED = 51
MANY_VECTORS = 4100  # > 2^12: the vector counter's bits 0..12 each move


def many_vectors_case(cols: int = 4, count: int = MANY_VECTORS) -> tuple:
    """``(weights (2, cols), x (cols, count))``: a tiny matrix and thousands of vectors, so
    the vector counter (``vectors``, 32 bits) counts past 2^12 in one run. Found by mutation
    screening: the regression's batches of at most 40 vectors never set bit 6 and up.
    2:4-valid (one non-zero per group), so it serves every engine."""
    rng = np.random.default_rng(MANY_VECTORS_SEED)
    w = np.zeros((2, cols), dtype=int)
    w[0, ::4], w[1, 1::4] = 3, -2
    return w, rng.integers(-100, 100, (cols, count))


# ---- cases the mutation screen asked for (round 3) ------------------------------------------
LONG_RUN_SEED = 61


def requant_window_case() -> tuple:
    """``(weights (6, 4), x (4, 2))`` whose results, at shift 0 without ReLU, land on each side
    of the 16-bit saturation limits: -32769..-32736 and 32736..32769. Found by mutation
    screening: a saturation compare against -32736 instead of -32768 (2:4 mutant 30) went
    unnoticed, no case had a result in -32767..-32737. 2:4-valid, so it serves every engine."""
    k = np.array([-27, 0, 3, 4, -28, -29])  # -32740 + k: -32767, -32740, -32737, -32736, -32768, -32769
    w = np.zeros((len(k), 4), dtype=int)
    w[:, 0], w[:, 1] = 1, k
    x = np.array([[-32740, 32740], [1, -1], [0, 0], [0, 0]])
    return w, x


def registers_first(program: list[int]) -> list[int]:
    """A lane load program (``load_program``: weights, then ROWS, COLS, SHIFT, RELU) with its
    register writes reordered to SHIFT, RELU, ROWS, COLS. Any order is legal; found by mutation
    screening: a COLS write that also wrote SHIFT (dense mutant 102) was repaired by the SHIFT
    write that always came after it."""
    return list(program[:-4]) + list(program[-2:]) + list(program[-4:-2])


def registers_first_case() -> tuple:
    """``(weights (5, 12), x (12, 3))`` for a :func:`registers_first` program (shift 3)."""
    rng = np.random.default_rng(LONG_RUN_SEED)
    return random_24(rng, 5, 12), rng.integers(-300, 300, (12, 3))


def narrow_dense_cases(rng) -> list:
    """``(weights, x)`` dense matrices of one and two columns (one pair per row: a row ends in
    the group it starts, so the lane sees ``last`` in idle cycles), several rows and vectors;
    run with idle cycles between groups (paced input, slow consumer). Found by mutation
    screening: dense mutants 63 and 113 turn an idle cycle into a valid group, which only a
    one-group row shows."""
    return [(rng.integers(-128, 128, (5, 2)), rng.integers(-30000, 30000, (2, 4))),
            (rng.integers(-128, 128, (4, 1)), rng.integers(-30000, 30000, (1, 3)))]


def lane_sequence_cases(rng, dense: bool) -> dict:
    """Multi-job runs of the lane engines (one harness run, no reset between the jobs), as
    lists of ``(weights, x, load)`` (``load`` False: no program, the registers as they are).
    Found by mutation screening:

    * ``"from reset"``: a vector straight from reset with no program (the build's registers:
      ``max_rows`` x ``max_cols``, weights as initialised), then a normal job (2:4 mutant 196:
      a register's reset value that every program rewrote).
    * ``"idle gaps"``: seven vectors, each sent after the previous one's last result, so each
      vector's start time comes from its own timestamp slot (2:4 mutants 2 and 118: slots out of
      step, hidden whenever vectors overlap). Lane timing does not depend on the data, so
      every vector's ``cycles`` must be equal.
    * ``"one row, then more"``: two vectors of a one-row matrix, then a three-row matrix
      (dense mutant 133: lane 1 computed junk rows into its queue while ``rows = 1``)."""
    def weights(r, c):
        return rng.integers(-128, 128, (r, c)) if dense else random_24(rng, r, c)

    w = weights(7, 12)
    gaps = [(w, rng.integers(-2000, 2000, (12, 1)), i == 0) for i in range(7)]
    return {
        "from reset": [(None, rng.integers(-2000, 2000, (32, 2)), False),
                       (weights(5, 8), rng.integers(-2000, 2000, (8, 2)), True)],
        "idle gaps": gaps,
        "one row, then more": [(weights(1, 8), rng.integers(-2000, 2000, (8, 2)), True),
                               (weights(3, 8), rng.integers(-2000, 2000, (8, 3)), True)],
    }


def lane_sequence_mismatch(results, jobs, same_cycles=False) -> str | None:
    """The regression's checks of a lane multi-job run (the counters run on across jobs): one
    ``cycles`` entry per vector, ``vectors`` counting every vector so far and, with
    ``same_cycles``, the same ``cycles`` for every vector. None when they hold."""
    done, cycles = 0, []
    for j, (r, job) in enumerate(zip(results, jobs)):
        n_vec = len(job["x"])
        done += n_vec
        if r["vectors"] != done or len(r["cycles"]) != n_vec:
            return f"invariant: job {j}: counted {r['vectors']} vectors ({len(r['cycles'])} logged), expected {done}"
        cycles += list(r["cycles"])
    if same_cycles and len(set(cycles)) != 1:
        return f"invariant: vectors that never overlap took different cycles {cycles}"
    return None


LONG_VECTORS = (1 << 17) + (1 << 10) + 8  # the vector counter's bit 17 set while bit 10 moves


def lane_long_cases(dense: bool) -> list:
    """``(name, weights, x)`` runs long enough for the lane engines' 32-bit counters' middle
    bits: 2^17 + 2^10 vectors of a tiny matrix (``vectors`` bits up to 17, timestamps past
    2^19 cycles), and a full 16 x 32 matrix busy for over 2^21 cycles (``busy`` up to bit 21,
    timestamps past 2^21). Found by mutation screening (2:4 mutants 54, 55, 82; dense 25, 130):
    the other cases end within a few thousand cycles. Seconds each on the native harness."""
    rng = np.random.default_rng(LONG_RUN_SEED)
    w_tiny, _ = many_vectors_case()
    busy_per_vector = 6 * (32 // (2 if dense else 4))  # 6 blocks of 3 lanes x groups per row
    n_busy = (1 << 21) // busy_per_vector + 16
    w = rng.integers(-128, 128, (16, 32)) if dense else random_24(rng, 16, 32)
    return [("many vectors, 2^17", w_tiny, rng.integers(-100, 100, (4, LONG_VECTORS))),
            ("busy past 2^21 cycles", w, rng.integers(-3000, 3000, (32, n_busy)))]


LANE_IDLE_CYCLES = (1 << 25) - 64  # the jobs then cross 2^25 (and so 2^24) cycles after reset


def lane_idle_case(dense: bool) -> tuple:
    """``(weights (6, 8), x (8, 8))``, run after :data:`LANE_IDLE_CYCLES` idle cycles
    (``verif.native.run(idle=)``): the vectors' timestamps cross 2^24 and 2^25, so the
    free-running ``now`` and the times taken from it use bits 24 and 25. Every vector's
    ``cycles`` must equal those of the same run straight after reset (the time offset changes
    nothing). Found by mutation screening (dense mutants 7, 45: ``now`` and ``prev_end`` bits
    that only a run of 2^24 cycles sets)."""
    rng = np.random.default_rng(LONG_RUN_SEED + 1)
    w = rng.integers(-128, 128, (6, 8)) if dense else random_24(rng, 6, 8)
    return w, rng.integers(-3000, 3000, (8, 8))


def eie_dense_jobs(cfg) -> list:
    """EIE: the full matrix dense (every PE holds ``max_rows / n_pes x max_cols`` entries, the
    most a screened configuration allows: PE pointers past bit 7). Found by mutation screening
    (EIE mutant 198: a PE pointer bit 7 stuck at 0). With requantization in ``cfg``, the same
    matrix again at shift 0 with small inputs."""
    rng = np.random.default_rng(LONG_RUN_SEED)
    lo, hi = cfg.arith.weight_range
    alo, ahi = cfg.arith.act_range
    w = rng.integers(lo, hi + 1, (cfg.max_rows, cfg.max_cols)) | 1
    jobs = [(w, rng.integers(alo, ahi + 1, (cfg.max_cols, 2)))]
    if cfg.arith.requant is not None:
        # Small inputs at shift 0: results unsaturated in both accumulator banks, so every
        # accumulator bit reaches an output (EIE mutant 162: bit 1 of a bank's write data; the
        # requant layers' shift-0 results all saturate).
        jobs.append((w, rng.integers(-300, 300, (cfg.max_cols, 4)), Requant(0, False)))
    return jobs


# ---- block-sparse (BSR) engine ---------------------------------------------------------------
BSR_SEED = 61


def bsr_matrix(rng, rows: int, cols: int, block: int, density: float, wb: int = 8) -> np.ndarray:
    """Random blocks at block density ``density``, a tenth of a kept block's weights zero."""
    from model.hw.formats.bsr import random_blocks
    return random_blocks(rng, rows, cols, block, density, wb, fill=0.9)


def bsr_jobs(cfg, random: int = 4) -> list:
    """``(weights, x, Requant)`` jobs for the BSR engine ``cfg``: ``random`` of random shape and
    block density, then the corners: empty block rows (first, middle, last), an all-zero
    matrix (every block row empty), a fully dense matrix, one non-zero block, 1x1, extreme
    values (every product at its limit), a partial last block row and block column."""
    rng = np.random.default_rng(BSR_SEED + cfg.block)
    b, R, C = cfg.block, cfg.max_rows, cfg.max_cols
    lo, hi = cfg.arith.weight_range
    alo, ahi = cfg.arith.act_range
    jobs = []

    def vec(c, n=2):
        return rng.integers(alo, ahi + 1, (c, n))

    for _ in range(random):
        r, c = int(rng.integers(1, R + 1)), int(rng.integers(1, C + 1))
        shift, relu = int(rng.integers(0, 24)), bool(rng.integers(0, 2))
        jobs.append((bsr_matrix(rng, r, c, b, rng.choice([0.25, 0.5, 0.75])), vec(c, 3), Requant(shift, relu)))
    w = bsr_matrix(rng, R, C, b, 0.6)
    w[:b], w[R // 2 - R // 2 % b:][:b], w[-b:] = 0, 0, 0  # empty block rows: first, middle, last
    jobs.append((w, vec(C), Requant(6, False)))
    jobs.append((np.zeros((R, C), dtype=int), vec(C), Requant(0, False)))
    jobs.append((rng.integers(lo, hi + 1, (R, C)) | 1, vec(C), Requant(14, True)))  # fully dense
    one = np.zeros((R, C), dtype=int)
    one[b:2 * b, C - b:] = rng.integers(lo, hi + 1, (b, b))
    jobs.append((one, vec(C), Requant(3, False)))
    jobs.append((np.array([[hi]]), np.array([[ahi, alo, 0]]), Requant(0, False)))  # 1x1
    ext = np.where(rng.random((R, C)) < 0.5, lo, hi)
    xe = np.stack([np.full(C, alo), np.full(C, ahi), np.where(np.arange(C) % 2, alo, ahi)], axis=1)
    jobs.append((ext, xe, Requant(31, False)))
    jobs.append((ext, xe, Requant(20, True)))
    jobs.append((bsr_matrix(rng, R - 1, C - 1, b, 0.5), vec(C - 1), Requant(9, False)))  # partial blocks
    return jobs
