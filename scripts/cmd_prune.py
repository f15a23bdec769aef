"""``sparseflow prune``: train (or load), prune, fine-tune, quantize and report on held-out digits.

Writes into ``--out``: ``model.pt`` (checkpoint: hidden sizes, pruned weights, dense and
initial weights for re-pruning with ``--load``), ``masks.npz`` (one 0/1 array per layer, shaped
like its weight), ``layer<i>.npy`` (integer weights ``(out, in)`` for ``sparseflow emit
--weights``) + ``layers.json`` (shifts, widths, scales: ``model.nn.quant.QuantizedNet.load`` reads
them back), ``shared/`` (the same for the 4-bit codebook net: ``layer<i>_indices.npy`` and
``layer<i>_codebook.npy`` for ``emit --format eie --codebook``) and ``report.json``.
"""
from __future__ import annotations

HELP = "train/load a digits MLP, prune it, fine-tune, quantize; report held-out accuracy"

from model.nn.prune import GRANULARITIES, METHODS, REGROW, SCHEDULES, SCOPES, TAYLOR_MODES  # torch-free names


def add_arguments(parser) -> None:
    parser.add_argument("--method", default="magnitude", choices=METHODS, help="importance criterion (default magnitude)")
    parser.add_argument("--granularity", default="unstructured", choices=GRANULARITIES,
                        help="what is pruned together (default unstructured)")
    parser.add_argument("--taylor", default=TAYLOR_MODES[0], choices=TAYLOR_MODES,
                        help="Taylor form: example = per-example squared, row-normalised (default); "
                             "batch = |batch-mean gradient x w| (the old form, docs/pruning.md)")
    parser.add_argument("--no-keep-rows", action="store_true",
                        help="let unstructured/block pruning empty whole rows (output units); by default each keeps one")
    parser.add_argument("--sparsity", type=float, default=None, metavar="S",
                        help="fraction of weights pruned, in [0, 1) (default 0.8; 0.5 for 2:4)")
    parser.add_argument("--schedule", default="oneshot", choices=SCHEDULES,
                        help="oneshot + fine-tune, iterative (IMP, re-init), lth (rewind), dst (default oneshot)")
    parser.add_argument("--scope", default="layer", choices=SCOPES,
                        help="sparsity target per layer or over all layers (default layer)")
    parser.add_argument("--hidden", default=None, metavar="H1,H2",
                        help="hidden layer sizes, multiples of 4 (default 128,64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of init, batches and scores (default 0)")
    parser.add_argument("--dst-regrow", default="random", choices=REGROW,
                        help="dst regrowth: random (SET) or gradient (RigL)")
    parser.add_argument("--epochs", type=int, default=30, help="dense training epochs (default 30)")
    parser.add_argument("--finetune-epochs", type=int, default=15, help="fine-tuning epochs (default 15)")
    parser.add_argument("--rounds", type=int, default=4, help="iterative/lth pruning rounds (default 4)")
    parser.add_argument("--rewind-step", type=int, default=0, help="lth: rewind to this dense step (default 0 = init)")
    parser.add_argument("--weight-bits", type=int, default=8, help="integer weight width (default 8)")
    parser.add_argument("--act-bits", type=int, default=16, help="integer activation width (default 16)")
    parser.add_argument("--load", default=None, metavar="CKPT.pt",
                        help="start from this checkpoint's dense weights instead of training")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object (no progress)")


def _load_checkpoint(path: str):
    import warnings

    import torch
    from model.errors import SparseFlowError
    try:
        with warnings.catch_warnings():  # torch warns (e.g. about pickled files) before raising
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SparseFlowError(f"checkpoint {path}: no such file") from None
    except Exception:  # torch raises many types (and long messages) for corrupt files
        raise SparseFlowError(f"checkpoint {path}: not a readable torch checkpoint") from None
    if not isinstance(ck, dict) or "state_dict" not in ck or "hidden" not in ck:
        raise SparseFlowError(f"checkpoint {path}: not written by sparseflow prune")
    return ck


def _legacy_prune(folder):
    """An output folder of an older ``prune`` (no marker): its report.json lists every file."""
    import json
    try:
        files = json.loads((folder / "report.json").read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return {str(f) for f in files} if isinstance(files, list) else None


def run(args) -> int:
    import json
    import sys
    import time
    from pathlib import Path

    from model.nn.data import load_digits
    from model.errors import SparseFlowError
    from model.nn.nets import MLP, parse_hidden
    from model.nn.prune import PruneConfig, run as run_pipeline
    from model.nn.quant import quantize, share_weights
    from scripts.cli import print_json

    from model import outputs
    t0 = time.time()
    outputs.check_not_input(args.out, {"--load": args.load}, folder=True)
    outputs.check_dir(args.out, legacy=_legacy_prune)
    sparsity = args.sparsity if args.sparsity is not None else (0.5 if args.granularity == "2:4" else 0.8)
    ck = _load_checkpoint(args.load) if args.load else None
    if ck is not None and args.hidden is not None and tuple(parse_hidden(args.hidden)) != tuple(ck["hidden"]):
        raise SparseFlowError(f"--hidden {args.hidden} disagrees with the checkpoint's {','.join(map(str, ck['hidden']))}")
    hidden = tuple(ck["hidden"]) if ck is not None else parse_hidden("128,64" if args.hidden is None else args.hidden)
    cfg = PruneConfig(method=args.method, granularity=args.granularity, sparsity=sparsity, schedule=args.schedule,
                      scope=args.scope, hidden=hidden, seed=args.seed, epochs=args.epochs,
                      finetune_epochs=args.finetune_epochs, rounds=args.rounds, rewind_step=args.rewind_step,
                      dst_regrow=args.dst_regrow, taylor=args.taylor, keep_rows=not args.no_keep_rows, progress=not args.json)
    cfg.check()
    if not 2 <= args.weight_bits <= 16 or not 2 <= args.act_bits <= 32:
        raise SparseFlowError("--weight-bits must be in 2..16 and --act-bits in 2..32")
    MLP(hidden)  # validates the widths before any work
    out = Path(args.out)

    data = load_digits()
    dense = init_state = rewind_state = None
    if ck is not None:
        if cfg.schedule == "dst":
            raise SparseFlowError("dst trains sparse from scratch; --load does not apply")
        dense = MLP(hidden)
        try:
            dense.load_state_dict(ck.get("dense_state") or ck["state_dict"])
        except RuntimeError as exc:
            raise SparseFlowError(f"checkpoint {args.load}: weights do not fit the network ({str(exc).splitlines()[0]})") from None
        dense.eval()
        init_state, rewind_state = ck.get("init_state"), ck.get("rewind_state")
        if cfg.schedule == "lth" and cfg.rewind_step and rewind_state is None:
            raise SparseFlowError("the checkpoint has no rewind state; retrain without --load")

    res = run_pipeline(cfg, data, dense=dense, init_state=init_state, rewind_state=rewind_state)
    qnet = quantize(res.model, data.x_train, weight_bits=args.weight_bits, act_bits=args.act_bits)
    shared = share_weights(qnet, data.x_train)

    # A layer whose every weight is pruned (channel pruning can empty one) outputs zeros: the
    # network then predicts one class. Say so instead of reporting a ~0.10 accuracy silently.
    empty = [name for name, m in res.masks.items() if not bool(m.any())]
    warnings = [f"pruning removed every weight of layer {name}: the network outputs a constant "
                f"(lower --sparsity or use another --granularity)" for name in empty]
    for w in warnings:
        print(f"sparseflow: warning: {w}", file=sys.stderr)

    with outputs.new_dir(args.out, "prune", legacy=_legacy_prune) as tmp:
        _write_outputs(tmp, hidden, res, rewind_state, cfg, qnet, shared, data, args, t0, warnings)
    report = json.loads((out / "report.json").read_text())
    if args.json:
        print_json(report)
    else:
        acc = report["accuracy"]
        dense_txt = "n/a (dst)" if acc["float_dense"] is None else f"{acc['float_dense']:.4f}"
        print(f"held-out accuracy ({report['test_images']} images): float dense {dense_txt}, "
              f"float pruned {acc['float_pruned']:.4f}, integer {acc['integer']:.4f}, "
              f"integer+4-bit sharing {acc['integer_shared']:.4f}")
        print(f"sparsity {res.sparsity['total']:.4f} ({', '.join(f'{k} {v:.3f}' for k, v in res.sparsity.items() if k != 'total')})")
        print(f"shifts {qnet.shifts}; wrote {out}/ ({len(report['files'])} files)")
    return 0


def _write_outputs(out, hidden, res, rewind_state, cfg, qnet, shared, data, args, t0, warnings) -> None:
    """Every file of ``--out``, written into ``out`` (a fresh folder that then replaces ``--out``)."""
    import json
    import time

    import numpy as np
    import torch

    from model.nn.prune.pipelines import config_dict

    xt = data.x_test.T
    torch.save({"hidden": list(hidden), "state_dict": res.model.state_dict(),
                "dense_state": None if res.dense is None else res.dense.state_dict(),
                "init_state": res.init_state, "rewind_state": rewind_state,
                "config": config_dict(cfg)}, out / "model.pt")
    np.savez(out / "masks.npz", **{n: m.numpy().astype(np.uint8) for n, m in res.masks.items()})
    files = ["model.pt", "masks.npz"] + qnet.save(out) + ["shared/" + f for f in shared.save(out / "shared")]
    report = {
        "config": config_dict(cfg) | {"weight_bits": args.weight_bits, "act_bits": args.act_bits},
        "accuracy": {"float_dense": res.dense_acc, "float_pruned": res.pruned_acc,
                     "integer": qnet.accuracy(xt, data.y_test), "integer_shared": shared.accuracy(xt, data.y_test)},
        "test_images": int(len(data.y_test)),
        "sparsity": res.sparsity,
        "integer_sparsity": {f"layer{i}": 1 - float(np.count_nonzero(l.weight)) / l.weight.size
                             for i, l in enumerate(qnet.layers)},
        "shifts": qnet.shifts,
        "shared_shifts": shared.shifts,
        "layers": qnet.describe(),
        "history": res.history,
        "files": files + ["report.json"],
        "seconds": round(time.time() - t0, 2),
        "warnings": warnings,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, default=float) + "\n")
