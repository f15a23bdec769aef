"""``sparseflow demo``: a pruned digits MLP on the simulated EIE array and 2:4 engine, bit-exact."""
from __future__ import annotations

from pathlib import Path

HELP = "train, prune, quantize a digits MLP and run it bit-exact on the simulated hardware, with a report"


def add_arguments(p):
    from model.hw.config import DEFAULT_FRONTEND_WIDTH
    p.add_argument("--hidden", default="128,64", help="hidden layer sizes, multiples of 4 (default 128,64)")
    p.add_argument("--sparsity", type=float, default=0.9, help="sparsity of the unstructured (EIE) network")
    p.add_argument("--method", default="taylor", choices=["magnitude", "taylor", "random"])
    p.add_argument("--schedule", default="iterative", choices=["oneshot", "iterative", "lth"],
                   help="pipeline of the unstructured network (default iterative: 4 prune/retrain rounds)")
    p.add_argument("--scope", default="layer", choices=["layer", "global"])
    p.add_argument("--pes", type=int, default=8, help="EIE PEs (= multipliers)")
    p.add_argument("--lanes", type=int, default=4, help="2:4 / dense lanes (2 multipliers each)")
    p.add_argument("--fifo-depth", type=int, default=8)
    p.add_argument("--frontend-width", type=int, default=DEFAULT_FRONTEND_WIDTH, metavar="K",
                   help=f"EIE activations per input word, scanned for non-zeros (default {DEFAULT_FRONTEND_WIDTH}; "
                        "1: the one-element front end)")
    p.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    p.add_argument("--backend", default=None, choices=["native", "cocotb"],
                   help="native: compiled Verilator harness (default on verilator); cocotb: the Python testbenches")
    p.add_argument("--limit", type=int, default=None, help="run only the first N held-out images")
    p.add_argument("--dense-limit", type=int, default=None,
                   help="images run on the dense baselines, whose timing is data-independent "
                        "(default: all with the native backend, 40 with cocotb)")
    p.add_argument("--share-bits", type=int, default=None, metavar="B",
                   help="EIE weight sharing: a 2**B-entry codebook per layer of the EIE net, run in codebook "
                        "mode; the report gives the accuracy with and without (default off)")
    p.add_argument("--index-bits", type=int, default=None, metavar="B",
                   help="EIE relative-index width of every layer (default: the cost model's per layer)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--no-sweep", action="store_true", help="skip the accuracy-vs-sparsity sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="build/demo",
                   help="report folder: new, empty or one SparseFlow wrote (default build/demo)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    from model.nn.nets import parse_hidden
    from scripts.cli import print_json
    from scripts.demo import DemoOptions, run_demo
    from scripts.demo_report import summary_lines

    opts = DemoOptions(hidden=parse_hidden(args.hidden), sparsity=args.sparsity, method=args.method, schedule=args.schedule,
                       scope=args.scope, pes=args.pes,
                       lanes=args.lanes, fifo_depth=args.fifo_depth,
                       frontend_width=args.frontend_width, sim=args.sim, backend=args.backend, out=Path(args.out),
                       seed=args.seed, limit=args.limit, dense_limit=args.dense_limit, epochs=args.epochs, sweep=not args.no_sweep,
                       share_bits=args.share_bits, index_bits=args.index_bits)
    from model.outputs import claim_dir
    with claim_dir(args.out, "demo", legacy=_legacy_demo):  # writes into it; refuses a folder it did not write
        result = run_demo(opts, quiet=args.json)
    if args.json:
        print_json({k: v for k, v in result.items() if k not in ("images",)})
    else:
        print("\n".join(summary_lines(result)))
        secs = result["seconds"]
        print(f"time: {secs['total']:.0f} s (" + ", ".join(f"{k} {v:.0f}" for k, v in secs.items() if k != "total")
              + f"); report: {Path(args.out) / 'report.md'}")
    return 1 if result["mismatches"] else 0


def _legacy_demo(folder: Path):
    """A report folder written by the demo before output markers existed: ours."""
    from model.outputs import listing
    if (folder / "summary.json").is_file() and (folder / "report.md").is_file():
        return set(listing(folder))
    return None
