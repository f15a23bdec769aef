"""``sparseflow emit``: encode an integer weight matrix (.npy) into a memory image folder."""
from __future__ import annotations

HELP = "encode an integer weight matrix (.npy) into a memory image (hex files + manifest.json)"



def add_arguments(parser) -> None:
    from model.hw.formats import NAMES
    parser.add_argument("--format", required=True, choices=NAMES, help="sparse format of the image")
    parser.add_argument("--weights", required=True, metavar="W.npy", help="2-D integer weight matrix (rows = outputs)")
    parser.add_argument("--out", required=True, metavar="DIR", help="image folder to write: new, empty or one SparseFlow wrote (replaced atomically)")
    parser.add_argument("--weight-bits", type=int, default=None, metavar="B",
                        help="signed weight width (default: the configuration's)")
    parser.add_argument("--pes", type=int, default=None, metavar="N", help="eie: number of PEs")
    parser.add_argument("--index-bits", type=int, default=None, metavar="B", help="eie: relative-index width")
    parser.add_argument("--codebook", default=None, metavar="CB.npy",
                        help="eie: 2**k shared weights (entry 0 = 0); the matrix then holds codebook indices")
    parser.add_argument("--block", default=None, metavar="RxC", help="bsr: block shape (default 4x4)")
    parser.add_argument("--bias", default=None, metavar="B.npy",
                        help="(R,) integer per-row bias, written as bias.hex (listed in the manifest)")
    parser.add_argument("--bias-bits", type=int, default=None, metavar="B",
                        help="with --bias: signed bias width (default weight bits + 16 + ceil(log2 C))")
    parser.add_argument("--json", action="store_true", help="print a JSON report")


def _config(args, shape):
    """The configuration object of the image, sized to hold this matrix."""
    from model.hw.config import Arith, EIEConfig, Sparse24Config
    from model.errors import SparseFlowError
    from model.hw.formats import bsr, eie, nm
    rows, cols = shape
    fmt = args.format
    for opt, only in (("pes", eie.EIE), ("index_bits", eie.EIE), ("codebook", eie.EIE), ("block", bsr.BSR)):
        if getattr(args, opt) is not None and fmt != only.name:
            raise SparseFlowError(f"--{opt.replace('_', '-')} applies only to --format {only.name}")
    akw = {} if args.weight_bits is None else {"weight_bits": args.weight_bits}
    if getattr(args, "bias", None) is not None:  # the products' sum width unless given
        akw["bias_bits"] = (args.bias_bits if args.bias_bits is not None
                            else Arith(max_cols=max(4 if fmt == nm.NM24.name else 1, cols), **akw).sum_bits)
    elif getattr(args, "bias_bits", None) is not None:
        raise SparseFlowError("--bias-bits needs --bias")
    if fmt == nm.NM24.name:
        return Sparse24Config(arith=Arith(max_cols=max(4, -(-cols // 4) * 4), **akw), max_rows=max(rows, 1))
    arith = Arith(max_cols=max(cols, 1), **akw)
    if fmt != eie.EIE.name:
        return arith
    kw = {"arith": arith, "max_rows": max(rows, 1)}
    if args.pes is not None:
        kw["n_pes"] = args.pes
    if args.index_bits is not None:
        kw["index_bits"] = args.index_bits
    return EIEConfig(**kw)


def emit(weights, args):
    """Encode ``weights`` as ``args`` ask; return (matrix, config). Nothing is written."""
    import numpy as np
    from model.errors import SparseFlowError
    from model.hw.formats import bsr, eie, get
    w = np.asarray(weights)
    if w.ndim != 2:
        raise SparseFlowError(f"weights must be 2-D, got shape {w.shape}")
    try:
        cfg = _config(args, w.shape)
    except SparseFlowError as exc:
        from scripts.cli import in_option_terms
        raise in_option_terms(exc) from None
    fmt = get(args.format)
    options = {}  # the format's own options (its encoder's keywords)
    if fmt is bsr.BSR:
        options["block"] = bsr.parse_block(args.block or "4x4")
    if args.codebook is not None:  # eie only (checked by _config)
        from scripts.npyio import load_codebook
        book, bits = load_codebook(args.codebook, cfg.arith.weight_bits)
        cfg = cfg.with_(codebook=True, codebook_bits=bits)
        options["codebook"] = book
    m = fmt.encode(w, cfg, **options)
    if fmt is eie.EIE:  # size the entry memory to the busiest PE: the smallest array that holds this matrix
        cfg = cfg.with_(max_entries=max(1, int(m.entries_per_pe.max(initial=0))))
    return m, cfg


def report(manifest: dict, out: str) -> dict:
    from model.hw.config import config_from_dict
    from model.hw.formats import arith_of
    from model.hw.images import memory_bytes
    rows, cols = manifest["shape"]
    wb = arith_of(config_from_dict(manifest["config"])).weight_bits
    bits = {n: f["words"] * f["width"] for n, f in manifest["files"].items()}
    dense_bits = rows * cols * wb
    rep = {
        "format": manifest["format"], "out": out, "shape": [rows, cols], "weight_bits": wb,
        "nnz": manifest["nnz"], "density": manifest["nnz"] / (rows * cols) if rows * cols else 0.0,
        "memory_bytes": memory_bytes(manifest), "total_bytes": -(-sum(bits.values()) // 8),
        "dense_bytes": -(-dense_bits // 8),
        "compression_ratio": dense_bits / sum(bits.values()) if sum(bits.values()) else None,
    }
    for key in ("n_pes", "entries_per_pe", "padding_entries", "block", "blocks"):
        if key in manifest:
            rep[key] = manifest[key]
    return rep


def run(args) -> int:
    from model.hw.images import check_out, write_image
    from model.outputs import check_not_input
    from scripts.cli import print_json
    from scripts.npyio import load_npy
    check_not_input(args.out, {"--weights": args.weights, "--codebook": args.codebook}, folder=True)
    check_out(args.out)
    weights = load_npy(args.weights, "weights")
    matrix, cfg = emit(weights, args)
    bias = load_npy(args.bias, "bias") if args.bias is not None else None
    manifest = write_image(args.out, matrix, cfg, bias=bias)
    rep = report(manifest, args.out)
    if args.json:
        print_json(rep)
    else:
        ratio = rep["compression_ratio"]
        print(f"{rep['format']} image {args.out}: {rep['shape'][0]}x{rep['shape'][1]}, nnz {rep['nnz']} "
              f"(density {rep['density']:.3f}), {rep['total_bytes']} bytes in {len(rep['memory_bytes'])} files, "
              f"compression {'n/a' if ratio is None else f'{ratio:.2f}x'} vs dense")
    return 0
