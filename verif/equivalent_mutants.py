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

F = "formal"
A = "argued"
EQUIVALENT: dict[str, dict[str, tuple[str, str]]] = {
    "eie": {
        r"mutate -mode const0 -module eie_array -cell $flatten\broadcast.\staged.$82 -port A -portbit 16":
            (A, "PairBuffer head_next bit 16: only head_next[21:25] (the mask) has a reader"),
        r"mutate -mode cnot0 -module eie_array -cell $flatten\broadcast.\staged.$83 -port Y -portbit 18 -ctrlbit 10 "
        r"-wire broadcast.staged.head_next -wirebit 18":
            (A, "PairBuffer head_next bit 18: only head_next[21:25] has a reader"),
        r"mutate -mode cnot1 -module eie_array -cell $flatten\broadcast.\staged.$83 -port Y -portbit 19 -ctrlbit 18 "
        r"-wire broadcast.staged.head_next -wirebit 19":
            (A, "PairBuffer head_next bit 19: only head_next[21:25] has a reader"),
        r"mutate -mode cnot0 -module eie_array -cell $flatten\broadcast.$34 -port Y -portbit 3 -ctrlbit 2":
            (A, "broadcast fire: OR bit 3 becomes ~(y3 ^ y2), equal to y3 when y2 = 1; the only reader, a "
                "reduce-AND, is 0 anyway when y2 = 0"),
        r"mutate -mode const0 -module eie_array -cell $flatten\pe2.$347 -port Q -portbit 8 -wire pe2.b_lm1 -wirebit 8":
            (A, "PE pointer bit 8: at most 6 x 24 = 144 entries per PE in the screened configuration"),
        r"mutate -mode inv -module eie_array -cell $flatten\pe2.$345 -port Q -portbit 8 -wire pe2.b_start -wirebit 8":
            (A, "PE pointer bit 8: at most 144 entries per PE"),
        r"mutate -mode const0 -module eie_array -cell $flatten\pe0.$347 -port Q -portbit 3 -wire pe0.b_lm1 -wirebit 3":
            (A, "b_lm1 (column length - 1) bit 3: a column holds at most max_rows / n_pes = 6 entries in a PE, "
                "so length - 1 <= 5; an empty column (all ones) is never taken (take needs ~b_empty)"),
        r"mutate -mode cnot0 -module eie_array -cell $286 -port A -portbit 6 -ctrlbit 0":
            (A, "register decode: load addresses of register writes are 0-3, bit 6 is 0; the compare that "
                "survived is with an odd register, for which the replacement is 0 whenever it can match"),
        r"mutate -mode const0 -module eie_array -cell $315 -port Y -portbit 29":
            (A, "busy bits >= 9: a PE's busy count per vector is at most its entries (<= 256)"),
        r"mutate -mode const0 -module eie_array -cell $405 -port D -portbit 16":
            (A, "busy_live bit 16: at most 256 per vector"),
        r"mutate -mode cnot1 -module eie_array -cell $425 -port Q -portbit 12 -ctrlbit 76 -wire busy -wirebit 12":
            (A, "busy output bits 12 of PE 0 and PE 2: both always 0 (<= 256)"),
        r"mutate -mode cnot1 -module eie_array -cell $411 -port D -portbit 8 -ctrlbit 21":
            (A, "stall_live bit 21 (the control bit): a PE's stall count per vector counts cycles its full "
                "queue holds up the broadcast; a full queue keeps its walker issuing, so the count stays "
                "within about twice the PE's entries (<= 2 x 144 + 2), far below 2^21"),
        r"mutate -mode const0 -module eie_array -cell $flatten\pe0.$259 -port A -portbit 0":
            (A, "~b_empty in take forced to 1: a PE is sent a column only if its COLMASK bit is set, which "
                "the host sets exactly when the column has entries in that PE"),
        r"mutate -mode cnot1 -module eie_array -cell $flatten\nonzero.$35 -port A -portbit 2 -ctrlbit 4":
            (A, "col != 24 with bit 2 ^= bit 4 swaps col 24 and 28: past every legal cols (<= 24) the "
                "elements are dropped either way"),
    },
    "2:4": {
        r"mutate -mode cnot1 -module sparse24_engine -cell $521 -port Y -portbit 2 -ctrlbit 1":
            (F, "Mux(rbuf, 0, wpr = 8) bit 2 ^= bit 1: bit 1 is 0 in both inputs"),
        r"mutate -mode cnot0 -module sparse24_engine -cell $518 -port B -portbit 2 -ctrlbit 1":
            (A, "c_first from a thermometer vmask: differs only for vmask = 001, setting lane 2's first "
                "without valid; the MAC reads first only under valid"),
        r"mutate -mode const0 -module sparse24_engine -cell $719 -port A -portbit 4":
            (F, "cols_nz without bit 4: its only reader ANDs it with ~(cols_in > 4)"),
        r"mutate -mode inv -module sparse24_engine -cell $888 -port CLK -portbit 0":
            (A, "glast clocked on the falling edge: written only with ld_cols from registers stable all "
                "cycle, read only when issue or ld_cols, and issue is 0 in a ld_cols cycle"),
        r"mutate -mode cnot1 -module sparse24_engine -cell $816 -port D -portbit 2 -ctrlbit 3":
            (A, "gleft bit 3: gleft <= glast <= 7 for cols <= max_cols = 32"),
        r"mutate -mode const0 -module sparse24_engine -cell $858 -port D -portbit 4":
            (A, "oleft bit 4: oleft <= rows - 1 <= 15 for rows <= max_rows = 16"),
        r"mutate -mode const1 -module sparse24_engine -cell $824 -port Q -portbit 0 -wire vmask -wirebit 0":
            (A, "vmask bit 0 at 1: lane 0 holds a row in every block"),
        r"mutate -mode const1 -module sparse24_engine -cell $882 -port Q -portbit 0 -wire rows_m1 -wirebit 0":
            (A, "rows_m1 bit 0 at 1: rows >= 1, so lane 0 always holds a row of the first block"),
    },
    "dense": {
        r"mutate -mode const0 -module dense_engine -cell $flatten\requant.$32 -port Y -portbit 57":
            (F, "rounding constant (1 << shift) >> 1 with a 5-bit shift: bits 31 and up are 0"),
        r"mutate -mode const0 -module dense_engine -cell $390 -port A -portbit 0":
            (F, "wcol < 32 for a 6-bit wcol is ~wcol[5]: bit 0 does not matter"),
        r"mutate -mode cnot1 -module dense_engine -cell $476 -port A -portbit 0 -ctrlbit 2":
            (F, "ld.addr[2:].any() with bit 0 ^= bit 2: the OR is 1 either way when bit 2 is 1"),
        r"mutate -mode cnot1 -module dense_engine -cell $flatten\mac2.$procmux$33 -port A -portbit 3 -ctrlbit 23":
            (A, "prod1 hold value: it reaches prod1 only after a cycle without s1_valid, when the "
                "accumulator ignores prod1; the next valid group reloads it"),
        r"mutate -mode const1 -module dense_engine -cell $flatten\queue1.$32 -port Y -portbit 0 "
        r"-wire queue1.take2 -wirebit 0":
            (A, "queue1.take2 at 1: differs only on a pop from a full queue, where w_data (lane 1's "
                "unchanged result register) equals entry3"),
        r"mutate -mode const1 -module dense_engine -cell $procmux$229 -port B -portbit 0":
            (A, "rows_m2 load bit 0 at 1: differs only for rows <= 3, where every block is the last and "
                "vmask never selects rem_m2"),
        r"mutate -mode const0 -module dense_engine -cell $828 -port Q -portbit 4 -wire oleft -wirebit 4":
            (A, "oleft bit 4: oleft <= rows - 1 <= 15"),
        r"mutate -mode const0 -module dense_engine -cell $778 -port Q -portbit 2 -wire wnext -wirebit 2":
            (A, "wnext bit 2: wnext is wpr = 16 (dense: 32 columns / 2) times a block index, so its bits "
                "0-3 are always 0"),
        r"mutate -mode cnot0 -module dense_engine -cell $798 -port Q -portbit 1 -ctrlbit 0 -wire rem_m2 -wirebit 1":
            (A, "rem_m2 bit 1 becomes ~(bit1 ^ bit0): rem_m2 is a thermometer code, so this differs only "
                "for 000, which holds exactly when b_last is set (both updated together), and then vmask "
                "takes rows_m1, not rem_m2; rem_m2 has no other reader"),
    },
}


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
