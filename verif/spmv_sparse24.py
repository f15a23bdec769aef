"""Host side of the 2:4 engine and the dense baseline: ``run_spmv`` (validate, build, simulate,
score against ``model.hw.reference``).

Both engines are elaborated from :func:`rtl.common.config.build_config`, so one compiled
simulation per (engine, lanes, widths, sizes) serves every matrix and every layer's requant
values: the weights and the shift/ReLU registers travel through the ``load`` port.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from model.hw.config import LaneConfig, Sparse24Config
from model.hw.engines import DENSE, SPARSE24
from model.errors import SparseFlowError
from model.hw.formats import nm
from model.hw.reference import check_bias, check_spmv_operands, layer

TB_MODULE = "verif.sparse24_tb"


def make_engine(cfg: LaneConfig, dense: bool = False):
    """The engine ``run_spmv`` simulates: elaborated from the normalised build configuration."""
    from rtl.dense.engine import DenseEngine
    from rtl.common.config import build_config
    from rtl.sparse24.engine import Sparse24Engine
    return (DenseEngine if dense else Sparse24Engine)(build_config(cfg))


def toplevel_name(dense: bool) -> str:
    return "dense_engine" if dense else "sparse24_engine"


def check_operands(weights, x, cfg: LaneConfig, dense: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(W, X)`` with ``X`` 2-D ``(cols, batch)``; one-line errors."""
    expected = LaneConfig if dense else Sparse24Config  # (a Sparse24Config is a LaneConfig)
    if not isinstance(cfg, expected):
        raise SparseFlowError(f"expected a {expected.__name__}, not {type(cfg).__name__}")
    w, a = check_spmv_operands(weights, x, cfg.arith)
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise SparseFlowError(f"weights must have at least one row and one column, got shape {w.shape}")
    if w.shape[0] > cfg.max_rows:
        raise SparseFlowError(f"weights have {w.shape[0]} rows; the configuration allows {cfg.max_rows}")
    if not dense:
        nm.check_24(w)
    if a.ndim == 1:
        a = a[:, None]
    if a.shape[1] == 0:
        raise SparseFlowError("the input batch is empty")
    return w, a


def run_spmv(weights, x, cfg: LaneConfig, sim: str = "verilator", dense: bool = False,
             pacing: float = 1.0, waves: bool | None = None, seed: int = 0, bias=None, backend: str = "cocotb",
             out_pacing: float | None = None) -> dict:
    """Run ``requant(W @ x + bias)`` on the 2:4 engine (or the dense baseline) in ``sim``.

    ``weights`` (R, C) integers (2:4-sparse unless ``dense``); ``x`` (C,) or (C, B); ``bias``
    None or (R,) integers (needs ``cfg.arith.bias_bits``; loaded as zeros when None). ``pacing``
    is the probability that the input drivers present data and that the output consumer is
    ready on a cycle (1.0: full speed); ``out_pacing``, when given, for the output consumer
    (back-pressure while the input runs at ``pacing``). Returns ``dict(y=(R, B) ndarray, cycles=[per vector,
    from the engine's counter], total_cycles (first input to last output over the batch),
    busy, golden, engine, sim, run_dir)``. Raises :class:`SparseFlowError` on bad input and
    ``RuntimeError`` if the simulation fails or the RTL differs from ``model.hw.reference.layer``
    anywhere (as ``verif.spmv_eie`` does; the CLI exits 1 for those). ``backend``: ``"cocotb"``
    (``verif.sparse24_tb``) or ``"native"`` (``verif.native``, Verilator only; same timing).
    """
    check_run_options(sim, backend, pacing, out_pacing)
    w, a = check_operands(weights, x, cfg, dense)
    rows, cols = w.shape
    b = check_bias(bias, rows, cfg.arith)
    engine = make_engine(cfg, dense)
    matrix = w if dense else nm.encode(w, cfg.arith.weight_bits)
    program = engine.load_program(matrix, cfg.arith.requant, b)
    golden = layer(w, a, cfg.arith) if b is None else layer(w, a, cfg.arith, b)

    result = simulate_engine(engine, program, a, rows, sim=sim, pacing=pacing, waves=waves, seed=seed,
                             toplevel=toplevel_name(dense), backend=backend, out_pacing=out_pacing)
    y = result["y"]
    kind = (DENSE if dense else SPARSE24).name
    check_result(result, golden, kind, sim)
    return {
        "y": y,
        "golden": golden,
        "cycles": result["cycles"],
        "total_cycles": result["total_cycles"],
        "busy": result["busy"],
        "engine": kind,
        "sim": sim,
        "multipliers": cfg.multipliers,
        "run_dir": result["run_dir"],
        "backend": backend,
        "sim_cycles": result.get("sim_cycles"),
        "sim_seconds": result.get("sim_seconds"),
    }


def check_run_options(sim: str, backend: str, pacing, out_pacing) -> None:
    """One-line errors for a simulator, backend or pacing ``run_spmv`` cannot use."""
    from verif.native import check_backend
    from verif.runner import SIMULATORS
    if sim not in SIMULATORS:
        raise SparseFlowError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    check_backend(backend, sim)
    for name, p in (("pacing", pacing), ("out_pacing", pacing if out_pacing is None else out_pacing)):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise SparseFlowError(f"{name} must be in (0, 1], not {p!r}")


def check_result(result: dict, golden: np.ndarray, kind: str, sim: str) -> None:
    """``RuntimeError`` unless the simulated results equal ``golden`` (R, B) everywhere and the
    engine counted one vector per column."""
    y, n = result["y"], golden.shape[1]
    bad = np.argwhere(y != golden)
    if bad.size:
        r, b = (int(v) for v in bad[0])
        raise RuntimeError(f"RTL mismatch ({kind} engine, {sim}): y[{r}, {b}] = {y[r, b]}, golden "
                           f"{golden[r, b]} ({len(bad)} of {y.size} results differ)")
    if len(result["cycles"]) != n or result["vectors"] != n:
        raise RuntimeError(f"RTL counted {result['vectors']} vectors for a batch of {n}")


def simulate_engine(engine, program: list[int], x: np.ndarray, rows: int, *, sim: str, toplevel: str,
                    pacing: float = 1.0, waves: bool | None = None, seed: int = 0, backend: str = "cocotb",
                    out_pacing: float | None = None) -> dict:
    """Run :mod:`verif.sparse24_tb` (or the native harness) on ``engine``: send ``program``
    through ``load``, then the columns of ``x`` (cols, B); return the raw results (``y`` as
    (rows, B)), unchecked. ``out_pacing``: the ``y`` consumer's (default ``pacing``)."""
    from verif.runner import simulate
    cfg = engine.cfg
    cols = x.shape[0]
    work = len(program) + x.shape[1] * (cols + issue_bound(engine, rows, cols) + rows + 20)
    out_pacing = pacing if out_pacing is None else out_pacing
    slowest = min(pacing, out_pacing)
    if backend == "native":
        return _simulate_native(engine, program, x, rows, toplevel=toplevel, pacing=(pacing, pacing, out_pacing),
                                waves=waves, seed=seed)
    with tempfile.TemporaryDirectory(prefix="sparse24-") as tmp:
        case_path, out_path = Path(tmp) / "case.json", Path(tmp) / "result.json"
        case_path.write_text(json.dumps({
            "load": [int(w) for w in program],
            "vectors": x.T.tolist(),
            "rows": int(rows),
            "act_bits": cfg.arith.act_bits,
            "out_bits": cfg.arith.out_bits,
            "pacing": float(pacing),
            "out_pacing": float(out_pacing),
            "seed": int(seed),
            "timeout_cycles": int(work / slowest ** 2 * 4 + 1000),
            "out": str(out_path),
        }))
        # A simulator or testbench failure is not the user's input: RuntimeError (CLI exit 1).
        run_dir = simulate(engine, toplevel=toplevel, test_module=TB_MODULE, sim=sim,
                           case=case_path, waves=waves)
        result = json.loads(out_path.read_text())
    result["y"] = np.array(result["y"], dtype=np.int64).reshape(x.shape[1], rows).T
    result["run_dir"] = str(run_dir)
    return result


def issue_bound(engine, rows: int, cols: int) -> int:
    """Most issue cycles of one vector (a lane engine's row blocks x groups; the BSR engine's
    memory words): the simulation watchdogs scale with it."""
    if hasattr(engine, "GROUP"):
        return -(-rows // engine.cfg.lanes) * -(-cols // engine.GROUP)
    return engine.cfg.max_words


def native_job(engine, program, x, rows) -> tuple[dict, int]:
    """The native harness job for ``program`` and ``x`` (cols, B), and the watchdog at full
    speed (cycles without a handshake that mean a hung engine; divide by pacing squared)."""
    from rtl.common.protocol import packed_inputs
    if max((int(w).bit_length() for w in program), default=0) > 63:
        raise SparseFlowError("load words wider than 63 bits do not fit the native harness")
    cols = x.shape[0]
    quiet = cols + issue_bound(engine, rows, cols) + rows + 1000
    job = {"load": np.asarray(program, dtype=np.int64), "x": packed_inputs(x, engine.cfg.arith.act_bits),
           "rows": rows}
    return job, 4 * quiet


def _simulate_native(engine, program, x, rows, *, toplevel, pacing, waves, seed) -> dict:
    """:func:`simulate_engine` on the native harness (same stream timing as the testbench);
    ``pacing``: (load, x, y)."""
    from verif import native
    from verif.runner import waves_requested
    waves = waves_requested(waves)
    exe = native.build(engine, toplevel=toplevel, eie=False, waves=waves)
    job, quiet = native_job(engine, program, x, rows)
    (r,), facts = native.run(exe, [job], out_bits=engine.cfg.arith.out_bits, eie=False, pacing=pacing,
                             seeds=(seed, seed + 1, seed + 2), watchdog=int(quiet / min(pacing) ** 2),
                             waves=waves)
    r.update(run_dir=facts["run_dir"], sim_cycles=facts["sim_cycles"], sim_seconds=facts["sim_seconds"])
    return r


def sequence_jobs(engine, parts, program_order=None) -> tuple[list[dict], list[np.ndarray], int]:
    """Native harness jobs for one run of several jobs on ``engine`` with no reset between
    them (``verif.cases.lane_sequence_cases``): ``parts`` are ``(weights, x, load)``; ``load``
    False sends no program (the registers stay as the last job, or reset, left them);
    ``weights`` None: the build's reset registers (``max_rows`` x ``max_cols``) and its
    initial weights (zeros without ``init``). Requantization is ``engine.cfg``'s throughout.
    ``program_order``: a function applied to each program (e.g. ``verif.cases.registers_first``).
    Returns ``(jobs, golden y per job, watchdog at full speed)``."""
    cfg = engine.cfg
    dense = engine.GROUP != 4
    jobs, golden, quiet = [], [], 0
    for w, x, load in parts:
        x = np.asarray(x).reshape(len(x), -1)
        if w is None:
            w = np.zeros((cfg.max_rows, cfg.max_cols), dtype=np.int64)
        w = np.asarray(w)
        program = engine.load_program(w if dense else nm.encode(w, cfg.arith.weight_bits), cfg.arith.requant) \
            if load else []
        if load and program_order is not None:
            program = program_order(program)
        job, q = native_job(engine, program, x, w.shape[0])
        jobs.append(job)
        golden.append(layer(w, x, cfg.arith))
        quiet = max(quiet, q)
    return jobs, golden, quiet
