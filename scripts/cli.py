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
import sys

from model.errors import SparseFlowError

COMMANDS = ["prune", "emit", "decode", "spmv", "synth", "bench", "demo", "data", "zoo", "inspect", "compile", "run"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + line
        print(f"{self.prog}: error: {message}", file=sys.stderr)
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


def print_json(obj) -> None:
    """The ``--json`` output: one JSON object on stdout."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=_json_default)
    sys.stdout.write("\n")


def _json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SparseFlowError as exc:
        print(f"sparseflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sparseflow: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
