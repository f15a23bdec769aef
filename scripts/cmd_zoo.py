"""``sparseflow zoo``: example networks as ONNX and TorchScript files."""
from __future__ import annotations

HELP = "write example networks (lenet: LeNet-300-100, LeNet-5, LeNet-5+BN) trained on MNIST as .onnx and .pt"


def add_arguments(parser) -> None:
    parser.add_argument("family", choices=("lenet",), help="lenet: lenet300100, lenet5, lenet5bn")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--epochs", type=int, default=10,
                        help="training epochs on the 4,000 MNIST training images (default 10; 0 = untrained)")
    parser.add_argument("--seed", type=int, default=0, help="seed of init and batches (default 0)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object (no progress)")


def run(args) -> int:
    from model.nn.zoo import NETS, write_zoo
    from scripts.cli import print_json

    rep = write_zoo(args.out, NETS, epochs=args.epochs, seed=args.seed, progress=not args.json)
    if args.json:
        print_json(rep)
        return 0
    for name, r in rep["nets"].items():
        print(f"{name:12s} {r['params']:7d} params  test accuracy {r['test_accuracy']:.3f}  -> "
              f"{args.out}/{r['onnx']}, {args.out}/{r['torchscript']}")
    return 0
