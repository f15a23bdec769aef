"""From scores to masks, at a granularity, under a layer-wise or global sparsity target.

Every layer is seen as its ``(out, fan_in)`` matrix (``model.nn.nets.as_matrix``). The matrix
is cut into *units* that are kept or pruned whole; a unit's score is the mean of its
members' scores (``reduce="sum"`` is the alternative):

* ``unstructured``: single weights;
* ``block2x2`` / ``block4x4``: aligned ``B x B`` tiles (edge tiles of a matrix whose sides are
  not multiples of ``B`` are smaller, and count with their real size);
* ``channel``: whole output rows (a pruned row is an output that is always 0). The rows of
  the classifier (the last prunable layer) are the classes, so that layer is exempt by default
  and the target applies to the other layers;
* ``2:4``: in every group of four consecutive *inputs* of a row (``W[r, 4g:4g+4]``, the groups
  the 2:4 engine reduces over) the two lowest-scoring weights are pruned, so the sparsity is
  exactly 0.5 and the result passes ``model.hw.formats.nm.check_24``.

Targets: ``scope="layer"`` prunes ``round(S * n)`` weights of every layer (``n`` its size);
``scope="global"`` ranks the units of all (non-exempt) layers together and prunes
``round(S * total)``. With units larger than one weight the pruned count is the unit-sum closest
to the target (exact whenever the target is a whole number of units).

``prev`` masks make pruning monotone (iterative schedules): weights already pruned score
``-inf`` and so stay pruned.

``keep_rows`` (``PruneConfig.keep_rows``, on by default there): every output unit (row) of an
unstructured or block-pruned layer keeps its best unit (weight, or tile of its block row), so no
layer loses all the weights of an output unless channel pruning asks for it; the target count is
unchanged (the next-lowest unit goes instead). A row already emptied by ``prev`` stays empty.
"""
from __future__ import annotations

import math

import torch

from model.errors import SparseFlowError
from model.nn.nets import as_matrix
from model.nn.prune import check_target


def _protect_rows(s: torch.Tensor) -> torch.Tensor:
    """``s`` (unit rows, unit cols) with each row's best finite unit raised to ``+inf`` (kept)."""
    s = s.clone()
    best = s.argmax(1)
    r = torch.arange(s.shape[0])
    live = s[r, best] > -math.inf  # a row emptied earlier (prev) stays empty
    s[r[live], best[live]] = math.inf
    return s


def _units(mat: torch.Tensor, granularity: str, reduce: str,
           keep_rows: bool = False) -> tuple[torch.Tensor, torch.Tensor, callable]:
    """(unit scores, unit sizes, expand(unit_keep) -> element keep matrix) for one matrix."""
    rows, cols = mat.shape
    if granularity == "unstructured":
        if keep_rows and cols:
            mat = _protect_rows(mat)
        return mat.reshape(-1), torch.ones(mat.numel()), lambda k: k.reshape(rows, cols)
    if granularity == "channel":
        s = mat.sum(1) if reduce == "sum" else mat.mean(1)
        return s, torch.full((rows,), float(cols)), lambda k: k[:, None].expand(rows, cols)
    b = {"block2x2": 2, "block4x4": 4}[granularity]
    br, bc = -(-rows // b), -(-cols // b)
    pad = torch.zeros(br * b, bc * b)
    cnt = torch.zeros(br * b, bc * b)
    pad[:rows, :cols] = mat
    cnt[:rows, :cols] = 1.0
    # Tiles as (br, bc, b, b); -inf members (already pruned) keep the tile at -inf.
    tile = lambda t: t.reshape(br, b, bc, b).permute(0, 2, 1, 3).reshape(br, bc, b * b)
    sums = tile(pad).sum(2)
    sizes = tile(cnt).sum(2)
    s = sums if reduce == "sum" else sums / sizes
    if keep_rows and bc:
        s = _protect_rows(s)

    def expand(keep):
        full = keep.reshape(br, bc)[:, None, :, None].expand(br, b, bc, b).reshape(br * b, bc * b)
        return full[:rows, :cols]
    return s.reshape(-1), sizes.reshape(-1), expand


def _select(scores: torch.Tensor, sizes: torch.Tensor, target: int) -> torch.Tensor:
    """Keep-flags: prune the lowest-scoring units whose total size is closest to ``target``."""
    order = torch.argsort(scores, stable=True)
    cum = torch.cat([torch.zeros(1), torch.cumsum(sizes[order], 0)])
    p = int(torch.argmin((cum - target).abs()))
    keep = torch.ones(len(scores), dtype=torch.bool)
    keep[order[:p]] = False
    keep[scores == math.inf] = True  # protected (keep_rows), even if the target wanted fewer units
    return keep


def mask_24(scores: torch.Tensor, pad: bool = False) -> torch.Tensor:
    """Keep the two highest scores of each group of four consecutive inputs.

    ``pad``: a row whose length is not a multiple of 4 is seen padded with zero columns (what
    the compiler feeds the 2:4 engine, e.g. a 5x5 convolution's 25-element patches): the padding
    scores ``-inf``, so a short last group keeps its (at most two) best real weights.
    """
    mat = as_matrix(scores)
    rows, cols = mat.shape
    if cols % 4 and not pad:
        raise SparseFlowError(f"2:4 needs a multiple of 4 inputs per row, this layer has {cols}")
    full = -(-cols // 4) * 4
    if full != cols:
        mat = torch.cat([mat, torch.full((rows, full - cols), -math.inf, dtype=mat.dtype)], 1)
    g = mat.reshape(rows, full // 4, 4)
    top = torch.topk(g, 2, dim=2, sorted=False).indices
    keep = torch.zeros_like(g, dtype=torch.bool).scatter_(2, top, True)
    return keep.reshape(rows, full)[:, :cols].reshape(scores.shape)


def make_masks(scores: dict[str, torch.Tensor], granularity: str, sparsity: float, *,
               scope: str = "layer", prev: dict[str, torch.Tensor] | None = None,
               exempt: set[str] | None = None, reduce: str = "mean", layer_sparsity: dict | None = None,
               pad24: bool = False, keep_rows: bool = False) -> dict[str, torch.Tensor]:
    """Masks (name -> float 0/1 tensor shaped like the weight) for the given scores.

    ``keep_rows``: every row keeps at least its best unit (module docstring; not for ``channel``
    and ``2:4``, where it does not apply).
    ``layer_sparsity``: name -> sparsity overriding ``sparsity`` for those layers (layer scope
    only; e.g. a lower target for convolutions). ``pad24``: see :func:`mask_24`.
    """
    check_target(granularity, sparsity, scope)
    if layer_sparsity:
        if scope != "layer":
            raise SparseFlowError("per-layer sparsity targets need --scope layer")
        if granularity == "2:4":
            raise SparseFlowError("2:4 sparsity is exactly 0.5 in every layer: no per-layer targets")
        unknown = sorted(set(layer_sparsity) - set(scores))
        if unknown:
            raise SparseFlowError(f"per-layer sparsity for unknown layer(s) {', '.join(unknown)}")
        for s in layer_sparsity.values():
            check_target(granularity, s, scope)
    if reduce not in ("mean", "sum"):
        raise SparseFlowError(f"unit score reduction must be mean or sum, not {reduce!r}")
    names = list(scores)
    if exempt is None:
        exempt = {names[-1]} if granularity == "channel" and len(names) > 1 else set()
    masks: dict[str, torch.Tensor] = {}
    target = lambda name: (layer_sparsity or {}).get(name, sparsity)
    for name in names:
        if name in exempt or target(name) == 0.0:
            masks[name] = torch.ones_like(scores[name], dtype=torch.float32)
    work = [n for n in names if n not in masks]
    if not work:
        return masks

    def prepared(name):
        s = scores[name].detach().to(torch.float32).clone()
        if prev is not None and name in prev:
            s[prev[name] == 0] = -math.inf
        return s

    if granularity == "2:4":
        for name in work:
            masks[name] = mask_24(prepared(name), pad=pad24).to(torch.float32)
        return masks

    per = {name: _units(as_matrix(prepared(name)), granularity, reduce, keep_rows and granularity != "channel")
           for name in work}
    if scope == "layer":
        for name in work:
            s, sz, expand = per[name]
            keep = _select(s, sz, round(target(name) * scores[name].numel()))
            masks[name] = expand(keep).reshape(scores[name].shape).to(torch.float32)
    else:
        s_all = torch.cat([per[n][0] for n in work])
        sz_all = torch.cat([per[n][1] for n in work])
        total = sum(scores[n].numel() for n in work)
        keep_all = _select(s_all, sz_all, round(sparsity * total))
        start = 0
        for name in work:
            s, _, expand = per[name]
            keep = keep_all[start:start + len(s)]
            start += len(s)
            masks[name] = expand(keep).reshape(scores[name].shape).to(torch.float32)
    return {n: masks[n] for n in names}


def sparsity_of(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of pruned weights per layer, plus ``"total"``."""
    out = {n: 1.0 - float(m.sum()) / m.numel() for n, m in masks.items()}
    pruned = sum(m.numel() - float(m.sum()) for m in masks.values())
    out["total"] = pruned / max(1, sum(m.numel() for m in masks.values()))
    return out
