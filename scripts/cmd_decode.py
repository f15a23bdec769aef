"""``sparseflow decode``: a memory image folder back to the dense matrix (.npy)."""
from __future__ import annotations

HELP = "decode a memory image (hex files + manifest.json) back to a dense .npy matrix"


def add_arguments(parser) -> None:
    parser.add_argument("image", metavar="DIR", help="image folder written by `sparseflow emit`")
    parser.add_argument("--out", required=True, metavar="W.npy", help="dense matrix to write")
    parser.add_argument("--bias-out", default=None, metavar="B.npy", help="write the image's per-row bias (int64)")
    parser.add_argument("--json", action="store_true", help="print a JSON report")


def _dtype(img):
    """The narrowest signed dtype that holds every value of the image's format."""
    import numpy as np
    from model.hw.formats import arith_of, eie
    cfg = img.config
    bits = arith_of(cfg).weight_bits
    if img.format == eie.EIE.name and cfg.codebook:
        bits = cfg.codebook_bits + 1  # unsigned indices
    return np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32


def run(args) -> int:
    import numpy as np
    from model.errors import SparseFlowError
    from model.hw.images import load_image
    from scripts.cli import print_json
    from scripts.npyio import save_npy

    from model.outputs import check_file, check_not_input
    check_not_input(args.out, {"image": args.image})
    check_file(args.out)
    img = load_image(args.image)
    if args.bias_out is not None and img.bias is None:
        raise SparseFlowError(f"{args.image}: the image has no bias (no bias.hex)")
    dense = img.dense().astype(_dtype(img))
    out = save_npy(args.out, dense)
    if args.bias_out is not None:
        save_npy(args.bias_out, img.bias)
    rep = {"format": img.format, "image": str(args.image), "out": str(out), "shape": list(dense.shape),
           "nnz": int(np.count_nonzero(dense)), "dtype": str(dense.dtype)}
    if img.bias is not None:
        rep["bias"] = args.bias_out
    if args.json:
        print_json(rep)
    else:
        print(f"{img.format} image {args.image} -> {out}: {dense.shape[0]}x{dense.shape[1]} {dense.dtype}, "
              f"nnz {rep['nnz']}")
    return 0
