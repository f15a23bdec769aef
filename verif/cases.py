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
            (10, False, 32768, 0.05, 12, rows, cols)]):  # every queue full, every timestamp slot in use
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
