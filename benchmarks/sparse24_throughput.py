"""Throughput per multiplier: the 2:4 engine against the dense baseline, same matrices.

Both engines have ``lanes * 2`` multipliers. For each (shape, lanes) a random 2:4 matrix and a
batch of input vectors run through both RTL engines (``verif.spmv_sparse24.run_spmv``, scored
bit-exact against ``model.hw.reference``); the time is the testbench's count of cycles from the
first input element accepted to the last result accepted over the whole batch, so pipeline
fill and drain are included. Throughput per multiplier is dense-equivalent MACs
(``rows * cols * batch``) per cycle per multiplier; the ratio 2:4 / dense is the speed-up per
multiplier (2.0 is the limit: half the weights are skipped).

    .venv/bin/python -m benchmarks.sparse24_throughput [--sim icarus] [--batch 8] [--out docs/results]

Writes ``sparse24_throughput.csv`` and ``sparse24_throughput.png`` and prints the table.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from model.hw.config import Arith, Requant, Sparse24Config
from verif.spmv_sparse24 import run_spmv

# (rows, cols, lanes). rows/lanes >= 4 keeps the engines compute-bound: the input streams one
# element per cycle, so a vector costs at least `cols` cycles to arrive (see docs/sparse24.md).
SHAPES = [(32, 64, 2), (64, 64, 4), (64, 128, 4), (128, 128, 4), (128, 128, 8), (128, 256, 8), (256, 256, 8)]
QUICK = [(32, 64, 2), (64, 64, 4)]
FIELDS = ["rows", "cols", "lanes", "multipliers", "batch", "sparse_cycles", "dense_cycles",
          "sparse_macs_per_mult_cycle", "dense_macs_per_mult_cycle", "ratio", "single_vector_ratio"]


def config(lanes: int, max_rows: int, max_cols: int) -> Sparse24Config:
    return Sparse24Config(lanes=lanes, max_rows=max_rows,
                          arith=Arith(weight_bits=8, act_bits=8, max_cols=max_cols, requant=Requant(7, True)))


def random_24(rng, rows, cols):
    w = rng.integers(-128, 128, (rows, cols // 4, 4))
    drop = np.argsort(rng.random((rows, cols // 4, 4)), axis=2)[:, :, :2]
    np.put_along_axis(w, drop, 0, axis=2)
    return w.reshape(rows, cols)


def measure(rows, cols, lanes, batch, sim, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    # One build per lane count: the largest shape of that count sizes the memories.
    same = [(r, c) for r, c, l in SHAPES if l == lanes] + [(rows, cols)]
    cfg = config(lanes, max(r for r, _ in same), max(c for _, c in same))
    w = random_24(rng, rows, cols)
    x = rng.integers(-128, 128, (cols, batch))
    sp = run_spmv(w, x, cfg, sim=sim)
    de = run_spmv(w, x, cfg, sim=sim, dense=True)
    mults = cfg.multipliers
    macs = rows * cols * batch
    return {
        "rows": rows, "cols": cols, "lanes": lanes, "multipliers": mults, "batch": batch,
        "sparse_cycles": sp["total_cycles"], "dense_cycles": de["total_cycles"],
        "sparse_macs_per_mult_cycle": round(macs / sp["total_cycles"] / mults, 4),
        "dense_macs_per_mult_cycle": round(macs / de["total_cycles"] / mults, 4),
        "ratio": round(de["total_cycles"] / sp["total_cycles"], 4),
        "single_vector_ratio": round(de["cycles"][0] / sp["cycles"][0], 4),
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [f"{r['rows']}x{r['cols']}\nL={r['lanes']}" for r in rows]
    idx = np.arange(len(rows))
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].bar(idx - 0.2, [r["sparse_macs_per_mult_cycle"] for r in rows], 0.4, label="2:4 engine")
    ax[0].bar(idx + 0.2, [r["dense_macs_per_mult_cycle"] for r in rows], 0.4, label="dense baseline")
    ax[0].set_ylabel("dense-equivalent MACs / multiplier / cycle")
    ax[0].set_xticks(idx, labels, fontsize=8)
    ax[0].set_ylim(0, 2.6)
    ax[0].legend(loc="upper center", ncol=2)
    ax[1].plot(idx, [r["ratio"] for r in rows], "o-", label=f"batch of {rows[0]['batch']}")
    ax[1].plot(idx, [r["single_vector_ratio"] for r in rows], "s--", label="single vector")
    ax[1].axhline(2.0, color="grey", lw=0.8, ls=":")
    ax[1].axhline(1.9, color="red", lw=0.8, ls=":", label="goal 1.9")
    ax[1].set_ylabel("2:4 / dense throughput per multiplier")
    ax[1].set_xticks(idx, labels, fontsize=8)
    ax[1].set_ylim(1.0, 2.1)
    ax[1].legend()
    fig.suptitle("2:4 engine vs dense baseline (same multipliers, fill and drain included)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="two small shapes only")
    p.add_argument("--out", type=Path, default=Path("docs/results"))
    p.add_argument("--plot-only", action="store_true", help="redraw the PNG from the existing CSV")
    args = p.parse_args(argv)
    if args.plot_only:
        with open(args.out / "sparse24_throughput.csv") as fh:
            rows = [{k: float(v) if "." in v else int(v) for k, v in r.items()} for r in csv.DictReader(fh)]
        plot(rows, args.out / "sparse24_throughput.png")
        return 0
    rows = []
    for r, c, l in (QUICK if args.quick else SHAPES):
        res = measure(r, c, l, args.batch, args.sim)
        rows.append(res)
        print(f"{r:4d}x{c:<4d} lanes={l}  2:4 {res['sparse_cycles']:6d} cyc  dense {res['dense_cycles']:6d} cyc  "
              f"ratio {res['ratio']:.3f}  (single vector {res['single_vector_ratio']:.3f})", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "sparse24_throughput.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=FIELDS)
        wr.writeheader()
        wr.writerows(rows)
    plot(rows, args.out / "sparse24_throughput.png")
    ratios = [r["ratio"] for r in rows]
    print(f"ratio min {min(ratios):.3f} mean {np.mean(ratios):.3f} max {max(ratios):.3f}; "
          f"wrote {args.out / 'sparse24_throughput.csv'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
