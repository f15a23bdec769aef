"""Pruning: criteria (scores), granularity (scores -> masks), pipelines (when to prune).

Typical use::

    from model.nn.prune import PruneConfig, run
    res = run(PruneConfig(method="taylor", granularity="2:4", sparsity=0.5))
    res.model, res.masks, res.pruned_acc

The option names and their checks live here, torch-free, so that the CLI (and a driver that only
plans work, ``sparseflow explore``) can use them without importing torch; everything else is
imported on first use.
"""
import math

from model.errors import SparseFlowError

METHODS = ("magnitude", "taylor", "random")
GRANULARITIES = ("unstructured", "block2x2", "block4x4", "2:4", "channel")
SCOPES = ("layer", "global")
SCHEDULES = ("oneshot", "iterative", "lth", "dst")
REGROW = ("random", "gradient")
TAYLOR_MODES = ("example", "batch")  # Taylor saliency: per-example squared (default) or batch-mean gradient

_LAZY = {
    "scores": "criteria", "magnitude_scores": "criteria", "taylor_scores": "criteria", "random_scores": "criteria",
    "make_masks": "granularity", "mask_24": "granularity", "sparsity_of": "granularity",
    "PruneConfig": "pipelines", "PruneResult": "pipelines", "run": "pipelines",
}

__all__ = ["METHODS", "GRANULARITIES", "SCOPES", "SCHEDULES", "REGROW", "TAYLOR_MODES", "check_target",
           "check_pruning", *_LAZY]


def check_target(granularity: str, sparsity: float, scope: str = "layer") -> None:
    """Validate the options with one-line messages (the CLI relies on these)."""
    if granularity not in GRANULARITIES:
        raise SparseFlowError(f"unknown granularity {granularity!r} (choose from {', '.join(GRANULARITIES)})")
    if scope not in SCOPES:
        raise SparseFlowError(f"unknown scope {scope!r} (choose from {', '.join(SCOPES)})")
    if not isinstance(sparsity, (int, float)) or isinstance(sparsity, bool) or not math.isfinite(sparsity):
        raise SparseFlowError(f"sparsity must be a number in [0, 1), not {sparsity!r}")
    if not 0.0 <= sparsity < 1.0:
        raise SparseFlowError(f"sparsity must be in [0, 1), not {sparsity}")
    if granularity == "2:4" and sparsity != 0.5:
        raise SparseFlowError(f"2:4 sparsity is exactly 0.5, not {sparsity}")


def check_pruning(method: str, schedule: str, granularity: str, sparsity: float, scope: str) -> None:
    """The pruning choices every entry point validates (PruneConfig, compile's options)."""
    if method not in METHODS:
        raise SparseFlowError(f"unknown pruning method {method!r} (choose from {', '.join(METHODS)})")
    if schedule not in SCHEDULES:
        raise SparseFlowError(f"unknown schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")
    check_target(granularity, sparsity, scope)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
