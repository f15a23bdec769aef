"""Masks from scores: exact sparsity per granularity and scope, structure, monotonicity, errors."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from model.errors import SparseFlowError
from model.hw.formats.nm import check_24
from model.nn.prune import make_masks, sparsity_of
from model.nn.prune.criteria import magnitude_scores

SHAPES = {"a": (16, 32), "b": (8, 16), "c": (16, 8)}  # sides multiples of 4: targets are whole blocks


def _scores(seed=0, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(s, generator=g) for n, s in shapes.items()}


def _tiles(m: torch.Tensor, b: int) -> torch.Tensor:
    r, c = m.shape
    return m.reshape(r // b, b, c // b, b).permute(0, 2, 1, 3).reshape(r // b, c // b, b * b)


@pytest.mark.parametrize("gran", ["unstructured", "block2x2", "block4x4", "channel"])
@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.75])
def test_layer_scope_hits_target_exactly(gran, sparsity):
    masks = make_masks(_scores(), gran, sparsity, scope="layer", exempt=set())
    for name, m in masks.items():
        assert m.shape == SHAPES[name]
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
        assert int((m == 0).sum()) == round(sparsity * m.numel()), (name, gran)


@pytest.mark.parametrize("gran", ["unstructured", "block2x2", "block4x4"])
def test_global_scope_hits_total_and_ranks_across_layers(gran):
    sc = _scores(1)
    sc["b"] = sc["b"] * 0.01  # a layer of tiny scores is pruned first under a global target
    masks = make_masks(sc, gran, 0.25, scope="global")
    total = sum(m.numel() for m in masks.values())
    assert sum(int((m == 0).sum()) for m in masks.values()) == round(0.25 * total)
    assert sparsity_of(masks)["b"] == 1.0  # 128 weights < 25% of 768
    assert sparsity_of(masks)["total"] == pytest.approx(0.25)


def test_unstructured_prunes_the_lowest_scores():
    sc = _scores(2)
    masks = make_masks(sc, "unstructured", 0.6)
    for name, s in sc.items():
        kept, pruned = s[masks[name] == 1], s[masks[name] == 0]
        assert pruned.max() < kept.min()


def test_24_passes_check_24_and_keeps_top_two_of_each_group():
    sc = _scores(3)
    masks = make_masks(sc, "2:4", 0.5, scope="global")  # scope does not matter for 2:4
    for name, m in masks.items():
        w = (sc[name] * m).numpy()
        check_24(w)
        groups = m.reshape(m.shape[0], -1, 4)
        assert torch.all(groups.sum(2) == 2)
        s = sc[name].reshape(m.shape[0], -1, 4)
        kept_min = torch.where(groups == 1, s, torch.inf).min(2).values
        pruned_max = torch.where(groups == 0, s, -torch.inf).max(2).values
        assert torch.all(pruned_max < kept_min)


def test_dense_matrix_fails_check_24_so_the_check_is_real():
    with pytest.raises(SparseFlowError, match="not 2:4"):
        check_24(np.ones((4, 8)))


@pytest.mark.parametrize("b", [2, 4])
def test_blocks_are_whole_and_lowest_mean_blocks_go(b):
    sc = _scores(4)
    masks = make_masks(sc, f"block{b}x{b}", 0.5)
    for name, m in masks.items():
        t = _tiles(m, b)
        assert torch.all((t.sum(2) == 0) | (t.sum(2) == b * b)), "a block is partly pruned"
        means = _tiles(sc[name], b).mean(2)
        keep = t[:, :, 0] == 1
        assert means[~keep].max() <= means[keep].min()


def test_block4x4_on_ragged_matrix_counts_edge_blocks_by_size():
    sc = {"w": torch.rand(10, 16, generator=torch.Generator().manual_seed(5))}
    m = make_masks(sc, "block4x4", 0.5)["w"]
    # 10 rows: block rows of 4, 4 and 2; every 4x4 tile (edge ones 2x4) is all kept or all pruned.
    for r0, r1 in ((0, 4), (4, 8), (8, 10)):
        for c0 in range(0, 16, 4):
            tile = m[r0:r1, c0:c0 + 4]
            assert tile.min() == tile.max()
    assert abs(int((m == 0).sum()) - 80) <= 4  # closest whole-block count to the target


def test_channel_prunes_whole_rows_and_spares_the_classifier():
    sc = _scores(6)
    masks = make_masks(sc, "channel", 0.5)
    for name in ("a", "b"):
        m = masks[name]
        rows = m.sum(1)
        assert torch.all((rows == 0) | (rows == m.shape[1]))
        assert int((rows == 0).sum()) == m.shape[0] // 2
    assert torch.all(masks["c"] == 1)  # last layer: its rows are the classes


def test_prev_masks_make_pruning_monotone():
    sc = _scores(7)
    m1 = make_masks(sc, "unstructured", 0.5)
    sc2 = _scores(8)  # fresh scores would re-rank everything...
    m2 = make_masks(sc2, "unstructured", 0.75, prev=m1)
    for name in sc:
        assert torch.all(m2[name] <= m1[name])  # ...but what was pruned stays pruned
        assert int((m2[name] == 0).sum()) == round(0.75 * m2[name].numel())


def test_conv2d_is_pruned_as_its_lowered_matrix():
    net = nn.Sequential(nn.Conv2d(4, 8, 3, bias=False), nn.Flatten(), nn.Linear(8, 4, bias=False))
    torch.manual_seed(0)
    sc = magnitude_scores(net)
    masks = make_masks(sc, "2:4", 0.5)
    assert masks["0"].shape == (8, 4, 3, 3)
    check_24(masks["0"].reshape(8, -1).numpy())  # groups of 4 along in*kh*kw
    masks = make_masks(sc, "unstructured", 0.75)
    assert int((masks["0"] == 0).sum()) == round(0.75 * 8 * 36)


@pytest.mark.parametrize("gran,sparsity,msg", [
    ("unstructured", 1.0, r"sparsity must be in \[0, 1\), not 1.0"),
    ("unstructured", -0.1, r"sparsity must be in \[0, 1\)"),
    ("unstructured", math.nan, "sparsity must be a number"),
    ("2:4", 0.7, "2:4 sparsity is exactly 0.5, not 0.7"),
    ("block3x3", 0.5, "unknown granularity 'block3x3'"),
])
def test_bad_targets_are_one_line_errors(gran, sparsity, msg):
    with pytest.raises(SparseFlowError, match=msg) as exc:
        make_masks(_scores(), gran, sparsity)
    assert "\n" not in str(exc.value)


def test_24_needs_multiple_of_four_inputs():
    with pytest.raises(SparseFlowError, match="multiple of 4 inputs"):
        make_masks({"w": torch.rand(4, 6)}, "2:4", 0.5)


@pytest.mark.parametrize("gran,b", [("unstructured", 1), ("block2x2", 2), ("block4x4", 4)])
def test_keep_rows_keeps_every_output_unit_at_the_same_count(gran, b):
    sc = _scores(5)
    sc["a"][:8] *= 1e-3  # the first 8 rows score lowest: a plain ranking empties them
    plain = make_masks(sc, gran, 0.75, exempt=set())
    kept = make_masks(sc, gran, 0.75, exempt=set(), keep_rows=True)
    assert (plain["a"].sum(1) == 0).sum() >= 8
    for name, m in kept.items():
        assert (m.sum(1) > 0).all(), name
        rows_b = -(-m.shape[0] // b)
        if round(0.25 * m.numel() / b**2) >= rows_b:  # the target is unchanged when it leaves a unit per row
            assert int((m == 0).sum()) == int((plain[name] == 0).sum()), name
        else:  # 16x8 in 4x4 tiles: 2 tiles kept by the target, 4 block rows: one tile each
            assert int(m.sum()) == rows_b * b * b
    # Each rescued row keeps exactly its best unit (one weight, or one tile of its block row).
    assert int(kept["a"][:8].sum()) == 8 * b
    # Channel pruning is asked to remove rows: keep_rows does not apply there.
    ch = make_masks(sc, "channel", 0.5, exempt=set(), keep_rows=True)
    assert (ch["a"].sum(1) == 0).sum() == 8


def test_keep_rows_leaves_rows_emptied_earlier_empty():
    sc = _scores(6)
    prev = {n: torch.ones(s) for n, s in SHAPES.items()}
    prev["b"][0] = 0
    m = make_masks(sc, "unstructured", 0.5, prev=prev, keep_rows=True)
    assert m["b"][0].sum() == 0 and (m["b"][1:].sum(1) > 0).all()
