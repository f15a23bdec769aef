"""The ``sparseflow`` command: one subcommand per module ``scripts/cmd_<name>.py``.

Each module provides ``HELP`` (one line), ``add_arguments(parser)`` (cheap: no heavy imports)
and ``run(args) -> int``. User errors are :class:`model.errors.SparseFlowError`; they print as
one line on stderr with exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys

from model.errors import SparseFlowError

COMMANDS = ["prune", "emit", "decode", "spmv", "synth", "bench", "demo", "data", "zoo", "inspect", "compile", "run", "explore"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line with the documented prefix, not usage + line
        print(f"sparseflow: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparseflow", description="Pruned networks to verified sparse hardware.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        modname = f"scripts.cmd_{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


# Configuration fields (model.hw.config) -> the options a user types.
_OPTIONS = {"n_pes": "--pes", "index_bits": "--index-bits", "fifo_depth": "--fifo-depth", "lanes": "--lanes",
            "frontend_width": "--frontend-width",
            "weight_bits": "--weight-bits", "act_bits": "--act-bits", "shift": "--shift"}


def in_option_terms(exc: Exception, extra: dict | None = None) -> SparseFlowError:
    """A configuration error (``<field> must be ...``) reworded with the option the user typed."""
    import re
    msg = str(exc)
    m = re.match(r"acc_bits must be in (\d+)\.\.64", msg)
    if m:
        return SparseFlowError(f"the accumulator would need {m.group(1)} bits (--weight-bits + --act-bits + "
                               f"log2(columns)); at most 64 fit: lower --weight-bits or --act-bits, or use fewer columns")
    names = {**_OPTIONS, **(extra or {})}
    m = re.match(r"(\w+) must ", msg)
    if m and m.group(1) in names:
        msg = names[m.group(1)] + msg[len(m.group(1)):]
    return SparseFlowError(msg)


# The first columns of every per-layer table (compile, run): name, matrix, output positions.
LAYER_HEAD = f"{'layer':14s} {'matrix':>10s} {'pos':>5s} "


def shrink_line(shrunk_from: dict, layers: list[dict]) -> str | None:
    """``shrunk: fc1 300x784 -> 150x784, ...`` for the layers whose pruned channels were removed."""
    parts = [f"{l['name']} {shrunk_from[l['name']][0]}x{shrunk_from[l['name']][1]} -> {l['matrix'][0]}x{l['matrix'][1]}"
             for l in layers if l["name"] in (shrunk_from or {})]
    return ("shrunk (pruned channels and their inputs removed): " + ", ".join(parts)) if parts else None


def layer_head(l: dict) -> str:
    """A report layer row's first columns, under :data:`LAYER_HEAD`."""
    return f"{l['name'][:14]:14s} {l['matrix'][0]:>4d}x{l['matrix'][1]:<5d} {l['positions']:>5d} "


def print_json(obj) -> None:
    """The ``--json`` output: one JSON object on stdout."""
    from model.outputs import json_default
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=json_default)
    sys.stdout.write("\n")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = int(args._run(args) or 0)
        sys.stdout.flush()
        return rc
    except SparseFlowError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("sparseflow: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `sparseflow ... | head`: the reader left; outputs are already written
        try:  # no second BrokenPipeError when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return _fail("standard output was closed before the report was printed (broken pipe)")
    except MemoryError:
        return _fail("out of memory: the input is too large for this machine")
    except OSError as exc:  # an environment problem the command did not name itself
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")


def _fail(message: str) -> int:
    """The one error line (``sparseflow: error: ...``) and exit status 2."""
    line = " ".join(str(message).split("\n")[0].split()) or "failed"
    print(f"sparseflow: error: {line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
