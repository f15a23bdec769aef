"""Pipelines on real digits (small net, few epochs): masks hold, LTH rewinds exactly, DST moves."""
import pytest
import torch

from model.nn.data import load_digits
from model.errors import SparseFlowError
from model.hw.formats.nm import check_24
from model.nn.nets import prunable_layers
from model.nn.prune import PruneConfig, run
from model.nn.prune.pipelines import train_dense

FAST = dict(hidden=(64, 32), epochs=10, finetune_epochs=5, progress=False)


@pytest.fixture(scope="module")
def dense():
    cfg = PruneConfig(rewind_step=5, **FAST)
    model, init, at_k = train_dense(cfg, load_digits())
    return model, init, at_k


def _weights(model):
    return {n: m.weight.detach().clone() for n, m in prunable_layers(model).items()}


def _assert_masked(res):
    for name, w in _weights(res.model).items():
        assert torch.all(w[res.masks[name] == 0] == 0), name


@pytest.mark.parametrize("method,gran,sparsity", [("magnitude", "unstructured", 0.8), ("taylor", "2:4", 0.5),
                                                  ("random", "block4x4", 0.5), ("magnitude", "channel", 0.5)])
def test_oneshot_prunes_fine_tunes_and_keeps_zeros(dense, method, gran, sparsity):
    model, init, _ = dense
    before = _weights(model)
    res = run(PruneConfig(method=method, granularity=gran, sparsity=sparsity, **FAST),
              dense=model, init_state=init)
    _assert_masked(res)
    assert torch.equal(_weights(model)["linears.0"], before["linears.0"])  # the dense model is untouched
    kept = res.masks["linears.0"] == 1
    assert not torch.equal(_weights(res.model)["linears.0"][kept], before["linears.0"][kept])  # fine-tuned
    if gran == "2:4":
        for w in _weights(res.model).values():
            check_24(w.numpy())
    if gran != "channel":  # channel spares the classifier, so only its pruned layers hit S
        assert res.sparsity["total"] == pytest.approx(sparsity, abs=0.01)
    assert res.pruned_acc > 0.5  # held-out; random guess is 0.10
    assert res.dense_acc > 0.85


def test_magnitude_beats_random_at_90_percent(dense):
    model, init, _ = dense
    acc = {m: run(PruneConfig(method=m, sparsity=0.9, **FAST), dense=model, init_state=init).pruned_acc
           for m in ("magnitude", "random")}
    assert acc["magnitude"] > 0.9 and acc["magnitude"] > acc["random"] + 0.05


@pytest.mark.parametrize("schedule", ["lth", "iterative"])
def test_rewind_restores_init_exactly_and_reinit_does_not(dense, schedule):
    model, init, _ = dense
    cfg = PruneConfig(schedule=schedule, sparsity=0.75, rounds=2, retrain_epochs=0, **FAST)
    res = run(cfg, dense=model, init_state=init)
    for name, w in _weights(res.model).items():
        m = res.masks[name]
        same = torch.equal(w, init[f"{name}.weight"] * m)
        assert same == (schedule == "lth"), (schedule, name)
        assert int((m == 0).sum()) == round(0.75 * m.numel())


def test_late_rewind_goes_to_step_k(dense):
    model, init, at_k = dense
    cfg = PruneConfig(schedule="lth", sparsity=0.5, rounds=1, retrain_epochs=0, rewind_step=5, **FAST)
    res = run(cfg, dense=model, init_state=init, rewind_state=at_k)
    w = _weights(res.model)["linears.1"]
    assert torch.equal(w, at_k["linears.1.weight"] * res.masks["linears.1"])
    assert not torch.equal(at_k["linears.1.weight"], init["linears.1.weight"])


def test_lth_full_run_is_monotone_and_accurate(dense):
    model, init, _ = dense
    res = run(PruneConfig(schedule="lth", sparsity=0.8, rounds=2, retrain_epochs=6, **{**FAST}),
              dense=model, init_state=init)
    _assert_masked(res)
    assert [h["sparsity"] for h in res.history] == pytest.approx([1 - 0.2 ** 0.5, 0.8])
    assert res.pruned_acc > 0.8


@pytest.mark.parametrize("regrow", ["random", "gradient"])
def test_dst_keeps_sparsity_and_changes_the_mask(regrow):
    cfg = PruneConfig(schedule="dst", sparsity=0.7, dst_regrow=regrow, dst_interval=10, **FAST)
    gen = torch.Generator().manual_seed(cfg.seed + 7)  # dst's initial mask, recomputed
    from model.nn.nets import build_mlp
    from model.nn.prune import make_masks
    net = build_mlp(cfg.hidden, cfg.seed)
    first = make_masks({n: torch.rand(m.weight.shape, generator=gen) for n, m in prunable_layers(net).items()},
                       "unstructured", 0.7)
    res = run(cfg)
    kept = [h["kept"] for h in res.history]
    assert len(kept) > 5 and len(set(kept)) == 1  # constant size at every update
    assert sum(h["moved"] for h in res.history) > 0
    fracs = [h["fraction"] for h in res.history]
    assert fracs == sorted(fracs, reverse=True)  # the cosine-decayed update fraction
    for name, m in res.masks.items():
        assert int((m == 0).sum()) == round(0.7 * m.numel())
        assert not torch.equal(m, first[name]), "the mask never changed"
    _assert_masked(res)
    assert res.pruned_acc > 0.8


def test_bad_configs():
    with pytest.raises(SparseFlowError, match="dst is unstructured only"):
        run(PruneConfig(schedule="dst", granularity="2:4", sparsity=0.5))
    with pytest.raises(SparseFlowError, match="unknown schedule 'gmp'"):
        run(PruneConfig(schedule="gmp"))
    with pytest.raises(SparseFlowError, match="rewind step 100000 is beyond"):
        train_dense(PruneConfig(rewind_step=100000, **FAST), load_digits())
