"""Native simulation backend: the generated Verilog under a compiled Verilator C++ harness.

cocotb drives every cycle from Python (tens of thousands of cycles per second); here a C++
``main`` (``harness.cpp`` beside this file) drives the same streams with no Python in the
cycle loop. It mirrors the cocotb testbenches (``verif.eie_tb``, ``verif.sparse24_tb``) cycle
for cycle: the same stream handshakes, the same pacing decisions from the same seeded
generator (SplitMix64, :class:`verif.streams.Pacer`), the counters read at the same moments.
So for the same case both backends give identical outputs and counters; the cocotb path
stays the verification regression (scoreboards, monitors, corner cases), this one runs the
big jobs.

Data travels through files: Python writes the load words and packed input words as int64,
the harness writes the results and counters as int64 (layout in ``harness.cpp``). One build
per (Verilog text, engine kind, PE count, waves), cached in ``build/sim`` like the cocotb
builds; a build goes into a temporary folder renamed into place, so a cache entry is either
whole or absent.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from model.errors import SparseFlowError

HARNESS = Path(__file__).with_name("harness.cpp")
BACKENDS = ("cocotb", "native")
# Same optimisation and X handling as the cocotb Verilator builds (verif.runner.VERILATOR_ARGS),
# so both backends simulate the same netlist semantics.
VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal", "-Wno-lint", "-Wno-style")
_BUILT: dict = {}


def check_backend(backend: str | None, sim: str) -> str:
    """The backend to run on ``sim``: ``backend``, or by default native on Verilator and cocotb
    on Icarus; raises if the pair cannot run."""
    if backend is None:
        backend = "native" if sim == "verilator" else "cocotb"
    if backend not in BACKENDS:
        raise SparseFlowError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "native" and sim != "verilator":
        raise SparseFlowError(f"the native backend runs on verilator, not {sim}; use --backend cocotb for {sim}")
    return backend


def x_chunks(component) -> int:
    """int64 chunks per ``x`` word of ``component`` (more than one for an input wider than 64
    bits: the EIE array's wide front end); :func:`build` and :func:`run` take it."""
    members = component.signature.members
    if "x" not in members:
        return 1
    from amaranth.hdl import Shape
    width = Shape.cast(members["x"].signature.members["payload"].shape).width  # a Layout or a plain width
    return max(1, -(-width // 64))


def build(component, *, toplevel: str, eie: bool, n_pes: int = 1, waves: bool = False, threads: int = 1) -> Path:
    """Compile ``component`` with the native harness; return the simulator executable (cached).

    ``threads`` > 1 builds a multi-threaded model (Verilator ``--threads``); measured in
    ``benchmarks/sim_speed.py``, it does not pay on these designs (see docs/simulation.md).
    """
    from verif.runner import skip_elaboration, to_verilog

    key = getattr(component, "build_key", None)
    memo = (key, toplevel, eie, n_pes, waves, threads) if key is not None else None
    if memo in _BUILT and _BUILT[memo].exists():
        skip_elaboration(component)
        return _BUILT[memo]
    exe = build_verilog(to_verilog(component, toplevel), toplevel=toplevel, eie=eie, n_pes=n_pes,
                        waves=waves, threads=threads, chunks=x_chunks(component))
    if memo is not None:
        _BUILT[memo] = exe
    return exe


def build_verilog(text: str, *, toplevel: str, eie: bool, n_pes: int = 1, waves: bool = False,
                  threads: int = 1, mutsel: bool = False, chunks: int = 1) -> Path:
    """:func:`build` from Verilog text (cached by the text). ``mutsel``: the top module has a
    ``mutsel`` input (a mutated netlist, :mod:`verif.mutation`), driven from ``run(mutsel=)``."""
    from rtl.common.protocol import COUNTER_BITS
    from verif.runner import BUILD_ROOT, _locked
    from verif.tools import tool_env

    defines = [f"-DSF_NPES={n_pes}", f"-DSF_COUNTER_BITS={COUNTER_BITS}"] + (["-DSF_EIE"] if eie else []) \
        + (["-DSF_TRACE"] if waves else []) + (["-DSF_MUTSEL"] if mutsel else []) \
        + ([f"-DSF_X_CHUNKS={chunks}"] if chunks > 1 else [])
    extra = ["--threads", str(threads)] if threads > 1 else []
    harness = HARNESS.read_text()
    digest = hashlib.sha256(f"{VERILATOR_FLAGS}{defines}{extra}{harness}{text}".encode()).hexdigest()[:12]
    tag = ("-waves" if waves else "") + (f"-t{threads}" if threads > 1 else "")
    final = BUILD_ROOT / "sim" / f"{toplevel}-native{tag}-{digest}"
    exe = final / "sim"
    with _locked(final):
        if not exe.exists():
            if final.exists():  # an interrupted or damaged build: start again
                shutil.rmtree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
            try:
                (tmp / f"{toplevel}.v").write_text(text)
                shutil.copy(HARNESS, tmp / "harness.cpp")
                cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", *VERILATOR_FLAGS,
                       "--prefix", "Vdut", "--top-module", toplevel, "--Mdir", "obj", "-o", "../sim",
                       # The PyPI wheel's verilated.mk leaves the precompiled-header flag empty;
                       # the model's hot code at -O3 (the default OPT_FAST is -Os).
                       "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O3",
                       *[f for d in defines for f in ("-CFLAGS", d)],
                       *(["--trace-fst"] if waves else []), *extra,
                       "harness.cpp", f"{toplevel}.v"]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, cwd=tmp, env=tool_env(), capture_output=True, text=True)
                (tmp / "build.log").write_text(proc.stdout + proc.stderr)
                if proc.returncode != 0 or not (tmp / "sim").exists():
                    first = next((ln for ln in (proc.stderr + proc.stdout).splitlines()
                                  if "error" in ln.lower()), "no error line")
                    raise RuntimeError(f"native build of {toplevel} failed: {first.strip()} "
                                       f"(log: {tmp / 'build.log'})")
                (tmp / "build_seconds").write_text(f"{time.perf_counter() - t0:.2f}\n")
                shutil.rmtree(tmp / "obj", ignore_errors=True)  # 10s of MB of objects; the binary is all we run
                os.rename(tmp, final)
            except KeyboardInterrupt:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    return exe


def run(exe: Path, jobs: list[dict], *, out_bits: int, eie: bool, n_pes: int = 1,
        pacing: tuple[float, float, float] = (1.0, 1.0, 1.0), seeds: tuple[int, int, int] = (0, 0, 0),
        watchdog: int = 100_000, waves: bool = False, mutsel: int | None = None,
        timeout: float | None = None, idle: int = 0, chunks: int = 1) -> tuple[list[dict], dict]:
    """Run the harness on ``jobs`` (dicts with ``load`` words, packed ``x`` words (n_vec, cols),
    ``rows``); ``pacing``/``seeds`` for the load, x and y streams. Returns per-job raw results
    (``y`` (rows, n_vec) and counters) and run facts (``sim_cycles``, ``sim_seconds``).

    A stalled DUT or a protocol error raises ``RuntimeError`` with the harness's message
    (``timeout``: seconds of wall time before the run counts as stalled). ``mutsel``: the
    mutant to activate in a build with ``mutsel`` (:func:`build_verilog`). ``idle``: cycles
    with every stream idle after reset, before the first job (time counters' high bits).
    ``chunks``: int64 per ``x`` word (:func:`x_chunks`; the build's), ``x`` then holding Python ints.
    """
    words = [np.array([len(jobs)], dtype=np.int64)]
    for j in jobs:
        x = np.asarray(j["x"], dtype=np.int64 if chunks == 1 else object)
        n_vec, cols = x.shape
        if chunks > 1:  # each word as `chunks` int64, low bits first
            mask = (1 << 64) - 1
            x = np.array([[((v >> (64 * c)) & mask) - ((1 << 64) if (v >> (64 * c + 63)) & 1 else 0)
                           for v in x.reshape(-1) for c in range(chunks)]], dtype=np.int64)
        words += [np.array([len(j["load"])], dtype=np.int64), np.asarray(j["load"], dtype=np.int64),
                  np.array([j["rows"], n_vec, cols], dtype=np.int64), x.reshape(-1)]
    keep = waves
    tmp = Path(tempfile.mkdtemp(prefix="native-")) if not keep else \
        Path(exe).parent / "runs" / uuid.uuid4().hex[:10]
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        np.concatenate(words).astype("<i8").tofile(tmp / "case.bin")
        cmd = [str(exe), "--in", str(tmp / "case.bin"), "--out", str(tmp / "out.bin"),
               "--status", str(tmp / "status"), "--out-bits", str(out_bits), "--watchdog", str(int(watchdog))]
        for name, p, s in zip(("load", "x", "y"), pacing, seeds):
            cmd += [f"--p-{name}", repr(float(p)), f"--seed-{name}", str(int(s))]
        if waves:
            cmd += ["--waves", str(tmp / "dump.fst")]
        if mutsel is not None:
            cmd += ["--mutsel", str(int(mutsel))]
        if idle:
            cmd += ["--idle", str(int(idle))]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"native simulation failed: stalled: still running after {timeout} s") from None
        status = (tmp / "status").read_text().strip() if (tmp / "status").exists() else ""
        if proc.returncode != 0 or not status.startswith("ok"):
            msg = status[len("error "):] if status.startswith("error ") else \
                (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise RuntimeError(f"native simulation failed: {msg}")
        _, cycles, secs = status.split()
        out = np.fromfile(tmp / "out.bin", dtype="<i8")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    results, pos, vectors_before = [], 0, 0
    for j in jobs:
        rows, (n_vec, _) = int(j["rows"]), np.shape(j["x"])
        r = {"y": np.zeros((rows, n_vec), dtype=np.int64)}
        if eie:
            cyc, tot, busy, stall, vecs = [], [], [], [], []
            for b in range(n_vec):
                r["y"][:, b] = out[pos:pos + rows]
                pos += rows
                cyc.append(int(out[pos]))
                tot.append(int(out[pos + 1]))
                busy.append(out[pos + 2:pos + 2 + n_pes].tolist())
                stall.append(out[pos + 2 + n_pes:pos + 2 + 2 * n_pes].tolist())
                vecs.append(int(out[pos + 2 + 2 * n_pes]))
                pos += 3 + 2 * n_pes
            r.update(cycles=cyc, total_cycles=tot, busy=busy, stall=stall, vectors=vecs)
        else:
            r["y"] = out[pos:pos + rows * n_vec].reshape(n_vec, rows).T.copy()
            pos += rows * n_vec
            n_log = int(out[pos])
            log = out[pos + 1:pos + 1 + 2 * n_log].reshape(n_log, 2)
            pos += 1 + 2 * n_log
            # The harness logs each move of the counter it sees in the job; a later job of the
            # run first sees the counter where the previous one left it: not one of its vectors.
            r.update(cycles=log[log[:, 0] > vectors_before, 1].tolist(), vectors=int(out[pos]), busy=int(out[pos + 1]),
                     total_cycles=int(out[pos + 2]), protocol_errors=[])
            vectors_before = r["vectors"]
            pos += 3
        results.append(r)
    if pos != len(out):
        raise RuntimeError(f"native simulation: {len(out)} result words, expected {pos}")
    facts = {"sim_cycles": int(cycles), "sim_seconds": float(secs), "run_dir": str(tmp) if keep else None}
    if waves:
        import sys
        print(f"waveforms: {tmp / 'dump.fst'}", file=sys.stderr)
    return results, facts


def run_split(exe: Path, jobs: list[dict], *, processes: int, **kw) -> tuple[list[dict], dict]:
    """:func:`run` with every job's vectors split into ``processes`` contiguous chunks, one
    harness process per chunk, run side by side (EIE mode: per-vector results and counters).

    Each process loads every job's weights and runs its chunk of vectors. At full speed on
    every stream a vector's counters do not depend on its neighbours (the cycle model, exact
    on every vector, is per vector; tests/test_native.py checks the split against one run),
    so the merged results equal one process's. ``sim_cycles`` adds the processes' cycles,
    ``sim_seconds`` is the longest process's loop time.
    """
    from concurrent.futures import ThreadPoolExecutor
    if processes < 2 or not kw.get("eie"):
        return run(exe, jobs, **kw)
    parts = [[] for _ in range(processes)]  # per process: (job index, first vector, job dict)
    for i, j in enumerate(jobs):
        n_vec = np.shape(j["x"])[0]
        bounds = np.linspace(0, n_vec, processes + 1).astype(int)
        for p in range(processes):
            lo, hi = bounds[p], bounds[p + 1]
            if hi > lo:
                parts[p].append((i, lo, dict(j, x=np.asarray(j["x"])[lo:hi])))
    parts = [p for p in parts if p]
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        outs = list(pool.map(lambda part: run(exe, [d for _, _, d in part], **kw), parts))
    merged = [None] * len(jobs)
    before = np.cumsum([0] + [np.shape(j["x"])[0] for j in jobs])  # vectors of the earlier jobs
    for part, (results, _) in zip(parts, outs):
        local = 0  # vectors this process ran before the chunk
        for (i, lo, d), r in zip(part, results):
            # The vector counter counts this process's vectors: shift it to one process's count.
            r = dict(r, vectors=[v - local + int(before[i]) + int(lo) for v in r["vectors"]])
            local += np.shape(d["x"])[0]
            merged[i] = merged[i] or []
            merged[i].append((lo, r))
    final = []
    for chunks in merged:
        chunks.sort(key=lambda c: c[0])
        rs = [r for _, r in chunks]
        final.append({"y": np.concatenate([r["y"] for r in rs], axis=1),
                      **{k: [v for r in rs for v in r[k]] for k in ("cycles", "total_cycles", "busy", "stall", "vectors")}})
    facts = {"sim_cycles": sum(f["sim_cycles"] for _, f in outs),
             "sim_seconds": max(f["sim_seconds"] for _, f in outs), "run_dir": None, "processes": len(parts)}
    return final, facts
