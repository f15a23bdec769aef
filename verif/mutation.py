"""Mutation screening: would the regression notice if the RTL were wrong?

The engine's Verilog (with ``src`` attributes pointing at ``rtl/``) goes through Yosys
``prep -flatten``; ``mutate -list N -seed S`` picks N single-bit mutations of that netlist
(a bit inverted, stuck at 0/1, or replaced by another bit of the same cell), the way
YosysHQ's mcy does. All N are then applied into ONE netlist, each guarded by
``-ctrl mutsel W i``: mutant ``i`` is active when the new top-level input ``mutsel`` equals
``i``, and ``mutsel = 0`` is the original design. That netlist is compiled once with the native
Verilator harness (``verif.native``, ``-DSF_MUTSEL``), and every mutant is one run of the
screening set with its ``--mutsel``.

The screening set is the regression's random and corner cases (``verif.cases``, the seeds of
``tests/test_eie_array.py``, ``tests/test_sparse24_engine.py``, ``tests/test_dense_engine.py``)
with the regression's stream pacing. A mutant is

* **killed** when a result differs from the golden model (``model.hw.reference``), a counter
  differs from the cycle model (``model.hw.cyclemodel``, EIE runs with full-speed input), a counter
  breaks an invariant the regression checks (2:4/dense: vector count, busy cycles, per-vector
  cycles adding up), a counter differs from the original design's on the same run (the
  counters the models do not predict: stalled streams, the lane engines' per-vector cycles),
  or the harness reports a protocol error (``y.last`` on the wrong row, a payload changed
  while stalled);
* **timed out** when a stream stops (the harness watchdog) or the run exceeds its wall time;
* **survived** otherwise: a hole in the verification or an equivalent mutant (see
  :func:`equivalence` and docs/verification.md).

Before any mutant, ``mutsel = 0`` must pass every check (the mutated netlist without a
mutation behaves as the design: same results and counters as the original build).
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.errors import SparseFlowError

from model.hw.engines import NAMES as ENGINES  # every engine of the registry is screened
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    """One harness run of the screening set: native jobs, stream pacing, and the checks."""
    name: str
    jobs: list  # native.run jobs (load, x, rows)
    golden: list  # expected y per job, (rows, B)
    pacing: tuple  # (load, x, y)
    seeds: tuple
    watchdog: int
    check: object = None  # callable(results) -> message or None: models and invariants
    idle: int = 0  # idle cycles after reset, before the first job (verif.native.run)
    long: bool = False  # seconds per mutant: left out by target(long_runs=False)


@dataclass
class Target:
    """An engine under mutation: its component, harness mode and screening set."""
    name: str
    component: object
    toplevel: str
    eie: bool
    n_pes: int
    out_bits: int
    runs: list = field(default_factory=list)
    chunks: int = 1  # int64 per x word (verif.native.x_chunks)


# ---- the screening sets: the regression's cases ------------------------------------------
def eie_config(frontend_width: int = 1):
    """The screened EIE array: tests/test_eie_array.py's four-PE configuration with requant
    (so the requantizer is in the netlist, as in the requant test); ``frontend_width`` > 1
    screens the scanning front end."""
    from model.hw.config import Arith, EIEConfig, Requant
    return EIEConfig(n_pes=4, index_bits=2, fifo_depth=2, max_rows=24, max_entries=256,
                     arith=Arith(max_cols=24, requant=Requant(4, True)), frontend_width=frontend_width)


def lane_config():
    """The screened 2:4 and dense engines: tests/test_sparse24_engine.py's configuration."""
    from model.hw.config import Arith, Requant, Sparse24Config
    return Sparse24Config(lanes=3, arith=Arith(weight_bits=8, act_bits=16, max_cols=32, requant=Requant(4, True)),
                          max_rows=16)


def _eie_run(name, jobs, cfg, bcfg, pacing, seed, model, x_length=None):
    """A run of EIE ``jobs`` (run_jobs's job tuples); ``model``: which counters the cycle model
    predicts ("all" at full-speed input, "busy" otherwise, None: none); ``x_length``: send
    every vector extended to this many elements (:func:`verif.cases.overlong`)."""
    from verif.cases import busy_mismatch, counter_mismatch, overlong, vector_counter_mismatch
    from rtl.common.protocol import packed_inputs
    from verif.spmv_eie import native_watchdog, prepare_jobs
    prepared, arrays = prepare_jobs(jobs, cfg)
    rng = np.random.default_rng(seed)
    xs = [arrays[f"x_{i}"] if x_length is None else overlong(arrays[f"x_{i}"], x_length, rng)
          for i in range(len(prepared))]
    njobs = [{"load": arrays[f"load_{i}"], "x": packed_inputs(x, cfg.arith.act_bits, cfg.frontend_width),
              "rows": int(arrays[f"rows_{i}"])} for i, x in enumerate(xs)]

    def check(results):
        done = 0  # as verif.spmv_eie.run_jobs checks in the regression
        for r in results:
            msg = vector_counter_mismatch(r["vectors"], done)
            if msg:
                return f"invariant: {msg}"
            done += len(r["vectors"])
        if model is None:
            return None
        for (m, a2, _, _, jcfg), r in zip(prepared, results):
            busy = [list(b) for b in r["busy"]]
            if model == "all":
                msg = counter_mismatch(m, a2, jcfg, r["cycles"], busy, r["stall"])
            else:
                msg = busy_mismatch(m, a2, jcfg, busy)
            if msg:
                return f"cycle model: {msg}"
        return None

    return Run(name, njobs, [p[2] for p in prepared], pacing, (seed + 1, seed + 2, seed + 3),
               native_watchdog(bcfg, min(pacing)), check)


def eie_target(frontend_width: int = 1) -> Target:
    """The EIE array and its screening set: tests/test_eie_array.py's "pe4" cases (same seed,
    same matrices and vectors; requantized here) and its requant layers (there on a 2-PE
    build), with the tests' stream pacing."""
    import zlib

    from rtl.common.config import build_config
    from rtl.eie.array import EIEArray
    from verif import cases
    from verif.cases import directed_jobs, random_jobs, requant_jobs
    from verif.spmv_eie import TOPLEVEL
    from verif.native import x_chunks
    cfg = eie_config(frontend_width)
    bcfg = build_config(cfg)
    rng = np.random.default_rng(zlib.crc32(b"pe4") % 1000)  # test_eie_matches_reference_and_cycle_model
    jobs = directed_jobs(rng, cfg) + random_jobs(rng, cfg, 3)
    rq = requant_jobs(np.random.default_rng(3))
    runs = [  # (load, x, y) pacing as in tests/test_eie_array.py
        _eie_run("random+corner, x full speed", jobs, cfg, bcfg, (0.7, 1.0, 0.5), 1, "all"),
        _eie_run("random, all streams paced", jobs[-2:], cfg, bcfg, (0.6, 0.6, 0.7), 2, "busy"),
        _eie_run("requant layers, x full speed", rq, cfg, bcfg, (0.5, 1.0, 0.6), 4, "all"),
        _eie_run("requant layers, paced", rq[:3], cfg, bcfg, (0.7, 0.7, 0.8), 5, "busy"),
        # tests/test_eie_array.py::test_input_past_the_columns_is_dropped
        _eie_run("input past the columns", cases.overlong_jobs(cfg), cfg, bcfg, (1.0, 1.0, 1.0), 6, None,
                 x_length=cfg.max_cols + 3),
        # tests/test_eie_array.py::test_vector_counter_over_many_vectors (no cycle model: 4100 vectors)
        _eie_run("many vectors", [cases.many_vectors_case()], cfg, bcfg, (1.0, 1.0, 1.0), 7, None),
        # tests/test_eie_array.py::test_dense_matrix_fills_every_pe (round 3)
        _eie_run("dense matrix, x full speed", cases.eie_dense_jobs(cfg), cfg, bcfg, (1.0, 1.0, 1.0), 8, "all"),
    ]
    dut = EIEArray(bcfg)
    return Target("eie", dut, TOPLEVEL, True, cfg.n_pes, cfg.arith.out_bits, runs, x_chunks(dut))


def _lane_run(name, engine, w, x, cfg, pacing, seed, full_speed_checks=False, out_pacing=None, long_x=None,
              program_order=None):
    from model.hw.formats import nm
    from model.hw.reference import layer
    from verif.spmv_sparse24 import native_job
    w, x = np.asarray(w), np.asarray(x).reshape(np.shape(w)[1], -1)
    dense = engine.GROUP != 4
    program = engine.load_program(w if dense else nm.encode(w, cfg.arith.weight_bits), cfg.arith.requant)
    if program_order is not None:
        program = program_order(program)
    job, quiet = native_job(engine, program, x if long_x is None else long_x, w.shape[0])  # golden: W @ x
    n_vec, (rows, cols) = x.shape[1], w.shape

    def check(results):
        r = results[0]
        if r["vectors"] != n_vec or len(r["cycles"]) != n_vec:
            return f"invariant: counted {r['vectors']} vectors ({len(r['cycles'])} logged) for {n_vec}"
        if full_speed_checks:  # tests/test_sparse24_engine.py::test_directed_corners_full_speed
            busy = n_vec * -(-rows // cfg.lanes) * -(-cols // engine.GROUP)
            if r["busy"] != busy:
                return f"invariant: busy {r['busy']}, expected {busy}"
            if sum(r["cycles"]) != r["total_cycles"]:
                return f"invariant: per-vector cycles add to {sum(r['cycles'])}, total {r['total_cycles']}"
        return None

    out_pacing = pacing if out_pacing is None else out_pacing
    return Run(name, [job], [layer(w, x, cfg.arith)], (pacing, pacing, out_pacing), (seed, seed + 1, seed + 2),
               int(quiet / min(pacing, out_pacing) ** 2), check)


def _lane_sequence_run(name, engine, parts, pacing, seed, same_cycles=False):
    """A run of several jobs with no reset between them (:func:`verif.spmv_sparse24.sequence_jobs`);
    ``same_cycles``: every vector's ``cycles`` must be equal (vectors that never overlap)."""
    from verif.cases import lane_sequence_mismatch
    from verif.spmv_sparse24 import sequence_jobs
    jobs, golden, quiet = sequence_jobs(engine, parts)

    def check(results):
        return lane_sequence_mismatch(results, jobs, same_cycles)

    return Run(name, jobs, golden, pacing, (seed, seed + 1, seed + 2), int(quiet / min(pacing) ** 2), check)


def lane_target(dense: bool) -> Target:
    """The 2:4 engine (or the dense baseline) and its screening set: the cases of
    tests/test_sparse24_engine.py (and tests/test_dense_engine.py), same seeds and pacing."""
    from verif import cases
    from verif.cases import corner_inputs, corner_matrix, lane_backpressure_cases, random_24
    from verif.spmv_sparse24 import make_engine, toplevel_name
    cfg = lane_config()

    def rq(shift, relu):
        from model.hw.config import Arith, Requant
        return cfg.with_(arith=Arith(8, 16, max_cols=32, requant=Requant(shift, relu)))

    engine = make_engine(cfg, dense)
    runs = []
    rng = np.random.default_rng(11)  # tests/test_sparse24_engine.py::test_random_matrices_with_stalls
    w, x = random_24(rng, 13, 32), rng.integers(-32768, 32768, (32, 4))
    runs.append(_lane_run("random 2:4, paced 0.5", engine, w, x, rq(6, True), 0.5, 1))
    w2, x2 = random_24(rng, 5, 16), rng.integers(-300, 300, (16, 3))
    runs.append(_lane_run("random 2:4 smaller, paced 0.7", engine, w2, x2, rq(1, False), 0.7, 2))
    runs.append(_lane_run("corners, full speed", engine, corner_matrix(), corner_inputs(), rq(0, False), 1.0, 0,
                          full_speed_checks=True))
    rng = np.random.default_rng(5)  # test_full_size_and_minimal_matrices
    runs.append(_lane_run("full size, paced 0.6", engine, random_24(rng, cfg.max_rows, cfg.max_cols),
                          rng.integers(-999, 999, (32, 2)), cfg, 0.6, 3))
    runs.append(_lane_run("1x4, paced 0.8", engine, [[0, 5, 0, -7]], [1, 2, 3, 4], rq(0, False), 0.8, 0))
    if dense:  # tests/test_dense_engine.py::test_random_dense_matrices_with_stalls
        rng = np.random.default_rng(21)
        w = rng.integers(-128, 128, (11, 29))
        w[0] = -128
        x = rng.integers(-32768, 32768, (29, 3))
        x[:, 0] = -32768
        runs.append(_lane_run("dense random, paced 0.5", engine, w, x, rq(0, False), 0.5, 4))
        runs.append(_lane_run("dense small, paced 0.8", engine, w[:4, :8], x[:8], rq(7, True), 0.8, 5))
    w, x, long_x = cases.lane_overlong_case()  # tests/test_sparse24_engine.py::test_input_past_max_cols_is_dropped
    runs.append(_lane_run("input past max_cols", engine, w, x, rq(9, False), 1.0, 7, long_x=long_x))
    w, x = cases.many_vectors_case()  # tests/test_sparse24_engine.py::test_vector_counter_over_many_vectors
    runs.append(_lane_run("many vectors", engine, w, x, rq(0, False), 1.0, 8))
    # tests/test_sparse24_engine.py::test_cases_from_mutation_screening (round 3)
    w, x = cases.requant_window_case()
    runs.append(_lane_run("requant window, shift 0", engine, w, x, rq(0, False), 1.0, 9))
    w, x = cases.registers_first_case()
    runs.append(_lane_run("registers written SHIFT first", engine, w, x, rq(3, False), 0.8, 10,
                          program_order=cases.registers_first))
    if dense:
        for k, (w, x) in enumerate(cases.narrow_dense_cases(np.random.default_rng(cases.LONG_RUN_SEED))):
            runs.append(_lane_run(f"{w.shape[1]}-column dense, paced", engine, w, x, rq(2, False), 0.4, 11 + k,
                                  out_pacing=0.5))
    # tests/test_sparse24_engine.py::test_job_sequences_without_reset
    for k, (name, parts) in enumerate(cases.lane_sequence_cases(np.random.default_rng(cases.LONG_RUN_SEED),
                                                                dense).items()):
        runs.append(_lane_sequence_run(name, engine, parts, (1.0, 1.0, 1.0), 20 + k, same_cycles=name == "idle gaps"))
    # tests/test_sparse24_engine.py / test_dense_engine.py::test_back_pressure_fills_the_result_queues
    for w, x, shift, relu, out_p, seed in lane_backpressure_cases(np.random.default_rng(cases.BACKPRESSURE_SEED + dense),
                                                                  dense):
        runs.append(_lane_run(f"back-pressure {seed}, shift {shift}", engine, w, x, rq(shift, relu), 1.0, seed,
                              out_pacing=out_p))
    # Last (only the mutants every other run misses get this far): seconds each.
    # tests/test_sparse24_engine.py::test_long_runs_move_the_counters_middle_bits (slow)
    for k, (name, w, x) in enumerate(cases.lane_long_cases(dense)):
        runs.append(_lane_run(name, engine, w, x, rq(0, False), 1.0, 30 + k))
        runs[-1].long = True
    # tests/test_sparse24_engine.py::test_time_counters_past_2_to_the_25 (slow)
    w, x = cases.lane_idle_case(dense)
    runs.append(_lane_run("after 2^25 idle cycles", engine, w, x, rq(5, False), 1.0, 32, full_speed_checks=True))
    runs[-1].idle, runs[-1].long = cases.LANE_IDLE_CYCLES, True
    return Target("dense" if dense else "2:4", engine, toplevel_name(dense), False, 1, cfg.arith.out_bits, runs)


def board_target(name: str) -> Target:
    """A minimal screening set for an engine of the registry that has no regression cases here
    yet (a new engine): the board self-test's random case (``rtl.board.cases.make_case``, the
    weights initialised in the build, no ``load``) at full speed and paced, checked against the
    golden model and the original design's counters. Weak by design: give the engine its own
    target from its regression cases (``TARGETS``, docs/verification.md)."""
    from model.hw.engines import get
    from rtl.board.cases import make_case
    from rtl.common.protocol import packed_inputs
    case = make_case(name, 2, 8, 16, 0.5, seed=1, vectors=6)
    eie = get(name).per_cycle is None
    job = {"load": np.zeros(0, dtype=np.int64), "x": packed_inputs(case.xs.T, case.arith.act_bits),
           "rows": case.shape[0]}
    runs = [Run(f"board case, paced {p}", [job], [case.expected.T], (1.0, p, p), (k, k + 1, k + 2), 200_000)
            for k, p in enumerate((1.0, 0.5))]
    toplevel = re.sub(r"\W", "", name) + "_engine"
    return Target(name, case.build_engine(), toplevel, eie, case.size if eie else 1, case.arith.out_bits, runs)


def bsr_target() -> Target:
    """The block-sparse engine and its screening set: tests/test_bsr_engine.py's configuration
    and cases (``verif.cases.bsr_jobs`` at full speed, counters held to ``model.hw.bsrcycles``;
    the back-pressure case with its pacing)."""
    from dataclasses import replace

    from model.hw.bsrcycles import simulate_batch
    from model.hw.config import Arith, BSRConfig, Requant
    from model.hw.reference import layer
    from verif import cases
    from verif.cases import bsr_jobs, bsr_matrix
    from verif.spmv_bsr import TOPLEVEL, encode, make_engine
    from verif.spmv_sparse24 import native_job
    cfg = BSRConfig(lanes=4, block=4, max_rows=32, max_words=256,
                    arith=Arith(max_cols=32, requant=Requant(), bias_bits=30))
    engine = make_engine(cfg)

    def run(name, w, x, rq, pacing, seed, long_x=None):
        rcfg = cfg.with_(arith=replace(cfg.arith, requant=rq))
        bias = np.random.default_rng(seed).integers(-(1 << 20), 1 << 20, w.shape[0])
        m = encode(w, rcfg)
        job, quiet = native_job(engine, engine.load_program(m, rq, bias), x if long_x is None else long_x,
                                w.shape[0])
        want = simulate_batch(m, x.shape[1], rcfg)

        def check(results):
            r = results[0]
            if r["vectors"] != x.shape[1] or r["busy"] != want["busy"]:
                return f"invariant: {r['vectors']} vectors, busy {r['busy']}; expected {x.shape[1]}, {want['busy']}"
            if pacing == (1.0, 1.0, 1.0) and long_x is None and list(r["cycles"]) != want["cycles"]:
                return f"cycle model: cycles {list(r['cycles'])}, model {want['cycles']}"
            return None
        return Run(name, [job], [layer(w, x, rcfg.arith, bias)], pacing, (seed, seed + 1, seed + 2),
                   int(quiet / min(pacing) ** 2), check)

    runs = [run(f"job {i}, full speed", w, x, rq, (1.0, 1.0, 1.0), i) for i, (w, x, rq) in enumerate(bsr_jobs(cfg))]
    # tests/test_bsr_engine.py::test_many_vectors_and_input_past_max_cols
    w, x = cases.many_vectors_case()
    runs.append(run("many vectors", w, x, Requant(), (1.0, 1.0, 1.0), 20))
    w, x, long_x = cases.lane_overlong_case()
    runs.append(run("input past max_cols", w, x, Requant(9, False), (1.0, 1.0, 1.0), 21, long_x=long_x))
    rng = np.random.default_rng(7)  # tests/test_bsr_engine.py::test_cocotb_backpressure_and_cycles (2x2 there)
    w = bsr_matrix(rng, 14, 30, 4, 0.5)
    w[4:8] = 0
    runs.append(run("back-pressure", w, rng.integers(-32768, 32768, (30, 4)), Requant(12, True), (0.7, 0.7, 0.15), 5))
    return Target("bsr", engine, TOPLEVEL, False, 1, cfg.arith.out_bits, runs)


# The screening set of each engine; an engine of the registry without one gets board_target.
TARGETS = {"eie": eie_target, "2:4": lambda: lane_target(False), "dense": lambda: lane_target(True),
           "bsr": bsr_target}


def target(name: str, long_runs: bool = True, frontend_width: int = 1) -> Target:
    """Engine ``name``'s target; ``long_runs`` False leaves out the runs of seconds each (the
    counters' high bits), for quick checks of the flow; ``frontend_width``: the EIE array's
    (:func:`eie_target`)."""
    if name not in ENGINES:
        raise SparseFlowError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "eie":
        t = eie_target(frontend_width)
    else:
        t = TARGETS[name]() if name in TARGETS else board_target(name)
    names = [r.name for r in t.runs]
    if len(set(names)) != len(names):  # the original design's counters are looked up by run name
        raise RuntimeError(f"{name}: two screening runs share a name: {sorted(n for n in names if names.count(n) > 1)}")
    t.runs = [r for r in t.runs if long_runs or not r.long]
    return t


# ---- the netlist and its mutations ---------------------------------------------------------
def _yosys(script: str, cwd: Path, timeout: float | None = None, log: str = "yosys.log") -> None:
    """:func:`verif.tools.run_yosys`; a failure raises ``RuntimeError`` naming its first error."""
    from verif.tools import run_yosys
    rc, text = run_yosys(script, cwd, log=log, timeout=timeout)
    if rc != 0:
        err = next((ln for ln in text.splitlines() if "ERROR" in ln), text.strip().splitlines()[-1:] or ["?"])
        raise RuntimeError(f"yosys failed in {cwd}: {err}")


@dataclass
class Mutation:
    index: int  # its mutsel value (1..N)
    command: str  # the `mutate -mode ...` line, without -ctrl
    mode: str
    src: str  # the first RTL location (rtl/...py:line) of its -src tags, else the netlist's


def _location(tags: list[str]) -> str:
    for t in tags:
        path, _, line = t.rpartition(":")
        if path.endswith(".py"):
            try:
                path = str(Path(path).resolve().relative_to(ROOT))
            except ValueError:
                pass
            return f"{path}:{line}"
    return "(netlist: " + (tags[0] if tags else "no src") + ")"


def netlist(t: Target, work: Path) -> Path:
    """``design.il``: the engine's netlist (with src attributes) after ``prep -flatten``."""
    from amaranth.back import rtlil
    work.mkdir(parents=True, exist_ok=True)
    # Amaranth's RTLIL keeps a src attribute on every cell and process (its Verilog would not).
    (work / "amaranth.il").write_text(rtlil.convert(t.component, name=t.toplevel, emit_src=True))
    _yosys(f"read_rtlil amaranth.il; prep -flatten -top {t.toplevel}; write_rtlil design.il", work)
    return work / "design.il"


def mutations(work: Path, n: int, seed: int) -> list[Mutation]:
    """``mutate -list n -seed seed`` on ``work/design.il``."""
    _yosys(f"read_rtlil design.il; mutate -list {n} -seed {seed} -o list.ys", work)
    out = []
    for i, line in enumerate((work / "list.ys").read_text().splitlines(), 1):
        words = line.split()
        tags = [words[k + 1] for k, w in enumerate(words) if w == "-src"]
        out.append(Mutation(i, line.strip(), words[words.index("-mode") + 1], _location(tags)))
    return out


def _sigbits(spec: str, widths: dict) -> list:
    """An RTLIL sigspec as bits, LSB first: "0"/"1"/"x" for constants, None for wire bits."""
    spec = spec.strip()
    parts = re.findall(r"\d+'[01xz]+|[\\$][^\s\[\]{}]+(?:\s*\[\d+(?::\d+)?\])?",
                       spec[1:-1] if spec.startswith("{") else spec)
    bits = []
    for part in reversed(parts):  # a concatenation lists its MSB part first
        if re.fullmatch(r"\d+'[01xz]+", part):
            bits += list(reversed(part.split("'")[1]))
            continue
        m = re.fullmatch(r"(\S+)\s*(?:\[(\d+)(?::(\d+))?\])?", part)
        hi, lo = m.group(2), m.group(3)
        n = widths.get(m.group(1), 1) if hi is None else (int(hi) - int(lo) + 1 if lo is not None else 1)
        bits += [None] * n
    return bits


def constant_noop(design: str, m: Mutation) -> bool:
    """Whether ``m`` forces a cell input bit to the constant it is already tied to (``const0``
    on a ``0``, ``const1`` on a ``1``): equivalent by construction."""
    if m.mode not in ("const0", "const1"):
        return False
    words = m.command.split()
    cell, port, bit = (words[words.index(k) + 1] for k in ("-cell", "-port", "-portbit"))
    widths = {w[-1]: int(w[w.index("width") + 1]) if "width" in w else 1
              for w in (ln.split() for ln in design.splitlines() if ln.startswith("  wire "))}
    body = re.search(r"^  cell \S+ " + re.escape(cell) + r"\n(.*?)^  end$", design, re.S | re.M)
    conn = body and re.search(r"^    connect \\" + re.escape(port) + r" (.*)$", body.group(1), re.M)
    if not conn:
        return False
    bits = _sigbits(conn.group(1), widths)
    return int(bit) < len(bits) and bits[int(bit)] == m.mode[-1]


def mutsel_width(n: int) -> int:
    return max(1, int(n).bit_length())


def mutated_verilog(work: Path, muts: list[Mutation]) -> str:
    """One netlist with every mutation, mutation ``i`` active when ``mutsel == i``."""
    w = mutsel_width(max(m.index for m in muts))
    (work / "apply.ys").write_text("".join(f"{m.command} -ctrl mutsel {w} {m.index}\n" for m in muts))
    _yosys("read_rtlil design.il; script apply.ys; opt_clean; write_verilog -noattr mutated.v", work)
    return (work / "mutated.v").read_text()


# ---- screening ------------------------------------------------------------------------------
def run_once(t: Target, exe: Path, mutsel: int | None, run: Run, timeout: float) -> list[dict]:
    from verif import native
    results, _ = native.run(exe, run.jobs, out_bits=t.out_bits, eie=t.eie, n_pes=t.n_pes, pacing=run.pacing,
                            seeds=run.seeds, watchdog=run.watchdog, mutsel=mutsel, timeout=timeout, idle=run.idle,
                            chunks=t.chunks)
    return results


COUNTERS = ("cycles", "total_cycles", "busy", "stall", "vectors")


def judge(t: Target, run: Run, results: list[dict], reference: list[dict] | None) -> str | None:
    """Why ``results`` fail the screen (None: they pass): golden model, models/invariants, then
    the original design's counters on the same run."""
    for j, (r, g) in enumerate(zip(results, run.golden)):
        bad = np.argwhere(r["y"] != g)
        if bad.size:
            row, b = (int(v) for v in bad[0])
            return f"golden model: job {j} y[{row}, {b}] = {int(r['y'][row, b])}, expected {int(g[row, b])}"
    msg = run.check(results) if run.check else None
    if msg:
        return msg
    for j, (r, ref) in enumerate(zip(results, reference or [])):
        for k in COUNTERS:
            if k in ref and np.asarray(r[k]).tolist() != np.asarray(ref[k]).tolist():
                return f"original design's counters: job {j} {k} {np.asarray(r[k]).tolist()}, " \
                       f"original {np.asarray(ref[k]).tolist()}"
    return None


def screen(t: Target, exe: Path, mutsel: int | None, reference: dict | None, timeout: float,
           skip_long: bool = False) -> dict:
    """Run the screening set on one mutant; stop at the first failing run. ``skip_long``: leave
    out the long runs (a mutant the equivalence table already shows equivalent)."""
    for run in t.runs:
        if skip_long and run.long:
            continue
        try:
            results = run_once(t, exe, mutsel, run, timeout)
        except RuntimeError as e:
            text = str(e)
            if "stalled" in text:
                return {"status": "timed out", "run": run.name, "why": text.split("failed: ", 1)[-1]}
            return {"status": "killed", "run": run.name, "why": "harness: " + text.split("failed: ", 1)[-1],
                    "by": "protocol"}
        why = judge(t, run, results, reference[run.name] if reference else None)
        if why:
            by = why.split(":", 1)[0]
            return {"status": "killed", "run": run.name, "why": why, "by": by}
    return {"status": "survived"}


def reference_run(t: Target, exe: Path, mutsel: int | None, timeout: float | None = None) -> dict:
    """Every run on ``exe`` (``mutsel`` 0 on a mutated build), checked against the golden model
    and the models; returns its results per run (the counters the mutants are held to)."""
    ref = {}
    for run in t.runs:
        results = run_once(t, exe, mutsel, run, timeout)
        why = judge(t, run, results, None)
        if why:
            raise RuntimeError(f"{t.name}: the design itself fails the screen ({run.name}): {why}")
        ref[run.name] = results
    return ref


def same_results(a: dict, b: dict) -> str | None:
    """The first difference between two reference runs (results or counters), or None."""
    for name in a:
        for j, (ra, rb) in enumerate(zip(a[name], b[name])):
            for k in ("y",) + COUNTERS:
                if k in ra and np.asarray(ra[k]).tolist() != np.asarray(rb[k]).tolist():
                    return f"{name}: job {j} {k}"
    return None


def mutate_engine(name: str, n: int, seed: int, *, workers: int | None = None, work: Path | None = None,
                  only: list[int] | None = None, check_original: bool = True, progress=None,
                  long_runs: bool = True, frontend_width: int = 1) -> dict:
    """Screen ``n`` mutants of engine ``name`` (``mutate -list n -seed seed``); ``only``: screen
    just these mutant indices (all are still compiled in); ``long_runs``, ``frontend_width``: see :func:`target`.
    Returns the report dict."""
    from verif import native
    from verif.runner import BUILD_ROOT
    t0 = time.perf_counter()
    t = target(name, long_runs, frontend_width)
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix=f"mut-{name.replace(':', '')}-",
                                                             dir=_mkdir(BUILD_ROOT / "mutation")))
    netlist(t, work)
    muts = mutations(work, n, seed)
    text = mutated_verilog(work, muts)
    exe = native.build_verilog(text, toplevel=t.toplevel, eie=t.eie, n_pes=t.n_pes, mutsel=True, chunks=t.chunks)
    t_build = time.perf_counter() - t0
    ref = reference_run(t, exe, 0)  # sanity: no mutation active = the design, passes everything
    if check_original:  # and behaves exactly as the unmutated build
        orig = reference_run(t, native.build(target(name, long_runs, frontend_width).component, toplevel=t.toplevel, eie=t.eie,
                                             n_pes=t.n_pes), None)
        diff = same_results(ref, orig)
        if diff:
            raise RuntimeError(f"{name}: the mutated netlist at mutsel=0 differs from the design: {diff}")
    # Wall-time limit per run: generous against a slow machine, far below a hung harness.
    t_ref = time.perf_counter()
    reference_run(t, exe, 0)
    timeout = max(30.0, 50 * (time.perf_counter() - t_ref))
    picked = [m for m in muts if only is None or m.index in only]
    outcomes = {}
    # The long runs take seconds per mutant: not spent on the mutants the equivalence table
    # (verif.equivalent_mutants) already shows equivalent; every other run still screens them.
    from verif.equivalent_mutants import EQUIVALENT, key
    known = {m.index for m in muts if key(m.command) in EQUIVALENT.get(name, {})}

    def one(m):
        out = screen(t, exe, m.index, ref, timeout, skip_long=m.index in known)
        if m.index in known and out["status"] == "survived" and any(r.long for r in t.runs):
            out["long_runs"] = "skipped: in the equivalence table"
        return m, out

    t_screen = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers or min(os.cpu_count() or 1, 2)) as pool:
        for k, (m, out) in enumerate(pool.map(one, picked), 1):
            outcomes[m.index] = out
            if progress and (k % 25 == 0 or k == len(picked)):
                progress(f"{name}: {k}/{len(picked)} mutants screened")
    design = (work / "design.il").read_text()
    rows = [{"index": m.index, "mode": m.mode, "src": m.src, "command": m.command, **outcomes[m.index]}
            for m in picked]
    for m, r in zip(picked, rows):
        if constant_noop(design, m):
            if r["status"] != "survived":
                raise RuntimeError(f"{name}: mutant {m.index} changes nothing but was {r['status']}: {r['why']}")
            r["equivalent"] = "constant: the input bit is already tied to that value"
    return {"engine": name, "toplevel": t.toplevel, "mutants": len(picked), "seed": seed, "listed": n, "work": str(work),
            "counts": _counts(rows), "by_src": by_src(rows), "mutations": rows,
            "runs": [r.name for r in t.runs], "build_seconds": round(t_build, 1),
            "screen_seconds": round(time.perf_counter() - t_screen, 1),
            "wall_seconds": round(time.perf_counter() - t0, 1)}


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _counts(rows: list[dict]) -> dict:
    c = {s: sum(r["status"] == s for r in rows) for s in ("killed", "timed out", "survived")}
    c["equivalent"] = sum(r["status"] == "survived" and bool(r.get("equivalent")) for r in rows)
    # Shown by a machine check (constant_noop, verif.mutation.equivalence) rather than argued.
    c["equivalent_checked"] = sum(r["status"] == "survived" and bool(r.get("equivalent"))
                                  and r.get("equiv_method", "constant") in ("constant", "formal") for r in rows)
    c["killed_by"] = {b: sum(r.get("by") == b for r in rows) for b in sorted({r["by"] for r in rows if "by" in r})}
    c["score"] = score(c)
    c["score_checked_only"] = score(dict(c, equivalent=c["equivalent_checked"]))
    return c


def score(c: dict) -> float:
    """Killed (timed out counts as killed: the regression notices a hang) over the mutants not
    shown equivalent."""
    live = c["killed"] + c["timed out"] + c["survived"] - c.get("equivalent", 0)
    return round(100.0 * (c["killed"] + c["timed out"]) / live, 1) if live else 100.0


def by_src(rows: list[dict]) -> list[dict]:
    table = {}
    for r in rows:
        e = table.setdefault(r["src"], {"src": r["src"], "killed": 0, "timed out": 0, "survived": 0})
        e[r["status"]] += 1
    return sorted(table.values(), key=lambda e: (-e["survived"], e["src"]))


# ---- formal equivalence of a survivor ---------------------------------------------------------
def equivalence(work: Path, m: Mutation, toplevel: str, depth: int = 2, timeout: float = 600) -> str:
    """Formal check that mutant ``m`` cannot change an output, with Yosys' equivalence flow:
    the design (``gold``) and the design with ``m`` applied alone (``gate``), memories mapped
    to flip-flops, ``equiv_make`` pairs every net and register of the same name,
    ``equiv_struct`` merges the structurally identical ones, ``equiv_simple -seq depth``
    proves each pair from its input cone and ``equiv_induct -seq depth`` proves the rest by
    temporal induction, assuming every pair equal in the cycles before. Both designs start
    from the same reset values, so "proved" (``equiv_status``: every pair proven) holds for
    every input sequence: the outputs (paired nets) never differ. Returns "proved",
    "unproven" (a pair the induction cannot close: a mutant that differs, or one equivalent
    only on reachable states, which this check does not know) or "timeout"."""
    script = (f"read_rtlil design.il; {m.command}; rename {toplevel} gate; read_rtlil design.il; "
              f"rename {toplevel} gold; memory -nomap; memory_map; opt_clean; equiv_make gold gate equiv; "
              f"hierarchy -top equiv; equiv_struct; equiv_simple -seq {depth}; equiv_induct -seq {depth}; "
              "equiv_status")
    from verif.tools import run_yosys
    try:
        rc, text = run_yosys(script, work, log=f"equiv{m.index}.log", timeout=timeout)
    except TimeoutError:
        return "timeout"
    found = re.search(r"Of those cells (\d+) are proven and (\d+) are unproven", text)
    if rc != 0 or not found:
        raise RuntimeError(f"yosys equivalence check of mutant {m.index} failed (log: {work / f'equiv{m.index}.log'})")
    return "proved" if found.group(2) == "0" else "unproven"
