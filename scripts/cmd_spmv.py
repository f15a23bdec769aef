"""``sparseflow spmv``: one sparse matrix x vector(s) on a simulated engine, checked bit for bit."""
from __future__ import annotations

HELP = "run y = W @ x on a simulated engine (EIE array, 2:4, dense baseline or block-sparse), checked against the golden model"


def add_arguments(parser) -> None:
    from model.hw.engines import EIE, NAMES
    parser.add_argument("--engine", choices=NAMES, default=EIE.name, help=f"engine (default {EIE.name})")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", metavar="W.npy", help="(R, C) integer weight matrix")
    src.add_argument("--image", metavar="DIR", help="bsr: a BSR memory image (sparseflow emit --format bsr), "
                     "loaded into the engine as it is (its block shape sets --block)")
    parser.add_argument("--input", required=True, metavar="X.npy", help="(C,) vector or (C, B) batch of vectors")
    parser.add_argument("--out", required=True, metavar="Y.npy", help="results, written once they match the golden model")
    parser.add_argument("--pes", type=int, default=None, metavar="N", help="EIE: processing elements (default 4)")
    parser.add_argument("--fifo-depth", type=int, default=None, metavar="D", help="EIE: activation queue depth (default 8)")
    parser.add_argument("--index-bits", default=None, metavar="B",
                        help="EIE: relative index bits, or auto: the cost model's width for this matrix and input "
                             "(fewest memory bits x cycles, model.hw.costmodel.choose_index_bits; default auto)")
    parser.add_argument("--codebook", default=None, metavar="CB.npy",
                        help="EIE weight sharing: 2, 4, ... 256 shared weights (entry 0 = 0); W.npy then holds "
                             "codebook indices and the array runs in codebook mode")
    parser.add_argument("--frontend-width", type=int, default=None, metavar="K",
                        help="EIE: activations per input word, scanned for non-zeros (default 8; 1: the "
                             "one-element front end)")
    parser.add_argument("--lanes", type=int, default=None, metavar="L",
                        help="2:4/dense/bsr: lanes, 2 multipliers each (default 4)")
    parser.add_argument("--block", type=int, default=None, choices=(2, 4), help="bsr: block size 2x2 or 4x4 (default 4)")
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
    from model.hw.engines import BSR, DENSE, EIE
    from model.errors import SparseFlowError
    from model.hw.reference import as_int_array
    from scripts.cli import print_json
    from scripts.npyio import load_npy, save_npy

    from verif.native import check_backend
    backend = check_backend(args.backend, args.sim)

    from model.outputs import check_file, check_not_input
    from scripts.cli import in_option_terms

    check_not_input(args.out, {"--weights": args.weights, "--image": args.image, "--input": args.input,
                               "--bias": args.bias, "--codebook": args.codebook})
    check_file(args.out)
    eie_only, lane_only = ("--pes", "--fifo-depth", "--index-bits", "--codebook", "--frontend-width"), ("--lanes",)
    is_eie, is_bsr = args.engine == EIE.name, args.engine == BSR.name
    for name in eie_only if not is_eie else lane_only:
        if getattr(args, name[2:].replace("-", "_")) is not None:
            takes = "--lanes" if not is_eie else "--pes, --fifo-depth, --index-bits, --codebook and --frontend-width"
            raise SparseFlowError(f"{name} does not apply to --engine {args.engine}, which takes {takes}")
    for name in ("--block", "--image"):
        if getattr(args, name[2:]) is not None and not is_bsr:
            raise SparseFlowError(f"{name} applies only to --engine {BSR.name}")
    image = None
    if args.image is not None:  # a BSR image, loaded into the engine as it is
        from model.hw.formats.bsr import decode
        from model.hw.images import load_image
        image = load_image(args.image, format=BSR.image_format)
        br, bc = image.matrix.block
        if br != bc or br not in (2, 4):
            raise SparseFlowError(f"--image {args.image} has {br}x{bc} blocks; the bsr engine runs 2x2 or 4x4")
        if args.block is not None and args.block != br:
            raise SparseFlowError(f"--block {args.block} but --image {args.image} has {br}x{bc} blocks")
        args.block = br
        args.weight_bits = image.config.weight_bits
    from model.hw.config import DEFAULT_FRONTEND_WIDTH
    defaults = {"pes": 4, "fifo_depth": 8, "index_bits": "auto", "lanes": 4, "block": 4,
                "frontend_width": DEFAULT_FRONTEND_WIDTH}
    for key, v in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, v)
    w = load_npy(args.weights, "weights") if image is None else decode(image.matrix)
    x = load_npy(args.input, "input")
    if args.index_bits != "auto":
        try:
            args.index_bits = int(args.index_bits)
        except ValueError:
            raise SparseFlowError(f"--index-bits must be an integer or auto, not {args.index_bits!r}") from None
        if not 1 <= args.index_bits <= 16:
            raise SparseFlowError(f"--index-bits must be in 1..16, not {args.index_bits}")
    for name, v in (("--pes", args.pes), ("--fifo-depth", args.fifo_depth), ("--lanes", args.lanes)):
        if v < 1:
            raise SparseFlowError(f"{name} must be >= 1, not {v}")
    try:
        requant = Requant(args.shift or 0, args.relu) if (args.shift is not None or args.relu) else None
        bias, bias_bits = None, None
        if args.bias is None and image is not None and image.bias is not None:
            bias, bias_bits = image.bias, image.config.bias_bits
        elif args.bias is not None:
            from model.hw.config import clog2
            bias = load_npy(args.bias, "bias")
            bias_bits = args.bias_bits if args.bias_bits is not None else (
                args.weight_bits + args.act_bits + clog2(np.shape(w)[1] if np.ndim(w) == 2 else 1))
        if args.bias_bits is not None and args.bias is None:
            raise SparseFlowError("--bias-bits needs --bias")
        arith = Arith(weight_bits=args.weight_bits, act_bits=args.act_bits, requant=requant, bias_bits=bias_bits)
    except SparseFlowError as exc:
        raise in_option_terms(exc) from None
    codebook = None
    if args.codebook is not None:
        from scripts.npyio import load_codebook
        codebook, cb_bits = load_codebook(args.codebook, arith.weight_bits)
        w = as_int_array(w, "codebook indices", 32, ndim=(2,))
        if w.size and (w.min() < 0 or w.max() >= len(codebook)):
            r, c = (int(i) for i in np.argwhere((w < 0) | (w >= len(codebook)))[0])
            raise SparseFlowError(f"weights {args.weights}: codebook indices must be in 0..{len(codebook) - 1}; "
                                  f"[{r}, {c}] = {int(w[r, c])}")
    else:
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
            from model.hw.costmodel import EIE_PAPER_BITS_PER_NONZERO, eie_bits_per_nonzero
            from verif.spmv_eie import choose_index_width, run_spmv, size_config
            try:
                widths = None
                if args.index_bits == "auto":
                    args.index_bits, widths = choose_index_width(
                        w, x, n_pes=args.pes, arith=arith, codebook_bits=cb_bits if codebook is not None else None,
                        frontend_width=args.frontend_width)
                cfg = size_config(w, n_pes=args.pes, fifo_depth=args.fifo_depth, index_bits=args.index_bits,
                                  arith=arith, codebook_bits=cb_bits if codebook is not None else None,
                                  frontend_width=args.frontend_width)
            except SparseFlowError as exc:
                raise in_option_terms(exc) from None
            r = run_spmv(w, x, cfg, sim=args.sim, pacing=args.pacing, waves=args.waves or None, bias=bias,
                         codebook=codebook, backend=backend)
            cyc = np.asarray(r["cycles"], dtype=float)
            busy = np.asarray(r["busy"], dtype=float)  # (B, n_pes)
            rep.update({
                "pes": cfg.n_pes, "fifo_depth": cfg.fifo_depth, "index_bits": cfg.index_bits,
                "frontend_width": cfg.frontend_width,
                "index_bits_chosen_by": "cost model" if widths else "--index-bits",
                "bits_per_nonzero": round(eie_bits_per_nonzero(r["matrix"], cfg), 3),
                "eie_paper_bits_per_nonzero": EIE_PAPER_BITS_PER_NONZERO,
                "padding_entries": r["matrix"].padding_entries,
                "codebook_bits": cfg.codebook_bits if cfg.codebook else None,
                "config": {"max_rows": cfg.max_rows, "max_cols": cfg.max_cols, "max_entries": cfg.max_entries},
                "cycles": r["cycles"], "total_cycles": r["total_cycles"], "predicted": r["predicted"],
                "ideal": r["ideal"], "efficiency": r["efficiency"],
                "utilisation": (busy.sum(axis=0) / max(cyc.sum(), 1)).tolist(),
                "stall": r["stall"], "run_dir": r["run_dir"],
            })
            if widths:
                rep["index_widths"] = {str(b): c for b, c in widths.items()}
        elif is_bsr:
            from verif.spmv_bsr import run_spmv as run_bsr, size_config as bsr_size
            try:
                cfg = bsr_size(w, lanes=args.lanes, block=args.block, arith=arith)
            except SparseFlowError as exc:
                raise in_option_terms(exc) from None
            r = run_bsr(w if image is None else image.matrix, x, cfg, sim=args.sim, pacing=args.pacing,
                        waves=args.waves or None, bias=bias, backend=backend)
            rep.update({"lanes": cfg.lanes, "block": cfg.block, "multipliers": cfg.multipliers,
                        "words": r["words"], "cycles": r["cycles"], "predicted": r["predicted"],
                        "total_cycles": r["total_cycles"], "run_dir": r["run_dir"]})
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
        how = "chosen by the cost model" if rep["index_bits_chosen_by"] == "cost model" else "--index-bits"
        book = f", {rep['codebook_bits']}-bit codebook" if rep["codebook_bits"] else ""
        print(f"  {rep['index_bits']}-bit relative indices ({how}){book}: {rep['bits_per_nonzero']:.2f} entry bits per "
              f"non-zero, {rep['padding_entries']} padding entries (EIE: {EIE_PAPER_BITS_PER_NONZERO})")
        for b, (c, p, i, e) in enumerate(zip(rep["cycles"], rep["predicted"], rep["ideal"], rep["efficiency"])):
            print(f"  vector {b}: {c} cycles (cycle model {p}), ideal {i:.1f}, load-balance efficiency {e:.3f}")
        print("  PE utilisation (busy / cycles): " + " ".join(f"{u:.2f}" for u in rep["utilisation"]))
    elif is_bsr:
        print(f"  {rep['block']}x{rep['block']} blocks, {rep['multipliers']} multipliers, {rep['words']} words "
              f"(issue cycles) per vector")
        print("  cycles per vector: " + " ".join(str(c) for c in rep["cycles"])
              + " (cycle model: " + " ".join(str(c) for c in rep["predicted"]) + ")")
    else:
        print("  cycles per vector: " + " ".join(str(c) for c in rep["cycles"]))
    return 0
