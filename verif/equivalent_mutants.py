"""The mutation screen's survivors shown equivalent, by a formal check or by a short argument.

Each entry is keyed by the engine and the mutation itself (its ``mutate`` command without the
``-src`` tags), not by its index, so an entry stays with its mutation while the same netlist
is screened again, and stops matching (the mutant counts as a survivor again) when the RTL
changes the netlist's cell names: re-triage then. Values are ``(method, why)``:

* ``"formal"``: :func:`verif.mutation.equivalence` proved it (Yosys ``equiv_make`` /
  ``equiv_simple`` / ``equiv_induct`` of the design against the design with this mutation:
  no output differs, for every input sequence from reset);
* ``"argued"``: the argument in ``why`` (long form in docs/verification.md), for every legal
  input: register values within the configuration, the host's load programs.

The score counts both as equivalent and says which is which (docs/results/mutation.md).
"""
from __future__ import annotations

import re

EQUIVALENT: dict[str, dict[str, tuple[str, str]]] = {"eie": {}, "2:4": {}, "dense": {}}


def key(command: str) -> str:
    """A mutation's identity: its ``mutate`` command without the ``-src`` tags."""
    return re.sub(r"\s+-src\s+\S+", "", command).strip()


def mark(engine: dict) -> None:
    """Mark the survivors of one engine's report (``verif.mutation.mutate_engine``) that this
    table shows equivalent: ``equivalent`` (the text the report prints) and ``equiv_method``."""
    table = EQUIVALENT.get(engine["engine"], {})
    for m in engine["mutations"]:
        hit = table.get(key(m["command"]))
        if m["status"] == "survived" and hit and not m.get("equivalent"):
            m["equiv_method"], m["equivalent"] = hit[0], f"{hit[0]}: {hit[1]}"
        elif m.get("equivalent"):
            m.setdefault("equiv_method", "constant")
