"""The same trained LeNet through the three front ends: nn.Module (torch.fx), ONNX, TorchScript.

Trains the network exactly as ``sparseflow zoo lenet`` does (seeded, one thread), exports it
with :func:`model.nn.zoo.export`, imports all three, compares the float graphs on the held-out
images (max |difference| of the logits), then compiles each with the same options and seed and
compares the held-out accuracies (dense float / pruned float / integer golden).

    .venv/bin/python -m benchmarks.frontends lenet300100 [--out build/frontends] [compile options as k=v]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv.pop(0) if argv and "=" not in argv[0] else "lenet300100"
    opts = {}
    for a in argv:
        k, v = a.split("=", 1)
        opts[k] = json.loads(v)
    from model.nn.graph import load_model
    from model.nn.mnist import INPUT_SHAPE, load_mnist
    from model.network.compile import compile_network
    from model.network.compile import CompileOptions
    from model.nn.train import train
    from model.nn.zoo import EPOCHS, build, export

    data = {k: np.array(v) for k, v in load_mnist().items()}
    torch.manual_seed(0)
    module = build(name)
    train(module, torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"]), epochs=EPOCHS, lr=1e-3,
          batch_size=64, seed=0, progress=False)
    module.eval()
    res = {"network": name, "options": opts, "seed": 0}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, ts_path = export(module, Path(tmp), name)
        graphs = {"module": load_model(module, INPUT_SHAPE), "onnx": load_model(onnx_path, INPUT_SHAPE),
                  "torchscript": load_model(ts_path, INPUT_SHAPE)}
        with torch.no_grad():
            ref = module(torch.from_numpy(data["x_test"])).numpy()
        res["float_max_abs_diff_vs_module"] = {k: float(np.abs(g(data["x_test"]) - ref).max())
                                               for k, g in graphs.items()}
        outs = {k: g(data["x_test"]) for k, g in graphs.items()}
        res["float_max_abs_diff_between"] = max(float(np.abs(outs[a] - outs[b]).max())
                                                for a in outs for b in outs)
        res["compiled"] = {}
        for k, g in graphs.items():
            t = time.time()
            c = compile_network(g, data, CompileOptions(progress=False, **opts))
            res["compiled"][k] = dict(c.report["accuracy"], seconds=round(time.time() - t, 1),
                                      engines=[l.engine for l in c.net.layers])
            print(k, res["compiled"][k], file=sys.stderr, flush=True)
    acc = [r["integer_golden"] for r in res["compiled"].values()]
    res["integer_golden_spread_points"] = 100 * (max(acc) - min(acc))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
