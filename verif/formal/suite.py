"""Every formal proof of the project, with its deliberately broken variants, in one table.

Each entry is (name, factory, expected status, slow). ``factory()`` builds the
:class:`verif.formal.sby.Proof`; the expected status is PASS for a proof and FAIL for a broken
design (the non-vacuity check: the assertions catch it). ``slow`` entries take over a minute
and run only with pytest's ``slow`` marker (``make test-all``).

``python -m verif.formal.suite [--slow] [--only SUBSTRING] [workdir]`` runs them and prints
one line per proof with its status and wall time (the numbers in ``docs/verification.md``).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import eie_pe, fifo, sparse24_mac
from .sby import Proof, run

# BMC depths: every stage of the broadcast (N, the staged pair, a queue of 2) is full within
# 7 cycles of reset, so 10 also covers draining it; each cycle more multiplies the solver time.
# A PE without any one of its bypasses fails at step 15, the earliest possible (two pops at
# cycles 0 and 1, four entries through the pipeline, idle at 13, the bank swap, the read-out
# at 14 and its data at 15), so the PE proofs run to depth 16.
BROADCAST_DEPTH = 10
BROADCAST_DEPTH_SLOW = 12
PE_DEPTH = 16


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[[], Proof]
    expect: str
    slow: bool = False


def _mac(lemma: str, mutant: bool) -> Entry:
    return Entry(f"mac_{lemma}" + ("_broken" if mutant else ""),
                 lambda: sparse24_mac.lemma(lemma, mutant=mutant), "FAIL" if mutant else "PASS")


PROOFS: tuple[Entry, ...] = (
    *(_mac(lemma, mutant) for lemma in sparse24_mac.LEMMAS for mutant in (False, True)),
    Entry("pair_buffer", lambda: fifo.pair_buffer_proof(), "PASS"),
    Entry("pair_buffer_broken", lambda: fifo.pair_buffer_proof(mutant=True), "FAIL"),
    Entry("broadcast", lambda: fifo.broadcast_proof(depth=BROADCAST_DEPTH), "PASS"),
    Entry("broadcast_broken", lambda: fifo.broadcast_proof(mutant=True, depth=BROADCAST_DEPTH), "FAIL"),
    Entry("broadcast_deep", lambda: fifo.broadcast_proof(depth=BROADCAST_DEPTH_SLOW), "PASS", slow=True),
    Entry("eie_pe_flags", lambda: eie_pe.flag_proof(), "PASS"),
    Entry("eie_pe_flags_broken", lambda: eie_pe.flag_proof(mutant=True), "FAIL"),
    Entry("eie_array_flags", lambda: eie_pe.array_flag_proof(), "PASS"),
    Entry("eie_array_flags_broken", lambda: eie_pe.array_flag_proof(mutant=True), "FAIL"),
    Entry("eie_pe_bypass", lambda: eie_pe.pe_proof(depth=PE_DEPTH), "PASS", slow=True),
    *(Entry(f"eie_pe_bypass_no_{b[-1]}", lambda b=b: eie_pe.pe_proof(b, depth=PE_DEPTH), "FAIL", slow=True)
      for b in eie_pe.BYPASSES),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verif.formal.suite", description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", nargs="?", default="build/formal")
    ap.add_argument("--slow", action="store_true", help="also run the proofs marked slow")
    ap.add_argument("--only", default="", help="run only the proofs whose name contains this")
    args = ap.parse_args(argv)
    bad = 0
    for entry in PROOFS:
        if (entry.slow and not args.slow) or args.only not in entry.name:
            continue
        res = run(entry.factory(), Path(args.workdir) / entry.name, timeout=3600)
        ok = res.status == entry.expect
        bad += not ok
        print(f"{entry.name:28s} {res.status:8s} {res.seconds:7.1f} s  {'ok' if ok else 'expected ' + entry.expect}",
              flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
