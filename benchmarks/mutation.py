"""Mutation screening of the engines: would the regression notice if the RTL were wrong?

For each engine, ``mutate -list N -seed S`` (Yosys, as mcy does) picks N single-bit mutations
of its flattened netlist; all are compiled into one native simulator, selected at run time by
``mutsel``, and each mutant runs the regression's random and corner cases (see
``verif/mutation.py`` for the screening set and what kills a mutant). Survivors get a formal
equivalence check (``--equiv``) and are listed with their RTL location.

    .venv/bin/python -m benchmarks.mutation [--engine eie|2:4|dense ...] [--mutants 200] [--seed 1]
                                            [--quick] [--json] [--equiv] [--out docs/results/mutation]

Writes ``<out>.md`` and ``<out>.json`` (not with ``--quick``: 20 mutants, for a smoke run)
and prints the markdown (``--json``: the JSON) on stdout; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_OUT = "docs/results/mutation"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # the project's one-line error and exit status 2
        print(f"sparseflow: error: {message}", file=sys.stderr)
        sys.exit(2)


def markdown(report: dict) -> str:
    lines = ["# Mutation screening\n",
             f"Command: `{report['command']}`; seed {report['seed']}; wall time {report['wall_seconds']:.0f} s "
             f"on {report['workers']} workers.\n",
             "Score = (killed + timed out) / (mutants - shown equivalent). Shown equivalent: by a machine "
             "check (a constant input, or a formal equivalence proof) or by a short argument "
             "(`verif/equivalent_mutants.py`, docs/verification.md); the last score column subtracts "
             "the machine-checked ones only.\n",
             "| engine | mutants | killed | timed out | survived | shown equivalent (checked + argued) | score "
             "| score, checked only | build s | screen s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in report["engines"]:
        c = e["counts"]
        chk = c.get("equivalent_checked", c["equivalent"])
        lines.append(f"| {e['engine']} | {e['mutants']} | {c['killed']} | {c['timed out']} | {c['survived']} | "
                     f"{c['equivalent']} ({chk} + {c['equivalent'] - chk}) | {c['score']:.1f} % | "
                     f"{c.get('score_checked_only', c['score']):.1f} % | {e['build_seconds']:.0f} | "
                     f"{e['screen_seconds']:.1f} |")
    lines.append("\nWhat killed them (the first check that failed): " + "; ".join(
        f"{e['engine']}: " + ", ".join(f"{k} {v}" for k, v in e["counts"]["killed_by"].items())
        for e in report["engines"]) + ".")
    for e in report["engines"]:
        lines += [f"\n## {e['engine']}: per RTL location\n", "| src | killed | timed out | survived |",
                  "|---|---:|---:|---:|"]
        lines += [f"| `{s['src']}` | {s['killed']} | {s['timed out']} | {s['survived']} |" for s in e["by_src"]]
        surv = [m for m in e["mutations"] if m["status"] == "survived"]
        lines += [f"\n### {e['engine']}: survivors ({len(surv)})\n"]
        if surv:
            lines += ["| mutsel | src | mutation | equivalence |", "|---:|---|---|---|"]
            for m in surv:
                cmd = " ".join(w for w in m["command"].split() if not w.startswith("/"))
                cmd = cmd.split(" -src ")[0].replace("mutate ", "")
                lines.append(f"| {m['index']} | `{m['src']}` | `{cmd}` | {m.get('equivalent') or m.get('equiv') or '-'} |")
    return "\n".join(lines) + "\n"


def rescore(out: Path) -> int:
    """Re-apply the equivalence table to a written report (after triage, without screening
    again: the mutants, their outcomes and the command stay those of the run)."""
    from verif.equivalent_mutants import mark
    from verif.mutation import _counts
    path = out.with_suffix(".json")
    if not path.exists():
        print(f"sparseflow: error: no report {path}", file=sys.stderr)
        return 2
    report = json.loads(path.read_text())
    for e in report["engines"]:
        for m in e["mutations"]:
            if m.get("equiv_method") in ("formal", "argued"):
                del m["equivalent"], m["equiv_method"]
        mark(e)
        e["counts"] = _counts(e["mutations"])
    path.write_text(json.dumps(report, indent=1) + "\n")
    md = markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


def main(argv=None) -> int:
    from verif.mutation import ENGINES, Mutation, _counts, equivalence, mutate_engine
    ap = _Parser(prog="python -m benchmarks.mutation", description=__doc__.splitlines()[0])
    ap.add_argument("--engine", action="append", choices=ENGINES, help="repeat for several (default: all)")
    ap.add_argument("--mutants", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="20 mutants, nothing written")
    ap.add_argument("--json", action="store_true", help="print the JSON report instead of markdown")
    ap.add_argument("--equiv", action="store_true", help="formal equivalence check of every survivor")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frontend-width", type=int, default=1, metavar="K",
                    help="EIE: screen the array with this front end (default 1; 8: the scanning one)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="report path without extension")
    ap.add_argument("--rescore", action="store_true",
                    help="no screening: apply verif/equivalent_mutants.py to the report at --out again")
    args = ap.parse_args(argv)
    if args.rescore:
        return rescore(Path(args.out))
    if args.mutants < 1 or args.mutants > 4095:
        ap.error(f"--mutants must be in 1..4095, not {args.mutants}")
    if args.workers < 1:
        ap.error(f"--workers must be at least 1, not {args.workers}")
    n = 20 if args.quick else args.mutants
    engines = args.engine or list(ENGINES)
    t0 = time.perf_counter()
    report = {"seed": args.seed, "workers": args.workers, "engines": [], "eie_frontend_width": args.frontend_width,
              "command": "python -m benchmarks.mutation " + " ".join(argv if argv is not None else sys.argv[1:])}
    for name in engines:
        print(f"{name}: {n} mutants, seed {args.seed}", file=sys.stderr)
        e = mutate_engine(name, n, args.seed, workers=args.workers, frontend_width=args.frontend_width,
                          progress=lambda s: print(s, file=sys.stderr, flush=True))
        if args.equiv:
            work = Path(e["work"])
            for m in e["mutations"]:
                if m["status"] == "survived" and not m.get("equivalent"):
                    m["equiv"] = equivalence(work, Mutation(m["index"], m["command"], m["mode"], m["src"]),
                                             e["toplevel"])
                    if m["equiv"] == "proved":
                        m["equivalent"], m["equiv_method"] = "formal: equiv_make/equiv_simple/equiv_induct", "formal"
                    print(f"{name}: mutant {m['index']} ({m['src']}): {m['equiv']}", file=sys.stderr)
        from verif.equivalent_mutants import mark  # the triaged survivors: formal proofs and arguments
        mark(e)
        e["counts"] = _counts(e["mutations"])
        c = e["counts"]
        print(f"{name}: killed {c['killed']}, timed out {c['timed out']}, survived {c['survived']} "
              f"(equivalent {c['equivalent']}): score {c['score']} %", file=sys.stderr)
        report["engines"].append(e)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    md = markdown(report)
    if not args.quick:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
        out.with_suffix(".md").write_text(md)
    print(json.dumps(report, indent=1) if args.json else md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
