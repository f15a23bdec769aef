"""The 2:4 engine on Icarus and Verilator, bit-exact against model.hw.reference (run_spmv scores
every result), with random idle on ``x``/``load`` and back-pressure on ``y``; plus elaboration,
constructor, lint and host-side validation checks that need no simulator."""
import gc
from pathlib import Path

import numpy as np
import pytest

from model.hw.config import Arith, Requant, Sparse24Config
from model.errors import SparseFlowError
from model.hw.formats import nm
from rtl.common.config import build_config
from rtl.sparse24.engine import Sparse24Engine
from verif.cases import corner_inputs, corner_matrix, random_24  # noqa: F401 (test_native)
from verif.runner import SIMULATORS, lint, to_verilog
from verif.spmv_sparse24 import make_engine, run_spmv, simulate_engine

# Constructor-error tests leave half-built components behind; Amaranth warns when they are
# collected, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

# One build per simulator serves every case below (shift/ReLU are run-time registers).
CFG = Sparse24Config(lanes=3, arith=Arith(weight_bits=8, act_bits=16, max_cols=32, requant=Requant(4, True)),
                     max_rows=16)

# Verilator -Wall on Amaranth's Verilog: these classes are artefacts of the code generator, not
# of the design: DECLFILENAME (lint() names the file <top>-<pid>.v), PROCASSINIT (reset values
# are emitted as declaration initialisers), WIDTHEXPAND/WIDTHTRUNC (Yosys relies on Verilog's
# context-determined widths; Amaranth defines the arithmetic), UNUSEDSIGNAL (intermediate `$n`
# wires and library FIFO/memory outputs the design does not read), CASEINCOMPLETE (Yosys emits
# `casez` after a default assignment).
WAIVERS = ["-Wno-DECLFILENAME", "-Wno-PROCASSINIT", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
           "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE"]


def with_requant(shift, relu, cfg=CFG):
    return cfg.with_(arith=Arith(cfg.arith.weight_bits, cfg.arith.act_bits, max_cols=cfg.max_cols,
                                 requant=Requant(shift, relu)))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_random_matrices_with_stalls(sim):
    rng = np.random.default_rng(11)
    w = random_24(rng, 13, 32)  # 13 rows: a partial last block of 3 lanes
    x = rng.integers(-32768, 32768, (32, 4))
    out = run_spmv(w, x, with_requant(6, True), sim=sim, pacing=0.5, seed=1)
    assert out["y"].shape == (13, 4) and out["engine"] == "2:4"
    # Same build, other layer: raw-ish shift, no ReLU, a smaller matrix, other stalls.
    w2 = random_24(rng, 5, 16)
    x2 = rng.integers(-300, 300, (16, 3))
    out2 = run_spmv(w2, x2, with_requant(1, False), sim=sim, pacing=0.7, seed=2)
    assert Path(out2["run_dir"]).parent.parent == Path(out["run_dir"]).parent.parent
    assert np.any(out2["y"] < 0)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_directed_corners_full_speed(sim):
    w = corner_matrix()
    x = corner_inputs()
    # shift 0, no ReLU: most results saturate at both int16 limits.
    out = run_spmv(w, x, with_requant(0, False), sim=sim, pacing=1.0)
    lo, hi = CFG.arith.act_range
    assert (out["y"] == lo).any() and (out["y"] == hi).any()
    assert (out["y"][0] == 0).all()
    # Full speed: every group is issued exactly once, 3 rows in parallel.
    assert out["busy"] == x.shape[1] * -(-w.shape[0] // CFG.lanes) * (w.shape[1] // 4)
    # Back-to-back vectors: the per-vector counter adds up to first-input-to-last-output.
    assert sum(out["cycles"]) == out["total_cycles"]
    # Steady state: the slower of streaming the vector in (cols cycles) and computing it.
    assert out["cycles"][1] == max(w.shape[1], -(-w.shape[0] // CFG.lanes) * (w.shape[1] // 4))


def test_full_size_and_minimal_matrices_icarus():
    rng = np.random.default_rng(5)
    run_spmv(random_24(rng, CFG.max_rows, CFG.max_cols), rng.integers(-999, 999, (32, 2)), CFG,
             sim="icarus", pacing=0.6, seed=3)
    out = run_spmv([[0, 5, 0, -7]], [1, 2, 3, 4], with_requant(0, False), sim="icarus", pacing=0.8)
    assert out["y"].tolist() == [[10 - 28]]


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_raw_accumulator_without_requant(sim):
    cfg = Sparse24Config(lanes=2, arith=Arith(weight_bits=8, act_bits=8, max_cols=16), max_rows=8)
    rng = np.random.default_rng(3)
    w = random_24(rng, 7, 16)
    w[0, :4] = [-128, 0, 0, -128]
    x = rng.integers(-128, 128, (16, 3))
    x[:, 0] = -128
    out = run_spmv(w, x, cfg, sim=sim, pacing=0.5)
    assert out["y"][0, 0] == 2 * 128 * 128 + int(w[0, 4:] @ x[4:, 0])


def test_weights_initialised_at_elaboration_icarus():
    """FPGA builds: no weight loading, registers reset to the init matrix and the config."""
    rng = np.random.default_rng(8)
    w = random_24(rng, 7, 20)
    x = rng.integers(-2000, 2000, (20, 2))
    eng = Sparse24Engine(CFG, init=nm.encode(w, 8))
    out = simulate_engine(eng, [], x, 7, sim="icarus", toplevel="sparse24_init", pacing=0.7)
    from model.hw.reference import layer
    assert (out["y"] == layer(w, x, CFG.arith)).all()


def test_requant_values_do_not_change_the_verilog():
    a = to_verilog(make_engine(with_requant(3, True)), "e")
    b = to_verilog(make_engine(with_requant(9, False)), "e")
    assert a == b
    assert build_config(with_requant(9, False)) == build_config(CFG)


def test_verilog_is_lint_clean():
    lint(make_engine(CFG), toplevel="sparse24_engine", waivers=WAIVERS)


def test_constructor_errors():
    with pytest.raises(SparseFlowError, match=r"^Sparse24Engine needs a Sparse24Config, not 3$"):
        Sparse24Engine(3)
    with pytest.raises(SparseFlowError, match=r"^Sparse24Engine init must be an NMMatrix, not ndarray$"):
        Sparse24Engine(CFG, init=np.zeros((4, 4), int))
    with pytest.raises(SparseFlowError, match=r"^init matrix is 17x8; the configuration allows 16x32$"):
        Sparse24Engine(CFG, init=nm.encode(np.zeros((17, 8), int), 8))
    gc.collect()  # the half-built engines warn now, under this module's filter


def test_host_validation_errors():
    good = np.zeros((4, 8), int)
    with pytest.raises(SparseFlowError, match=r"^matrix is not 2:4: row 1, columns 4..7 hold 3 non-zeros"):
        bad = good.copy()
        bad[1, 4:7] = 1
        run_spmv(bad, np.zeros(8, int), CFG)
    with pytest.raises(SparseFlowError, match=r"^a 2:4 matrix needs a multiple of 4 columns, got 6$"):
        run_spmv(np.zeros((2, 6), int), np.zeros(6, int), CFG)
    with pytest.raises(SparseFlowError, match=r"^shape mismatch: weights are 4x8 but the input has 7 rows$"):
        run_spmv(good, np.zeros(7, int), CFG)
    with pytest.raises(SparseFlowError, match=r"^weights have 17 rows; the configuration allows 16$"):
        run_spmv(np.zeros((17, 8), int), np.zeros(8, int), CFG)
    with pytest.raises(SparseFlowError, match=r"^input\[3\] = 40000 is out of range for 16-bit signed"):
        run_spmv(good, [0, 0, 0, 40000, 0, 0, 0, 0], CFG)
    with pytest.raises(SparseFlowError, match=r"^pacing must be in \(0, 1\], not 0$"):
        run_spmv(good, np.zeros(8, int), CFG, pacing=0)
    with pytest.raises(SparseFlowError, match=r"^unknown simulator 'xsim'; choose one of icarus, verilator$"):
        run_spmv(good, np.zeros(8, int), CFG, sim="xsim")


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("dense", [False, True])
def test_random_sweep(sim, dense):
    """Many shapes, layers and stall rates through one build per engine."""
    rng = np.random.default_rng(100 + dense)
    for i in range(8):
        rows, cols = int(rng.integers(1, 17)), 4 * int(rng.integers(1, 9))
        w = random_24(rng, rows, cols)
        x = rng.integers(-32768, 32768, (cols, int(rng.integers(1, 5))))
        cfg = with_requant(int(rng.integers(0, 20)), bool(rng.integers(0, 2)))
        run_spmv(w, x, cfg, sim=sim, dense=dense, pacing=float(rng.choice([0.3, 0.6, 1.0])), seed=i)


def test_scoreboard_catches_a_wrong_result(monkeypatch):
    import verif.spmv_sparse24 as host
    rng = np.random.default_rng(9)
    w = random_24(rng, 4, 8)
    monkeypatch.setattr(host, "layer", lambda w, x, arith: np.zeros((4, 1), np.int64) + 12345)
    with pytest.raises(RuntimeError, match=r"^RTL mismatch \(2:4 engine, icarus\): y\[0, 0\] = .*, golden 12345 "):
        host.run_spmv(w, rng.integers(-9, 9, 8), CFG, sim="icarus")


@pytest.mark.parametrize("dense", [False, True])
def test_back_pressure_fills_the_result_queues(dense):
    """A slow consumer with the input at full speed, shifts 0..24 (cases from
    verif.cases.lane_backpressure_cases, added after mutation screening found the result
    queues' deeper entries and shift bits 3-4 unchecked). Native: one build serves them all."""
    from verif.cases import lane_backpressure_cases
    from verif.cases import BACKPRESSURE_SEED
    seed = BACKPRESSURE_SEED + dense
    print(f"seed {seed}")
    lo, hi = CFG.arith.act_range
    for w, x, shift, relu, out_p, s in lane_backpressure_cases(np.random.default_rng(seed), dense):
        out = run_spmv(w, x, with_requant(shift, relu), sim="verilator", backend="native", dense=dense,
                       pacing=1.0, out_pacing=out_p, seed=s)
        y = out["y"]
        assert ((y > lo) & (y < hi) & (y != 0)).any(), shift  # results neither all saturated nor all zero
        if s == 0:  # the same stalls on the cocotb testbench: identical results and counters
            coc = run_spmv(w, x, with_requant(shift, relu), sim="icarus", dense=dense, pacing=1.0,
                           out_pacing=out_p, seed=s)
            for k in ("y", "cycles", "total_cycles", "busy"):
                assert np.array_equal(np.asarray(out[k]), np.asarray(coc[k])), k


@pytest.mark.parametrize("dense", [False, True])
def test_input_past_max_cols_is_dropped(dense):
    """Elements past ``max_cols`` are dropped (rtl/common/lanes.py): the result is the matrix
    times the first ``cols`` elements (a case the mutation screen asked for)."""
    from model.hw.reference import layer
    from verif.cases import OVERLONG_SEED, lane_overlong_case
    print(f"seed {OVERLONG_SEED}")
    w, x, long_x = lane_overlong_case()
    cfg = with_requant(9, False)
    eng = make_engine(cfg, dense)
    program = eng.load_program(w if dense else nm.encode(w, 8), cfg.arith.requant)
    out = simulate_engine(eng, program, long_x, w.shape[0], sim="verilator", backend="native",
                          toplevel="dense_engine" if dense else "sparse24_engine")
    assert (out["y"] == layer(w, x, cfg.arith)).all()
    assert (layer(w, long_x[:CFG.max_cols], cfg.arith) == out["y"]).all() and long_x.shape[0] > CFG.max_cols


@pytest.mark.parametrize("dense", [False, True])
def test_vector_counter_over_many_vectors(dense):
    """4100 vectors in one run: ``vectors`` ends at the batch size (run_spmv checks it) and
    logs one step per vector, so its bits up to 12 move (verif.cases.many_vectors_case, added
    after mutation screening)."""
    from verif.cases import MANY_VECTORS, MANY_VECTORS_SEED, many_vectors_case
    print(f"seed {MANY_VECTORS_SEED}")
    w, x = many_vectors_case()
    out = run_spmv(w, x, with_requant(0, False), sim="verilator", backend="native", dense=dense)
    assert len(out["cycles"]) == MANY_VECTORS and out["y"].shape == (2, MANY_VECTORS)


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("dense", [False, True])
def test_cases_from_mutation_screening(sim, dense):
    """Cases added after mutation screening (round 3; verif.cases, the screen runs them too):
    results at the saturation limits' edges (2:4 mutant 30), a program that writes SHIFT and
    RELU before ROWS and COLS (dense 102), and for dense one- and two-column matrices with idle
    cycles between groups (dense 63, 113)."""
    from model.hw.reference import layer
    from verif.cases import (LONG_RUN_SEED, narrow_dense_cases, registers_first, registers_first_case,
                             requant_window_case)
    print(f"seed {LONG_RUN_SEED}")
    w, x = requant_window_case()
    y = run_spmv(w, x, with_requant(0, False), sim=sim, dense=dense)["y"]
    assert {-32768, -32767, -32737, -32736}.issubset(y[:, 0]) and {32767, 32737, 32736}.issubset(y[:, 1])
    w, x = registers_first_case()
    cfg = with_requant(3, False)
    eng = make_engine(cfg, dense)
    program = registers_first(eng.load_program(w if dense else nm.encode(w, 8), cfg.arith.requant))
    out = simulate_engine(eng, program, x, 5, sim=sim, pacing=0.8, toplevel="dense_engine" if dense else "sparse24_engine")
    assert (out["y"] == layer(w, x, cfg.arith)).all()
    if dense:
        for w, x in narrow_dense_cases(np.random.default_rng(LONG_RUN_SEED)):
            run_spmv(w, x, with_requant(2, False), sim=sim, dense=True, pacing=0.4, out_pacing=0.5)


@pytest.mark.parametrize("dense", [False, True])
def test_job_sequences_without_reset(dense):
    """Several jobs in one run, no reset between them (verif.cases.lane_sequence_cases, added
    after mutation screening): a vector straight from reset with no program, vectors with idle
    gaps between them (equal ``cycles`` each), a one-row matrix then a three-row one. Native:
    the cocotb testbench runs one program per simulation."""
    from verif import native
    from verif.cases import LONG_RUN_SEED, lane_sequence_cases, lane_sequence_mismatch
    from verif.spmv_sparse24 import sequence_jobs, toplevel_name
    print(f"seed {LONG_RUN_SEED}")
    eng = make_engine(CFG, dense)
    exe = native.build(eng, toplevel=toplevel_name(dense), eie=False)
    for name, parts in lane_sequence_cases(np.random.default_rng(LONG_RUN_SEED), dense).items():
        jobs, golden, quiet = sequence_jobs(eng, parts)
        results, _ = native.run(exe, jobs, out_bits=16, eie=False, watchdog=quiet)
        for r, g in zip(results, golden):
            np.testing.assert_array_equal(r["y"], g, err_msg=name)
        assert lane_sequence_mismatch(results, jobs, same_cycles=name == "idle gaps") is None, name
        if name == "from reset":  # full speed: every group of the reset shape issued once
            groups = CFG.max_cols // eng.GROUP
            assert results[0]["busy"] == 2 * -(-CFG.max_rows // CFG.lanes) * groups


@pytest.mark.slow
@pytest.mark.parametrize("dense", [False, True])
def test_long_runs_move_the_counters_middle_bits(dense):
    """2^17 + 2^10 vectors, and over 2^21 busy cycles (verif.cases.lane_long_cases, added after
    mutation screening): results exact, ``vectors`` and ``busy`` right at those widths."""
    from verif.cases import LONG_RUN_SEED, lane_long_cases
    print(f"seed {LONG_RUN_SEED}")
    for name, w, x in lane_long_cases(dense):
        out = run_spmv(w, x, with_requant(0, False), sim="verilator", backend="native", dense=dense)
        assert len(out["cycles"]) == x.shape[1], name
        busy = x.shape[1] * -(-w.shape[0] // CFG.lanes) * (w.shape[1] // (2 if dense else 4))
        assert out["busy"] == busy and sum(out["cycles"]) == out["total_cycles"], name
    assert busy > 1 << 21


@pytest.mark.slow
@pytest.mark.parametrize("dense", [False, True])
def test_time_counters_past_2_to_the_25(dense):
    """The same vectors straight after reset and after 2^25 - 64 idle cycles (so their
    timestamps cross 2^24 and 2^25; verif.cases.lane_idle_case, added after mutation
    screening): same results, same per-vector ``cycles``."""
    from verif import native
    from verif.cases import LANE_IDLE_CYCLES, LONG_RUN_SEED, lane_idle_case
    from verif.spmv_sparse24 import sequence_jobs, toplevel_name
    print(f"seed {LONG_RUN_SEED + 1}")
    w, x = lane_idle_case(dense)
    eng = make_engine(CFG, dense)
    exe = native.build(eng, toplevel=toplevel_name(dense), eie=False)
    jobs, (golden,), quiet = sequence_jobs(eng, [(w, x, True)])
    (r0,), _ = native.run(exe, jobs, out_bits=16, eie=False, watchdog=quiet)
    (r1,), facts = native.run(exe, jobs, out_bits=16, eie=False, watchdog=quiet, idle=LANE_IDLE_CYCLES)
    for r in (r0, r1):
        np.testing.assert_array_equal(r["y"], golden)
    assert r1["cycles"] == r0["cycles"] and len(r1["cycles"]) == x.shape[1] and r1["busy"] == r0["busy"]
