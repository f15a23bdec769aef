"""Held-out accuracy of the demo's EIE network with and without weight sharing (golden model).

The demo's own stages 1-3 with its defaults (``scripts.demo.DemoOptions``: digits MLP, Taylor
pruning to 90 %, iterative, seed 0), then ``model.nn.quant.share_weights`` at 2, 3 and 4 codebook
bits; prints one JSON object. ``sparseflow demo --share-bits B`` runs the shared net on the RTL
(bit-exact with this golden model, ``tests/test_demo.py``).

    python -m benchmarks.share_accuracy
"""
from __future__ import annotations

import json

import numpy as np


def main() -> int:
    import torch
    from model.nn.data import load_digits
    from model.nn.prune.pipelines import PruneConfig, run, train_dense
    from model.nn.quant import quantize, share_weights
    from scripts.demo import DemoOptions
    torch.set_num_threads(1)
    o = DemoOptions()
    data = load_digits()
    x_test, y_test = data.x_test.T.astype(np.int64), np.asarray(data.y_test)
    base = dict(method=o.method, hidden=o.hidden, seed=o.seed, epochs=o.epochs, finetune_epochs=o.finetune_epochs,
                progress=False)
    dense, init_state, _ = train_dense(PruneConfig(**base), data)
    unstr = run(PruneConfig(granularity="unstructured", sparsity=o.sparsity, schedule=o.schedule, scope=o.scope,
                            **base), data, dense=dense, init_state=init_state)
    q = quantize(unstr.model, data.x_train, weight_bits=8, act_bits=16)
    out = {"test_images": int(len(y_test)), "float_dense": unstr.dense_acc, "float_pruned": unstr.pruned_acc,
           "integer_golden_unshared": q.accuracy(x_test, y_test)}
    for bits in (2, 3, 4):
        out[f"integer_golden_shared_{bits}bit"] = share_weights(q, data.x_train, bits=bits).accuracy(x_test, y_test)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
