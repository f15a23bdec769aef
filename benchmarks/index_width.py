"""Per-layer relative-index width on the EIE paper's layers: bits per non-zero, padding, cycles, GOPS.

For every layer of ``benchmarks.eie_efficiency.LAYERS`` (full size, the paper's densities,
uniformly random pruning, seed 0) on 64 PEs with depth-8 queues, with EIE's 4-bit weight sharing
(codebook mode) and with plain 8-bit weights:

* the cycle model's cycles, entry bits per non-zero (padding included) and padding fraction at
  EIE's 4-bit relative index and at the width :func:`model.hw.costmodel.choose_index_bits` picks
  (fewest memory bits x cycles, from :data:`model.hw.costmodel.INDEX_WIDTHS`);
* throughput at ``--fmax`` MHz (the 64-PE ECP5 build's measured Fmax, ``docs/synthesis.md``):
  effective GOPS = 2 x (non-zero weights met by non-zero activations) / time, and the peak
  2 x 64 x Fmax, next to EIE's 102 GOPS (64 PEs x 2 ops x 800 MHz, its peak on compressed
  layers).

Writes ``docs/results/index_width.json`` and ``index_width.md``. About 5 minutes on a loaded
2-core machine (the cycle model replays every non-zero activation at every width).

    python -m benchmarks.index_width --fmax 100
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.eie_efficiency import LAYERS, make_layer
from model.hw.config import Arith, EIEConfig
from model.hw.costmodel import EIE_PAPER_BITS_PER_NONZERO, INDEX_WIDTHS, choose_index_bits, index_width_costs

ROOT = Path(__file__).resolve().parent.parent
EIE_GOPS, EIE_MHZ, PES, DEPTH = 102.0, 800.0, 64, 8


def layer_rows(name: str, vectors: int, fmax: float) -> list[dict]:
    w, x = make_layer(name, vectors=vectors)
    useful = np.mean([np.count_nonzero(w[:, x[:, b] != 0]) for b in range(x.shape[1])])
    rows = []
    for book in (True, False):
        cfg = EIEConfig(n_pes=PES, fifo_depth=DEPTH, max_rows=w.shape[0], max_entries=1,
                        arith=Arith(max_cols=w.shape[1]), codebook=book, codebook_bits=4)
        costs = index_width_costs(w, x, cfg)
        best = choose_index_bits(costs)
        c4, cb = costs[4], costs[best]
        rows.append({
            "layer": name, "shape": list(w.shape), "weights": "4-bit codebook" if book else "8-bit",
            "index_bits": best, "bits_per_nonzero_4": c4["bits_per_nonzero"], "bits_per_nonzero": cb["bits_per_nonzero"],
            "padding_4": round(c4["padding_entries"] / max(c4["entries"], 1), 4),
            "padding": round(cb["padding_entries"] / max(cb["entries"], 1), 4),
            "cycles_4": c4["cycles"], "cycles": cb["cycles"], "speedup_vs_4": round(c4["cycles"] / cb["cycles"], 4),
            "gops_4": round(2 * useful / c4["cycles"] * fmax / 1e3, 3),
            "gops": round(2 * useful / cb["cycles"] * fmax / 1e3, 3),
            "widths": {str(b): c for b, c in costs.items()},
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fmax", type=float, required=True, help="clock in MHz for the GOPS columns (the measured Fmax)")
    ap.add_argument("--vectors", type=int, default=2, help="input vectors per layer (default 2)")
    ap.add_argument("--layers", default=",".join(LAYERS), help="comma-separated layer names")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results"), help="output folder")
    a = ap.parse_args(argv)
    rows = []
    for name in a.layers.split(","):
        t0 = time.perf_counter()
        rows += layer_rows(name, a.vectors, a.fmax)
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    peak = 2 * PES * a.fmax / 1e3
    res = {"n_pes": PES, "fifo_depth": DEPTH, "fmax_mhz": a.fmax, "widths": list(INDEX_WIDTHS),
           "peak_gops": peak, "eie": {"gops": EIE_GOPS, "mhz": EIE_MHZ, "bits_per_nonzero": EIE_PAPER_BITS_PER_NONZERO},
           "layers": rows}
    out = Path(a.out)
    (out / "index_width.json").write_text(json.dumps(res, indent=1) + "\n")
    md = [f"64 PEs, depth 8, cycle model, {a.vectors} vectors per layer; GOPS at {a.fmax:g} MHz "
          f"(peak {peak:.1f}; EIE: {EIE_GOPS:g} GOPS peak at {EIE_MHZ:g} MHz, {EIE_PAPER_BITS_PER_NONZERO} bits/non-zero "
          f"padding not counted)", "",
          "| layer | weights | index bits | bits/nz (4-bit index) | bits/nz | padding (4-bit) | padding | cycles (4-bit) "
          "| cycles | speed-up | GOPS (4-bit) | GOPS |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['layer']} | {r['weights']} | {r['index_bits']} | {r['bits_per_nonzero_4']:.2f} | "
                  f"{r['bits_per_nonzero']:.2f} | {r['padding_4']:.1%} | {r['padding']:.1%} | {r['cycles_4']:.0f} | "
                  f"{r['cycles']:.0f} | {r['speedup_vs_4']:.2f}x | {r['gops_4']:.2f} | {r['gops']:.2f} |")
    (out / "index_width.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
