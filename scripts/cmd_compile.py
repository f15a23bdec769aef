"""``sparseflow compile``: your network (ONNX / TorchScript) + data -> pruned, quantized, engine images."""
from __future__ import annotations

HELP = "prune, fine-tune and quantize your network (.onnx/.pt) on DATA.npz; write its memory images and report"


def add_arguments(parser) -> None:
    from model.network.compile import CompileOptions as O
    from model.network.engines import EIE_ENTRIES
    from model.nn.prune import GRANULARITIES, METHODS, SCHEDULES, SCOPES, TAYLOR_MODES
    parser.add_argument("--model", required=True, metavar="NET", help="NET.onnx or a TorchScript NET.pt")
    parser.add_argument("--data", required=True, metavar="DATA.npz", help="x_train, y_train, x_test, y_test")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (new, or a compiled folder)")
    parser.add_argument("--method", default=O.method, choices=METHODS, help=f"pruning criterion (default {O.method})")
    parser.add_argument("--taylor", default=O.taylor, choices=TAYLOR_MODES,
                        help=f"Taylor form (default {O.taylor}; batch = the old batch-mean form, docs/pruning.md)")
    parser.add_argument("--granularity", default=O.granularity, choices=GRANULARITIES,
                        help=f"pruning granularity (default {O.granularity}; channel = output channels of a conv)")
    parser.add_argument("--sparsity", type=float, default=O.sparsity,
                        help=f"fraction of weights pruned per layer (default {O.sparsity}: 8%% kept)")
    parser.add_argument("--conv-sparsity", type=float, default=None,
                        help="sparsity of the convolutions (default: --sparsity)")
    parser.add_argument("--schedule", default=O.schedule, choices=SCHEDULES, help=f"default {O.schedule}")
    parser.add_argument("--reinit", action="store_true",
                        help="iterative: re-initialise the kept weights every round (IMP) instead of retraining "
                             "them from their trained values (Deep Compression, the default)")
    parser.add_argument("--no-shrink", action="store_true",
                        help="keep pruned (all-zero) rows and their inputs in the compiled matrices")
    parser.add_argument("--scope", default=O.scope, choices=SCOPES, help=f"default {O.scope}")
    parser.add_argument("--rounds", type=int, default=O.rounds, help=f"iterative/lth rounds (default {O.rounds})")
    parser.add_argument("--epochs", type=int, default=O.epochs,
                        help=f"training epochs per iterative round, or of dst (default {O.epochs})")
    parser.add_argument("--finetune-epochs", type=int, default=O.finetune_epochs,
                        help=f"one-shot fine-tuning epochs (default {O.finetune_epochs})")
    parser.add_argument("--lr", type=float, default=O.lr, help=f"Adam learning rate (default {O.lr})")
    from model.hw.engines import NAMES
    parser.add_argument("--engine", default=O.engine, choices=("auto", *NAMES),
                        help="engine per layer: auto = cost model's cheapest (default)")
    parser.add_argument("--pes", type=int, default=O.pes, help=f"EIE PEs = multipliers (default {O.pes})")
    parser.add_argument("--frontend-width", type=int, default=O.frontend_width, metavar="K",
                        help=f"EIE activations per input word, scanned for non-zeros (default {O.frontend_width}; "
                             "1: the one-element front end)")
    parser.add_argument("--lanes", type=int, default=O.lanes,
                        help=f"2:4 / dense / bsr lanes, 2 multipliers each (default {O.lanes})")
    parser.add_argument("--block", type=int, default=O.block, choices=(2, 4),
                        help=f"bsr: block size, 2x2 or 4x4 (default {O.block})")
    parser.add_argument("--share-bits", type=int, default=None,
                        help="weight sharing: a 2**B-entry codebook per layer (e.g. 4); default off")
    parser.add_argument("--index-bits", type=int, default=None,
                        help="EIE relative-index width of every layer; default: the cost model's per layer "
                             "(fewest memory bits x cycles)")
    parser.add_argument("--eie-entries", type=int, default=EIE_ENTRIES,
                        help=f"entry memory words of one EIE PE (default {EIE_ENTRIES})")
    parser.add_argument("--calib", type=int, default=O.calib,
                        help=f"training samples that calibrate the shifts (default {O.calib})")
    parser.add_argument("--seed", type=int, default=O.seed, help=f"seed of pruning and training (default {O.seed})")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args) -> int:
    from model.errors import SparseFlowError
    from model.nn.graph import load_model
    from model.network.compile import CompileOptions, check_data, compile_network, graph_classes, load_data
    from model.network.folder import check_out_dir, write_compiled
    from model.hw.engines import NAMES, per_engine
    from scripts.cli import LAYER_HEAD, layer_head, print_json, shrink_line

    from model.outputs import check_not_input
    check_not_input(args.out, {"--model": args.model, "--data": args.data}, folder=True)
    check_out_dir(args.out)
    opts = CompileOptions(method=args.method, taylor=args.taylor, granularity=args.granularity, sparsity=args.sparsity,
                          conv_sparsity=args.conv_sparsity, schedule=args.schedule, scope=args.scope, reinit=args.reinit,
                          rounds=args.rounds, epochs=args.epochs, finetune_epochs=args.finetune_epochs, lr=args.lr,
                          finetune_lr=args.lr, engine=args.engine, pes=args.pes, lanes=args.lanes, block=args.block,
                          frontend_width=args.frontend_width,
                          share_bits=args.share_bits, index_bits=args.index_bits, eie_entries=args.eie_entries, calib=args.calib,
                          seed=args.seed, shrink=not args.no_shrink, progress=True)
    opts.check()
    data = load_data(args.data)
    import numpy as np
    shape = tuple(np.asarray(data["x_train"]).shape[1:]) if "x_train" in data else None
    try:
        graph = load_model(args.model, shape)
    except SparseFlowError as exc:
        raise SparseFlowError(f"{args.model}: {exc}") if str(args.model) not in str(exc) else exc
    data = check_data(data, graph.input_shape, graph_classes(graph))
    compiled = compile_network(graph, data, opts)
    out = write_compiled(compiled, args.out)
    rep = compiled.report
    if args.json:
        print_json(rep | {"out": str(out)})
        return 0
    a = rep["accuracy"]
    print(f"{graph.name or args.model} -> {out}  (seed {opts.seed})")
    print(f"accuracy on {rep['samples']['test']} held-out samples: dense float {a['dense_float']:.4f}, "
          f"pruned float {a['pruned_float']:.4f}, integer golden {a['integer_golden']:.4f}"
          + (f" (weight sharing, {opts.share_bits}-bit codebooks; without it {a['integer_golden_unshared']:.4f})"
             if "integer_golden_unshared" in a else ""))
    costs = f"cycles/inf ({' / '.join(NAMES)}, predicted)"
    print(f"{LAYER_HEAD}{'density':>8s} {'shift':>5s} {'engine':>6s} {costs:>42s} {'EIE index':>9s} {'bits/nz':>7s}")
    for l in rep["layers"]:
        cyc = " / ".join(per_engine(l["costs"], lambda c: f"{c['cycles']:.0f}"))
        print(f"{layer_head(l)}{l['density']:>8.3f} {l['shift']:>5d} {l['engine']:>6s} {cyc:>42s} "
              f"{l['index_bits']:>9d} {l['bits_per_nonzero']:>7.2f}")
    print("(EIE index: relative-index bits; bits/nz: EIE entry bits per non-zero weight, padding included; "
          "EIE's paper: 8)")
    line = shrink_line(compiled.net.meta.get("shrunk_from"), rep["layers"])
    if line:
        print(line)
    print(f"predicted cycles per inference on the chosen engines: {rep['predicted_cycles_chosen']:.0f}")
    return 0
