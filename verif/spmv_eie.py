"""Host side of the EIE array: ``run_spmv`` encodes, simulates, and checks against the golden model.

One compiled simulation serves many matrices and vectors: :func:`run_jobs` sends every
``(weights, x)`` job to one cocotb run (``verif.eie_tb``) through ``load`` and ``x``. The build
is cached per Verilog text (``verif.runner``); the Verilog depends on the configuration with
its requantization normalised (:func:`rtl.common.config.build_config`), so layers that differ only
in shift/relu share one build: shift/relu travel as ``load`` register writes.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from model.hw.config import Arith, EIEConfig, Requant, pow2_ceil
from model.errors import SparseFlowError
from model.hw.formats.eie import EIEMatrix, check_fits, encode
from model.hw.reference import as_int_array, check_bias, check_spmv_operands, layer
from rtl.common.protocol import packed_inputs
from verif.cases import vector_counter_mismatch

TOPLEVEL = "eie_array"


def size_config(weights, *, n_pes: int = 4, fifo_depth: int = 8, index_bits: int = 4,
                arith: Arith | None = None, codebook_bits: int | None = None,
                frontend_width: int = 1) -> EIEConfig:
    """A configuration just big enough for ``weights`` (maxima rounded up to powers of two, so
    matrices of similar size share a build). With ``codebook_bits`` the array is in codebook mode
    and ``weights`` are codebook indices; ``frontend_width``: see :class:`EIEConfig`."""
    arith = arith or Arith()
    if codebook_bits is None:
        w = as_int_array(weights, "weights", arith.weight_bits, ndim=(2,))
    else:
        w = as_int_array(weights, "codebook indices", 32, ndim=(2,))
    rows, cols = w.shape
    if rows < 1 or cols < 1:
        raise SparseFlowError(f"weights must have at least one row and column, got shape {w.shape}")
    arith = Arith(weight_bits=arith.weight_bits, act_bits=arith.act_bits, max_cols=pow2_ceil(cols),
                  requant=arith.requant, bias_bits=arith.bias_bits)
    cfg = EIEConfig(n_pes=n_pes, arith=arith, index_bits=index_bits, fifo_depth=fifo_depth,
                    max_rows=pow2_ceil(rows), max_entries=1, frontend_width=frontend_width)
    # padding depends on index_bits and n_pes, not on the values: the pattern sizes the memory
    need = int(encode((w != 0).astype(np.int8), cfg).entries_per_pe.max())
    cfg = cfg.with_(max_entries=pow2_ceil(max(need, 1)))
    return cfg if codebook_bits is None else cfg.with_(codebook=True, codebook_bits=codebook_bits)


def choose_index_width(weights, x, *, n_pes: int, arith: Arith | None = None,
                       codebook_bits: int | None = None, frontend_width: int = 1) -> tuple[int, dict]:
    """The cost model's relative-index width for ``weights`` (indices with ``codebook_bits``) on
    ``x`` with a ``frontend_width`` front end (``model.hw.costmodel.choose_index_bits``) and the
    per-width costs it compared."""
    from model.hw.costmodel import choose_index_bits, index_width_costs
    cfg = size_config(weights, n_pes=n_pes, arith=arith, codebook_bits=codebook_bits,
                      frontend_width=frontend_width)
    pattern = (np.asarray(weights) != 0).astype(np.int8)
    _, xs = check_spmv_operands(pattern, x, cfg.arith)  # the run's own messages (shape, range, NaN)
    costs = index_width_costs(pattern, xs.reshape(xs.shape[0], -1), cfg)
    return choose_index_bits(costs), costs


def load_words(m: EIEMatrix, cfg: EIEConfig, requant: Requant | None = None, bias=None) -> np.ndarray:
    """The ``load`` stream that installs ``m`` (and shift/relu) into an array built for ``cfg``.

    With ``cfg.arith.bias_bits`` it also writes one bias word per row: ``bias`` (``rows``
    signed ``bias_bits`` integers), or zeros when ``bias`` is None (so a previous job's bias
    never leaks). A bias for a configuration without one is an error.
    """
    from rtl.common.packing import pack
    from rtl.common.protocol import bias_values, register_writes
    from rtl.eie.layouts import LoadKind, load_layout
    lay = load_layout(cfg)
    if lay.size > 63:
        raise SparseFlowError("load word wider than 63 bits")
    b = bias_values(bias, m.shape[0], cfg.arith)
    parts = []

    def add(kind, pe, addr, dat):
        parts.append(pack(lay, kind=kind, pe=pe, addr=addr, data=dat))

    rows, cols = m.shape
    for k in range(cfg.n_pes):
        w = m.words(cfg, k)
        add(LoadKind.ENTRY, k, np.arange(len(w)), w)
        add(LoadKind.PTR, k, np.arange(cols + 1), m.ptr[k])
        add(LoadKind.COLMASK, k, np.arange(cols), np.diff(m.ptr[k]) > 0)
    if b is not None:
        add(LoadKind.BIAS, 0, np.arange(rows), b)
    regs = register_writes(rows, cols, requant or Requant())
    add(LoadKind.REG, 0, [a for a, _ in regs], [v for _, v in regs])
    if cfg.codebook:
        add(LoadKind.CODEBOOK, 0, np.arange(len(m.codebook)), m.codebook)
    return np.concatenate(parts)


def _prepare(weights, x, cfg: EIEConfig, codebook=None, bias=None, index_bits=None):
    """Validate one job; return (EIEMatrix, x as (C, B) int64, expected (R, B), dense weights, bias).

    ``index_bits``: the job's relative-index width (default the build's). An array built with a
    wider index field runs it unchanged: an entry word is ``z << value_bits | value`` and a narrow
    ``z`` is a valid wide one, so one build serves layers encoded at different widths."""
    if index_bits is not None:
        if not isinstance(index_bits, int) or not 1 <= index_bits <= cfg.index_bits:
            raise SparseFlowError(f"a job's relative-index width must be in 1..{cfg.index_bits} (the build's), "
                                  f"not {index_bits!r}")
        cfg = cfg.with_(index_bits=index_bits)
    if cfg.codebook:
        m = encode(weights, cfg, codebook)
        from model.hw.formats.eie import dense_weights
        wd = dense_weights(m)
        _, a = check_spmv_operands(wd, x, cfg.arith)
    else:
        wd, a = check_spmv_operands(weights, x, cfg.arith)
        m = encode(wd, cfg)
    check_fits(m, cfg)
    if wd.shape[0] < 1 or wd.shape[1] < 1:
        raise SparseFlowError(f"weights must have at least one row and column, got shape {wd.shape}")
    a2 = a.reshape(a.shape[0], -1)
    if a2.shape[1] < 1:
        raise SparseFlowError("input has no vectors")
    b = check_bias(bias, wd.shape[0], cfg.arith)
    return m, a2, layer(wd, a2, cfg.arith) if b is None else layer(wd, a2, cfg.arith, b), wd, b


def run_jobs(jobs, cfg: EIEConfig, *, sim: str = "verilator", pacing: float = 1.0, out_pacing: float | None = None,
             load_pacing: float | None = None, seed: int = 0, waves: bool | None = None,
             check: bool = True, backend: str = "cocotb", processes: int | None = None) -> list[dict]:
    """Simulate several ``(weights, x)`` or ``(weights, x, requant)`` or
    ``(weights, x, requant, codebook)`` or ``(weights, x, requant, codebook, bias)`` or
    ``(weights, x, requant, codebook, bias, index_bits)`` jobs in ONE run of one build (``bias``:
    one integer per row, only with ``cfg.arith.bias_bits``; a job without one gets zeros;
    ``index_bits``: the job's relative-index width, at most the build's, see :func:`_prepare`).

    ``pacing``: probability that the input driver offers a word in a cycle (1.0: full speed);
    ``out_pacing``/``load_pacing`` likewise for result ready and load valid (default: ``pacing``).
    Each job's ``requant`` (a :class:`Requant`, or None for the configuration's) is loaded
    through ``load``. Returns one dict per job (see :func:`run_spmv`).

    ``backend``: ``"cocotb"`` (the verification testbench ``verif.eie_tb``) or ``"native"``
    (the compiled Verilator harness, ``verif.native``: same stream timing, same results and
    counters, no Python per cycle; Verilator only). ``processes`` (native only): split the
    vectors over that many harness processes; default: one per core (at most 2) when every
    stream runs at full speed and there are at least 64 vectors, else 1.
    """
    from rtl.common.config import build_config
    from rtl.eie.array import EIEArray
    from verif.native import check_backend
    from verif.runner import simulate

    check_backend(backend, sim)

    if not isinstance(cfg, EIEConfig):
        raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
    for name, val in (("pacing", pacing), ("out_pacing", out_pacing), ("load_pacing", load_pacing)):
        if val is not None and not (isinstance(val, (int, float)) and 0.0 < val <= 1.0):
            raise SparseFlowError(f"{name} must be in (0, 1], not {val!r}")
    prepared, arrays = prepare_jobs(jobs, cfg)
    bcfg = build_config(cfg)
    meta = {"n_jobs": len(prepared), "act_bits": cfg.arith.act_bits, "out_bits": cfg.arith.out_bits,
            "n_pes": cfg.n_pes, "pacing": pacing, "out_pacing": out_pacing or pacing,
            "load_pacing": load_pacing or pacing, "seed": seed, "frontend_width": cfg.frontend_width}
    t0 = time.perf_counter()
    if backend == "native":
        full_speed = pacing == 1.0 and (out_pacing or 1.0) == 1.0 and (load_pacing or 1.0) == 1.0
        n_vec = sum(int(arrays[f"x_{i}"].shape[1]) for i in range(len(prepared)))
        if processes is None:
            processes = min(os.cpu_count() or 1, 2) if full_speed and n_vec >= 64 else 1
        res, tb_meta, run_dir = _run_native(bcfg, arrays, meta, waves, processes)
    else:
        with tempfile.TemporaryDirectory(prefix="eie_case_") as tmp:
            case = Path(tmp) / "case.npz"
            np.savez(case, meta=np.array(json.dumps(meta)), **arrays)
            run_dir = simulate(EIEArray(bcfg), toplevel=TOPLEVEL, test_module="verif.eie_tb", sim=sim,
                               case=case, waves=waves)
        res = np.load(run_dir / "results.npz")
        tb_meta = json.loads(str(res["meta"]))
    wall = time.perf_counter() - t0
    out = []
    for i, (m, a2, expect, wd, jcfg) in enumerate(prepared):
        y = res[f"y_{i}"]
        if check and not np.array_equal(y, expect):
            r, b = (int(v) for v in np.argwhere(y != expect)[0])
            raise RuntimeError(f"{sim}: EIE RTL disagrees with the golden model (job {i}, vector {b}, row {r}): "
                               f"got {int(y[r, b])}, expected {int(expect[r, b])}; run folder {run_dir}")
        vectors = res[f"vectors_{i}"].tolist()
        bad = check and vector_counter_mismatch(vectors, sum(p[1].shape[1] for p in prepared[:i]))
        if bad:
            raise RuntimeError(f"{sim}: EIE {bad} after the vectors of job {i}; run folder {run_dir}")
        out.append({
            "y": y, "cycles": res[f"cycles_{i}"].tolist(), "vectors": vectors, "total_cycles": res[f"total_{i}"].tolist(),
            "busy": res[f"busy_{i}"].tolist(), "stall": res[f"stall_{i}"].tolist(),
            "matrix": m, "x": a2, "weights": wd, "cfg": jcfg,
            "sim": sim, "backend": backend, "run_dir": str(run_dir) if run_dir else None, "sim_seconds": tb_meta["sim_seconds"],
            "sim_cycles": tb_meta["sim_cycles"], "wall_seconds": wall, "processes": tb_meta.get("processes", 1),
        })
    return out


def prepare_jobs(jobs, cfg: EIEConfig) -> tuple[list[tuple], dict]:
    """Validate and encode :func:`run_jobs`'s ``jobs``: per job ``(EIEMatrix, x (C, B),
    expected y (R, B), dense weights, the job's config)``, and the testbench arrays
    (``load_i``, ``x_i``, ``rows_i``)."""
    prepared, arrays = [], {}
    for i, job in enumerate(jobs):
        weights, x = job[0], job[1]
        rq = job[2] if len(job) > 2 and job[2] is not None else cfg.arith.requant
        cb = job[3] if len(job) > 3 else None
        bias = job[4] if len(job) > 4 else None
        ib = job[5] if len(job) > 5 else None
        if (rq is None) != (cfg.arith.requant is None):
            raise SparseFlowError("a job's requant must be set exactly when the configuration's is")
        jcfg = cfg if rq is None else cfg.with_(arith=replace(cfg.arith, requant=rq))
        m, a2, expect, wd, b = _prepare(weights, x, jcfg, cb, bias, ib)
        if ib is not None:
            jcfg = jcfg.with_(index_bits=ib)
        prepared.append((m, a2, expect, wd, jcfg))
        arrays[f"load_{i}"] = load_words(m, cfg, rq, b)
        arrays[f"x_{i}"] = a2
        arrays[f"rows_{i}"] = np.array(m.shape[0])
    return prepared, arrays


def native_watchdog(bcfg: EIEConfig, slowest: float) -> int:
    """Cycles without a handshake after which the native harness calls the array hung: the
    longest quiet stretch is a vector's compute after its last input, bounded by the entries
    of one PE; ``slowest`` is the lowest stream pacing."""
    return int((10_000 + 4 * (bcfg.max_entries + bcfg.max_rows + bcfg.max_cols)) / slowest ** 2)




def _run_native(bcfg: EIEConfig, arrays: dict, meta: dict, waves, processes: int = 1
                ) -> tuple[dict, dict, str | None]:
    """The jobs of :func:`run_jobs` on the native harness; results keyed like ``verif.eie_tb``'s."""
    from rtl.eie.array import EIEArray
    from verif import native
    from verif.runner import waves_requested

    waves = waves_requested(waves)
    dut = EIEArray(bcfg)
    chunks = native.x_chunks(dut)
    exe = native.build(dut, toplevel=TOPLEVEL, eie=True, n_pes=bcfg.n_pes, waves=waves)
    jobs = []
    for i in range(meta["n_jobs"]):
        x = arrays[f"x_{i}"]
        jobs.append({"load": arrays[f"load_{i}"], "x": packed_inputs(x, meta["act_bits"], bcfg.frontend_width),
                     "rows": int(arrays[f"rows_{i}"])})
    s = meta["seed"]
    slowest = min(meta["load_pacing"], meta["pacing"], meta["out_pacing"])
    results, facts = native.run_split(exe, jobs, processes=1 if waves else processes,
                                      out_bits=meta["out_bits"], eie=True, n_pes=bcfg.n_pes,
                                      pacing=(meta["load_pacing"], meta["pacing"], meta["out_pacing"]),
                                      seeds=(s + 1, s + 2, s + 3), watchdog=native_watchdog(bcfg, slowest), waves=waves,
                                      chunks=chunks)
    res = {}
    for i, r in enumerate(results):
        res.update({f"y_{i}": r["y"], f"cycles_{i}": np.array(r["cycles"]), f"total_{i}": np.array(r["total_cycles"]),
                    f"busy_{i}": np.array(r["busy"]).reshape(-1, bcfg.n_pes),
                    f"stall_{i}": np.array(r["stall"]).reshape(-1, bcfg.n_pes), f"vectors_{i}": np.array(r["vectors"])})
    return res, {"sim_seconds": facts["sim_seconds"], "sim_cycles": facts["sim_cycles"],
                 "processes": facts.get("processes", 1)}, facts["run_dir"]


def run_spmv(weights, x, cfg: EIEConfig, sim: str = "verilator", pacing: float = 1.0, waves: bool = False,
             codebook=None, bias=None, **kw) -> dict:
    """``y = requant(W @ x + bias)`` on the simulated EIE array, checked bit for bit against ``model.hw.reference``.

    ``weights`` (R, C) integers (codebook indices with ``cfg.codebook`` and ``codebook``), ``x``
    (C,) or (C, B), ``bias`` None or (R,) integers (needs ``cfg.arith.bias_bits``). Returns ``dict(y=(R, B), cycles=[per vector], total_cycles, busy=[per vector
    [per PE]], stall, predicted=[cycle model per vector], ideal=[bound per vector], efficiency,
    ...)``. Bad input raises :class:`SparseFlowError`; an RTL/golden mismatch raises RuntimeError.
    """
    from model.hw.cyclemodel import ideal_cycles, predict_cycles
    job = (weights, x, None, codebook, bias) if codebook is not None or bias is not None else (weights, x)
    r = run_jobs([job], cfg, sim=sim, pacing=pacing, waves=waves or None, **kw)[0]
    m, a2 = r["matrix"], r["x"]
    r["predicted"] = [predict_cycles(m, a2[:, b], cfg) for b in range(a2.shape[1])]
    r["ideal"] = [ideal_cycles(r["weights"], a2[:, b], cfg.n_pes) for b in range(a2.shape[1])]
    r["efficiency"] = [i / c if c else 1.0 for i, c in zip(r["ideal"], r["cycles"])]
    return r
