"""``sparseflow explore``: sweep engines x sizes x sparsities x targets on a Dask cluster (docs/explore.md)."""
from __future__ import annotations

HELP = ("design-space exploration: accuracy, cycles, predicted resources of every engine/size/sparsity/target, "
        "Pareto report; resumable (SQLite store), local or on a Dask cluster")


def add_arguments(parser) -> None:
    from scripts import farm
    parser.add_argument("--model", default=None, metavar="NET",
                        help="a trained NET.onnx / TorchScript .pt (default: the built-in digits MLP, trained here)")
    parser.add_argument("--data", default=None, metavar="DATA.npz", help="x_train, y_train, x_test, y_test (with --model)")
    parser.add_argument("--layer", default=None, metavar="W.npy",
                        help="sweep one weight matrix instead of a network (quality = weight fidelity; "
                             "random half-zero activations)")
    parser.add_argument("--engines", default="eie,2:4,dense", help="comma-separated engines (default eie,2:4,dense)")
    parser.add_argument("--sizes", default="4,8,16", help="PEs (EIE) or lanes (lane engines) (default 4,8,16)")
    parser.add_argument("--sparsity", default="0.5,0.8,0.9", help="default 0.5,0.8,0.9 (2:4 runs at 0.5 only)")
    parser.add_argument("--targets", default="ice40-up5k,ecp5-85f", help="default ice40-up5k,ecp5-85f")
    parser.add_argument("--fifo-depth", default="auto", metavar="D[,D]",
                        help="EIE queue depths (default auto: each target's, 2 on the UP5K, 8 on the ECP5)")
    parser.add_argument("--granularity", default="auto",
                        help="pruning granularities (default auto: 2:4 for engines that need it, else unstructured)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and pruning (default 0)")
    parser.add_argument("--finetune-epochs", type=int, default=8, help="fine-tuning epochs after pruning (default 8)")
    parser.add_argument("--rtl-check", type=int, default=2, metavar="K",
                        help="points (at most one per engine) whose cycles are also measured on the simulated RTL "
                             "(default 2; 0 = off)")
    parser.add_argument("--rtl-images", type=int, default=4, help="test images per RTL check (default 4)")
    parser.add_argument("--synth-top", type=int, default=0, metavar="K",
                        help="synthesize the K most accurate Pareto builds per target (default 0)")
    farm.add_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: results.sqlite (the store; a rerun continues it), points.csv, "
                             "pareto.png, report.md")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print a summary as one JSON object")


def run(args) -> int:
    import sys
    import time
    from pathlib import Path

    from model.errors import SparseFlowError
    from model.outputs import check_not_input, claim_dir
    from scripts import explore, farm
    from scripts.cli import print_json
    from scripts.store import Store

    t0 = time.perf_counter()
    g = explore.Grid(engines=explore.parse_list(args.engines, str, "--engines"),
                     sizes=explore.parse_list(args.sizes, int, "--sizes"),
                     sparsity=explore.parse_list(args.sparsity, float, "--sparsity"),
                     targets=explore.parse_list(args.targets, str, "--targets"),
                     fifo_depths=explore.parse_list(args.fifo_depth, lambda v: v if v == "auto" else int(v),
                                                    "--fifo-depth"),
                     granularities=explore.parse_list(args.granularity, str, "--granularity"),
                     seed=args.seed, finetune_epochs=args.finetune_epochs, rtl_check=args.rtl_check,
                     rtl_images=args.rtl_images, synth_top=args.synth_top)
    explore.check_grid(g)
    addr = farm.address(args.cluster, args.workers)
    if addr:
        farm.probe(addr)
    check_not_input(args.out, {"--model": args.model, "--data": args.data, "--layer": args.layer}, folder=True)
    if args.layer is not None and (args.model or args.data):
        raise SparseFlowError("--layer sweeps one matrix; it does not go with --model/--data")
    # A new sweep starts its cluster now, in the background: the workers come up while this
    # process reads the inputs and plans; a rerun (a store exists) starts one only if a task is left.
    fresh = not (Path(args.out) / "results.sqlite").exists()
    with farm.Cluster(args.workers, args.cluster, eager=fresh) as cluster:
        if args.layer is not None:
            source, data_bytes, ident = explore.layer_inputs(args.layer)
            g.quality = "weight fidelity: 1 - |W - W_pruned,int8| / |W|"
        else:
            source, data_bytes, ident = explore.inputs(args.model, args.data)
        with claim_dir(args.out, "explore", also=explore.FILES) as out:
            out = Path(out)
            with Store(out / "results.sqlite") as store:
                res = explore.sweep(g, source, data_bytes, ident, store, cluster=cluster,
                                    progress=not args.no_progress)
                seconds = time.perf_counter() - t0
                explore.write_outputs(out, g, res, seconds)  # while the cluster stops
                stored = store.count("point")
    points = res["points"]
    summary = {"out": str(args.out), "points": len(points), "feasible": sum(p.get("status") == "ok" for p in points),
               "stored_points": stored, "computed": res["computed"], "reused": res["reused"],
               "seconds": round(seconds, 2),
               "recommended": {t: explore.recommend(points, t) for t in g.targets}, "synth": res["synth"]}
    if args.json:
        print_json(summary)
        return 0
    print(f"explore -> {args.out}: {len(points)} points ({summary['feasible']} feasible), "
          f"computed {res['computed']['compile']} networks + {res['computed']['cost']} engine builds"
          f" + {res['computed']['synth']} syntheses, the rest from the store; {seconds:.1f} s")
    for t, r in summary["recommended"].items():
        if r is None:
            print(f"  {t}: no feasible point fits")
        else:
            print(f"  {t}: recommended {explore.describe(r)}: accuracy {r['accuracy']:.4f}, {r['latency_us']:.2f} us, "
                  f"{r['logic_cells']} logic cells (predicted)")
    print(f"  report: {Path(args.out) / 'report.md'}, plot: {Path(args.out) / 'pareto.png'}", file=sys.stdout)
    return 0
