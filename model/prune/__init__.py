"""Pruning: criteria (scores), granularity (scores -> masks), pipelines (when to prune).

Typical use::

    from model.prune import PruneConfig, run
    res = run(PruneConfig(method="taylor", granularity="2:4", sparsity=0.5))
    res.model, res.masks, res.pruned_acc
"""
from .criteria import METHODS, magnitude_scores, random_scores, scores, taylor_scores
from .granularity import GRANULARITIES, SCOPES, check_target, make_masks, mask_24, sparsity_of
from .pipelines import REGROW, SCHEDULES, PruneConfig, PruneResult, run

__all__ = [
    "METHODS", "GRANULARITIES", "SCOPES", "SCHEDULES", "REGROW", "PruneConfig", "PruneResult", "run",
    "scores", "magnitude_scores", "taylor_scores", "random_scores", "make_masks", "mask_24",
    "check_target", "sparsity_of",
]
