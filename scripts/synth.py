"""Text tables of synthesis results (``verif.synth`` runs the flow; ``scripts/cmd_synth.py`` is
the ``sparseflow synth`` command)."""
from __future__ import annotations

COLUMNS = [("engine", "engine"), ("size", "size"), ("logic_cells", "cells"), ("ffs", "FFs"),
           ("bram", "BRAM"), ("dsp", "DSP"), ("fmax_mhz", "Fmax MHz"), ("engine_cycles", "cycles"),
           ("throughput_gmacs", "GMAC/s")]


def format_table(results: list[dict]) -> str:
    rows = [[h for _, h in COLUMNS]] + [[str(r.get(k, "-")) for k, _ in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)
