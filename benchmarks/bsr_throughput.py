"""Throughput per multiplier: the block-sparse (BSR) engine against the dense lane engine.

Both engines have ``2 * lanes`` multipliers. For block size 2 and 4 and block density 25, 50 and
75 %, a random block-sparse matrix (``model.hw.formats.bsr.random_blocks``: each block kept
with that probability, all its weights non-zero) and a batch of input vectors run through the
BSR engine (``verif.spmv_bsr.run_spmv``) and the dense baseline (``verif.spmv_sparse24``, which
multiplies every weight, zeros included), both checked bit-exact against
``model.hw.reference``. Time = cycles from the first input element accepted to the last result
accepted over the whole batch (fill and drain included). Throughput per multiplier =
dense-equivalent MACs (``rows * cols * batch``) per cycle per multiplier; the ratio BSR / dense
is the speed-up per multiplier (its limit is ``1 / block density``). Every BSR count is also
compared with the cycle model (``model.hw.bsrcycles``, exact).

    .venv/bin/python -m benchmarks.bsr_throughput [--sim verilator] [--batch 4] [--lanes 4]
                                                  [--shape 256x256] [--out docs/results]

Writes ``bsr_throughput.csv``, ``.md`` and ``.png`` into ``--out`` and prints the table.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from model.hw.config import Arith, BSRConfig, Requant, Sparse24Config, pow2_ceil

BLOCKS = (2, 4)
DENSITIES = (0.25, 0.5, 0.75)
FIELDS = ["block", "density", "measured_density", "rows", "cols", "multipliers", "batch", "words",
          "bsr_cycles", "dense_cycles", "bsr_predicted", "bsr_macs_per_mult_cycle", "dense_macs_per_mult_cycle",
          "ratio", "limit", "single_vector_ratio"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # the project's one-line error and exit status 2
        print(f"sparseflow: error: {message}", file=sys.stderr)
        sys.exit(2)


def measure(block: int, density: float, rows: int, cols: int, lanes: int, batch: int, sim: str,
            backend: str, seed: int = 0) -> dict:
    from model.hw.bsrcycles import simulate_batch
    from model.hw.formats.bsr import random_blocks
    from verif.spmv_bsr import encode, run_spmv
    from verif.spmv_sparse24 import run_spmv as run_lanes
    arith = Arith(weight_bits=8, act_bits=8, max_cols=cols, requant=Requant(7, True))
    rng = np.random.default_rng(seed + block * 100 + int(density * 100))
    w = random_blocks(rng, rows, cols, block, density, 8)
    x = rng.integers(-128, 128, (cols, batch))
    cfg = BSRConfig(lanes=lanes, block=block, max_rows=rows, arith=arith, max_words=1)
    # One build per block size: memories for the fully dense matrix, whatever the density.
    full = simulate_batch(encode(np.ones((rows, cols), dtype=np.int64), cfg), 1, cfg)["busy"]
    cfg = cfg.with_(max_words=pow2_ceil(full))
    m = encode(w, cfg)
    words = simulate_batch(m, 1, cfg)["busy"]
    b = run_spmv(w, x, cfg, sim=sim, backend=backend)
    d = run_lanes(w, x, Sparse24Config(lanes=lanes, max_rows=rows, arith=arith), sim=sim, backend=backend, dense=True)
    predicted = simulate_batch(m, batch, cfg)
    if list(b["cycles"]) != predicted["cycles"] or b["total_cycles"] != predicted["total_cycles"]:
        raise RuntimeError(f"cycle model {predicted['cycles']} != RTL {b['cycles']}")
    mults, macs = cfg.multipliers, rows * cols * batch
    kept = m.nblocks / (-(-rows // block) * -(-cols // block))
    return {
        "block": block, "density": density, "measured_density": round(kept, 4), "rows": rows, "cols": cols,
        "multipliers": mults, "batch": batch, "words": words,
        "bsr_cycles": b["total_cycles"], "dense_cycles": d["total_cycles"], "bsr_predicted": predicted["total_cycles"],
        "bsr_macs_per_mult_cycle": round(macs / b["total_cycles"] / mults, 4),
        "dense_macs_per_mult_cycle": round(macs / d["total_cycles"] / mults, 4),
        "ratio": round(d["total_cycles"] / b["total_cycles"], 4),
        "limit": round(1 / kept, 4) if kept else None,
        "single_vector_ratio": round(d["cycles"][0] / b["cycles"][0], 4),
    }


def markdown(rows: list[dict], command: str) -> str:
    r0 = rows[0]
    lines = ["# Block-sparse engine vs dense baseline: throughput per multiplier\n",
             f"Command: `{command}`. Matrix {r0['rows']}x{r0['cols']}, {r0['multipliers']} multipliers on both "
             f"engines, batch of {r0['batch']} vectors, int8 weights and activations; cycles from the first "
             "input to the last result (fill and drain included). Every BSR count equals the cycle model "
             "(`model.hw.bsrcycles`).\n",
             "| block | block density | words/vector | BSR cycles | dense cycles | BSR MAC/mult/cycle | "
             "dense MAC/mult/cycle | BSR / dense | limit 1/density | single vector |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['block']}x{r['block']} | {r['measured_density']:.3f} | {r['words']} | {r['bsr_cycles']} | "
                     f"{r['dense_cycles']} | {r['bsr_macs_per_mult_cycle']:.3f} | {r['dense_macs_per_mult_cycle']:.3f} | "
                     f"{r['ratio']:.2f}x | {r['limit']:.2f}x | {r['single_vector_ratio']:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for block, mark in zip(BLOCKS, "os"):
        rs = [r for r in rows if r["block"] == block]
        dens = [r["measured_density"] for r in rs]
        ax[0].plot(dens, [r["bsr_macs_per_mult_cycle"] for r in rs], mark + "-", label=f"BSR {block}x{block}")
        ax[1].plot(dens, [r["ratio"] for r in rs], mark + "-", label=f"BSR {block}x{block}")
    dens = sorted({r["measured_density"] for r in rows})
    ax[0].plot(dens, [np.mean([r["dense_macs_per_mult_cycle"] for r in rows])] * len(dens), "k--", label="dense baseline")
    grid = np.linspace(min(dens), max(dens), 50)
    ax[1].plot(grid, 1 / grid, ":", color="grey", label="limit 1 / block density")
    ax[0].set_xlabel("block density")
    ax[0].set_ylabel("dense-equivalent MACs / multiplier / cycle")
    ax[1].set_xlabel("block density")
    ax[1].set_ylabel("BSR / dense throughput per multiplier")
    for a in ax:
        a.legend()
        a.grid(alpha=0.3)
    r0 = rows[0]
    fig.suptitle(f"BSR engine vs dense baseline, {r0['rows']}x{r0['cols']}, {r0['multipliers']} multipliers each, "
                 f"batch {r0['batch']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--sim", default="verilator", choices=["icarus", "verilator"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lanes", type=int, default=4, help="lanes of both engines (2 multipliers each; default 4)")
    p.add_argument("--shape", default="256x256", help="matrix rows x cols (default 256x256)")
    p.add_argument("--out", type=Path, default=Path("docs/results"))
    args = p.parse_args(argv)
    try:
        rows_, cols_ = (int(v) for v in args.shape.lower().split("x"))
    except ValueError:
        p.error(f"--shape must look like 256x256, not {args.shape!r}")
    if min(rows_, cols_, args.batch, args.lanes) < 1:
        p.error("--shape, --batch and --lanes must be positive")
    backend = "native" if args.sim == "verilator" else "cocotb"
    rows = []
    for block in BLOCKS:
        for dens in DENSITIES:
            r = measure(block, dens, rows_, cols_, args.lanes, args.batch, args.sim, backend)
            rows.append(r)
            print(f"{block}x{block} density {r['measured_density']:.3f}: BSR {r['bsr_cycles']} cycles, dense "
                  f"{r['dense_cycles']}: {r['ratio']:.2f}x per multiplier (limit {r['limit']:.2f}x)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "bsr_throughput.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=FIELDS)
        wr.writeheader()
        wr.writerows(rows)
    cmd = "python -m benchmarks.bsr_throughput " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "bsr_throughput.md").write_text(markdown(rows, cmd.strip()))
    plot(rows, args.out / "bsr_throughput.png")
    print(f"wrote {args.out / 'bsr_throughput.csv'}, .md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
