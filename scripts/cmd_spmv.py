"""``sparseflow spmv``: one sparse matrix x vector(s) on a simulated engine, checked bit for bit."""
from __future__ import annotations

HELP = "run y = W @ x on a simulated engine (EIE array, 2:4 engine or dense baseline), checked against the golden model"


def add_arguments(parser) -> None:
    from model.hw.engines import EIE, NAMES
    parser.add_argument("--engine", choices=NAMES, default=EIE.name, help=f"engine (default {EIE.name})")
    parser.add_argument("--weights", required=True, metavar="W.npy", help="(R, C) integer weight matrix")
    parser.add_argument("--input", required=True, metavar="X.npy", help="(C,) vector or (C, B) batch of vectors")
    parser.add_argument("--out", required=True, metavar="Y.npy", help="results, written once they match the golden model")
    parser.add_argument("--pes", type=int, default=None, metavar="N", help="EIE: processing elements (default 4)")
    parser.add_argument("--fifo-depth", type=int, default=None, metavar="D", help="EIE: activation queue depth (default 8)")
    parser.add_argument("--index-bits", type=int, default=None, metavar="B", help="EIE: relative index bits (default 4)")
    parser.add_argument("--frontend-width", type=int, default=None, metavar="K",
                        help="EIE: activations per input word, scanned for non-zeros (default 8; 1: the "
                             "one-element front end)")
    parser.add_argument("--lanes", type=int, default=None, metavar="L", help="2:4/dense: lanes (default 4)")
    parser.add_argument("--weight-bits", type=int, default=8, metavar="BITS", help="weight width (default 8)")
    parser.add_argument("--act-bits", type=int, default=16, metavar="BITS", help="activation width (default 16)")
    parser.add_argument("--shift", type=int, default=None, metavar="S",
                        help="requantize: round-half-up right shift, saturate to act-bits")
    parser.add_argument("--relu", action="store_true", help="requantize with ReLU")
    parser.add_argument("--bias", default=None, metavar="B.npy",
                        help="(R,) integer per-row bias, added before ReLU and the shift (bias hardware)")
    parser.add_argument("--bias-bits", type=int, default=None, metavar="BITS",
                        help="with --bias: signed bias width (default weight + act bits + ceil(log2 C))")
    parser.add_argument("--sim", choices=["icarus", "verilator"], default="verilator", help="simulator (default verilator)")
    parser.add_argument("--backend", choices=["native", "cocotb"], default=None,
                        help="native: compiled Verilator harness, no Python per cycle (default on verilator); "
                             "cocotb: the Python testbenches (default on icarus)")
    parser.add_argument("--pacing", type=float, default=1.0, metavar="P",
                        help="probability the input is offered each cycle (default 1.0: full speed)")
    parser.add_argument("--waves", action="store_true", help="dump waveforms (dump.fst in the run folder, named on stderr and in --json as run_dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    import sys

    import numpy as np
    from model.hw.config import Arith, Requant, Sparse24Config
    from model.hw.engines import DENSE, EIE
    from model.errors import SparseFlowError
    from model.hw.reference import as_int_array
    from scripts.cli import print_json
    from scripts.npyio import load_npy, save_npy

    from verif.native import check_backend
    backend = check_backend(args.backend, args.sim)

    from model.outputs import check_file, check_not_input
    from scripts.cli import in_option_terms

    check_not_input(args.out, {"--weights": args.weights, "--input": args.input, "--bias": args.bias})
    check_file(args.out)
    eie_only, lane_only = ("--pes", "--fifo-depth", "--index-bits", "--frontend-width"), ("--lanes",)
    is_eie = args.engine == EIE.name
    for name in eie_only if not is_eie else lane_only:
        if getattr(args, name[2:].replace("-", "_")) is not None:
            takes = "--lanes" if not is_eie else "--pes, --fifo-depth, --index-bits and --frontend-width"
            raise SparseFlowError(f"{name} does not apply to --engine {args.engine}, which takes {takes}")
    from model.hw.config import DEFAULT_FRONTEND_WIDTH
    defaults = {"pes": 4, "fifo_depth": 8, "index_bits": 4, "lanes": 4, "frontend_width": DEFAULT_FRONTEND_WIDTH}
    for key, v in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, v)
    w = load_npy(args.weights, "weights")
    x = load_npy(args.input, "input")
    for name, v in (("--pes", args.pes), ("--fifo-depth", args.fifo_depth), ("--index-bits", args.index_bits),
                    ("--lanes", args.lanes)):
        if v < 1:
            raise SparseFlowError(f"{name} must be >= 1, not {v}")
    try:
        requant = Requant(args.shift or 0, args.relu) if (args.shift is not None or args.relu) else None
        bias, bias_bits = None, None
        if args.bias is not None:
            from model.hw.config import clog2
            bias = load_npy(args.bias, "bias")
            bias_bits = args.bias_bits if args.bias_bits is not None else (
                args.weight_bits + args.act_bits + clog2(np.shape(w)[1] if np.ndim(w) == 2 else 1))
        elif args.bias_bits is not None:
            raise SparseFlowError("--bias-bits needs --bias")
        arith = Arith(weight_bits=args.weight_bits, act_bits=args.act_bits, requant=requant, bias_bits=bias_bits)
    except SparseFlowError as exc:
        raise in_option_terms(exc) from None
    w = as_int_array(w, "weights", arith.weight_bits, ndim=(2,))
    vector = np.asarray(x).ndim == 1
    rep = {"engine": args.engine, "sim": args.sim, "backend": backend, "weights": list(w.shape),
           "input": list(np.shape(x))}
    if bias is not None:
        rep["bias_bits"] = bias_bits
    if sys.stderr.isatty():  # progress for long runs (a 2048 x 2048 matrix takes a minute); stdout stays clean
        import verif.runner
        verif.runner.PROGRESS = lambda msg: print(f"sparseflow: {msg}", file=sys.stderr, flush=True)
    try:
        if is_eie:
            from verif.spmv_eie import run_spmv, size_config
            try:
                cfg = size_config(w, n_pes=args.pes, fifo_depth=args.fifo_depth, index_bits=args.index_bits,
                                  arith=arith, frontend_width=args.frontend_width)
            except SparseFlowError as exc:
                raise in_option_terms(exc) from None
            r = run_spmv(w, x, cfg, sim=args.sim, pacing=args.pacing, waves=args.waves or None, bias=bias,
                         backend=backend)
            cyc = np.asarray(r["cycles"], dtype=float)
            busy = np.asarray(r["busy"], dtype=float)  # (B, n_pes)
            rep.update({
                "pes": cfg.n_pes, "fifo_depth": cfg.fifo_depth, "index_bits": cfg.index_bits,
                "frontend_width": cfg.frontend_width,
                "config": {"max_rows": cfg.max_rows, "max_cols": cfg.max_cols, "max_entries": cfg.max_entries},
                "cycles": r["cycles"], "total_cycles": r["total_cycles"], "predicted": r["predicted"],
                "ideal": r["ideal"], "efficiency": r["efficiency"],
                "utilisation": (busy.sum(axis=0) / max(cyc.sum(), 1)).tolist(),
                "stall": r["stall"], "run_dir": r["run_dir"],
            })
        else:
            try:
                from verif.spmv_sparse24 import run_spmv as run24
            except ImportError:
                raise SparseFlowError(f"the {args.engine} engine is not available (verif.spmv_sparse24 is missing)") from None
            rows, cols = w.shape
            p2 = lambda n: 1 << max(0, (int(n) - 1).bit_length())
            try:
                cfg = Sparse24Config(lanes=args.lanes, max_rows=p2(rows),
                                     arith=Arith(arith.weight_bits, arith.act_bits, max_cols=max(4, p2(cols)),
                                                 requant=requant, bias_bits=bias_bits))
            except SparseFlowError as exc:
                raise in_option_terms(exc) from None
            r = run24(w, x, cfg, sim=args.sim, dense=args.engine == DENSE.name, pacing=args.pacing,
                      waves=args.waves or None, bias=bias, backend=backend)
            rep.update({"lanes": cfg.lanes, "cycles": r["cycles"], "total_cycles": r.get("total_cycles"),
                        "run_dir": r.get("run_dir")})
    except RuntimeError as exc:  # a simulator failure or a golden-model mismatch: not the user's input
        print(f"sparseflow: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    y = np.asarray(r["y"])
    if vector:
        y = y[:, 0]
    save_npy(args.out, y)
    rep.update({"out": args.out, "matches_golden": True})
    if args.json:
        print_json(rep)
        return 0
    print(f"{args.engine} on {args.sim} ({backend}): {w.shape[0]}x{w.shape[1]} weights, {len(rep['cycles'])} vector(s); "
          f"results match the golden model -> {args.out}")
    if is_eie:
        for b, (c, p, i, e) in enumerate(zip(rep["cycles"], rep["predicted"], rep["ideal"], rep["efficiency"])):
            print(f"  vector {b}: {c} cycles (cycle model {p}), ideal {i:.1f}, load-balance efficiency {e:.3f}")
        print("  PE utilisation (busy / cycles): " + " ".join(f"{u:.2f}" for u in rep["utilisation"]))
    else:
        print("  cycles per vector: " + " ".join(str(c) for c in rep["cycles"]))
    return 0
