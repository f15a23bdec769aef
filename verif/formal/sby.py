"""Run one SymbiYosys proof of an Amaranth harness and report its status and run time.

A harness is any elaboratable whose ``elaborate(platform)`` adds ``Assert``/``Assume`` when
``platform == "formal"``; its top-level ports are the proof's free inputs. :func:`run` writes
``<name>.il`` (``amaranth.back.rtlil``) and ``<name>.sby`` into a work folder, runs SBY there
(YoWASP tools see only the cwd tree) with ``smtbmc yices`` and returns a :class:`Result`.

``script``: Yosys commands run after ``prep`` on the flattened design, for abstractions (a
``cutpoint`` replaces a net's driver by a free value: what is proven then holds for any value
there) and for the deliberately broken variants of the non-vacuity checks. Each command is
preceded by ``select -assert-min 1`` on its selection when given as :func:`cut`, so a renamed
signal fails loudly instead of silently cutting nothing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

SBY = """\
[options]
mode {mode}
depth {depth}

[engines]
{engine}

[script]
read_rtlil {name}.il
prep -flatten -top {name}
{script}

[files]
{name}.il
"""


@dataclass(frozen=True)
class Proof:
    """One SBY task: ``mode`` "prove" (k-induction of length ``depth``) or "bmc" (``depth`` steps)."""

    name: str
    harness: object
    mode: str = "prove"
    depth: int = 2
    script: tuple[str, ...] = field(default_factory=tuple)
    engine: str = "smtbmc yices"


@dataclass(frozen=True)
class Result:
    status: str  # PASS, FAIL, TIMEOUT or ERROR (SBY's own words for the first two)
    seconds: float  # wall time of the SBY run (elaboration excluded)
    log: str

    @property
    def tail(self) -> str:
        return self.log[-3000:]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (SBY starts smtbmc, and smtbmc yices, in their own process
    groups, so killing SBY's group alone would leave the solver running)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(pid: int) -> None:
    for p in [pid, *_descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cut(selection: str) -> str:
    """Yosys commands making every net of ``selection`` (e.g. ``w:*sel_act0``) a free value."""
    return f"select -assert-min 1 {selection}\ncutpoint {selection}"


def write(proof: Proof, workdir: Path) -> Path:
    """Write ``<name>.il`` and ``<name>.sby`` into ``workdir``; return the .sby path."""
    if proof.mode not in ("prove", "bmc"):
        raise ValueError(f"mode must be prove or bmc, not {proof.mode!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    text = rtlil.convert(proof.harness, name=proof.name, platform="formal", emit_src=False)
    (workdir / f"{proof.name}.il").write_text(text)
    sby = workdir / f"{proof.name}.sby"
    sby.write_text(SBY.format(name=proof.name, mode=proof.mode, depth=proof.depth, engine=proof.engine,
                              script="\n".join(proof.script)))
    return sby


def run(proof: Proof, workdir: Path, timeout: float = 600) -> Result:
    """Run ``proof`` in ``workdir`` (which it may overwrite); TIMEOUT after ``timeout`` seconds."""
    from verif.tools import tool_env
    sby = write(proof, workdir)
    env = tool_env()
    start = time.monotonic()
    proc = subprocess.Popen([env["SBY"], "-f", sby.name], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        log, _ = proc.communicate()
        return Result("TIMEOUT", time.monotonic() - start, log)
    seconds = time.monotonic() - start
    status_file = workdir / proof.name / "status"
    status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    return Result(status, seconds, log)
