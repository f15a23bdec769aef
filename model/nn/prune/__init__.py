"""Pruning: criteria (scores), granularity (scores -> masks), pipelines (when to prune).

Typical use::

    from model.nn.prune import PruneConfig, run
    res = run(PruneConfig(method="taylor", granularity="2:4", sparsity=0.5))
    res.model, res.masks, res.pruned_acc

The option names live here, torch-free, so that the CLI can offer them without importing
torch; everything else is imported on first use.
"""
METHODS = ("magnitude", "taylor", "random")
GRANULARITIES = ("unstructured", "block2x2", "block4x4", "2:4", "channel")
SCOPES = ("layer", "global")
SCHEDULES = ("oneshot", "iterative", "lth", "dst")
REGROW = ("random", "gradient")
TAYLOR_MODES = ("example", "batch")  # Taylor saliency: per-example squared (default) or batch-mean gradient

_LAZY = {
    "scores": "criteria", "magnitude_scores": "criteria", "taylor_scores": "criteria", "random_scores": "criteria",
    "make_masks": "granularity", "mask_24": "granularity", "check_target": "granularity", "sparsity_of": "granularity",
    "PruneConfig": "pipelines", "PruneResult": "pipelines", "run": "pipelines",
}

__all__ = ["METHODS", "GRANULARITIES", "SCOPES", "SCHEDULES", "REGROW", "TAYLOR_MODES", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
