"""Data split, the bias-free MLP and seeded, mask-respecting training."""
import numpy as np
import pytest
import torch

from model.nn.data import INPUT_SCALE, load_digits
from model.errors import SparseFlowError
from model.nn.nets import MLP, build_mlp, parse_hidden
from model.nn.train import accuracy, train

HIDDEN = (32, 16)


def test_split_is_fixed_stratified_disjoint_raw_pixels():
    d = load_digits()
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    for x in (d.x_train, d.x_test):
        assert x.dtype == np.int64 and x.min() == 0 and x.max() == 16
    # Stratified: every class has the same share (to one image) in both parts.
    tr, te = np.bincount(d.y_train), np.bincount(d.y_test)
    assert np.all(np.abs(te - 0.2 * (tr + te)) <= 1)
    rows_tr = {r.tobytes() for r in d.x_train}
    assert sum(r.tobytes() in rows_tr for r in d.x_test) <= 2  # digits has a couple of exact duplicates
    xf, _ = d.float_test()
    torch.testing.assert_close(xf, torch.tensor(d.x_test, dtype=torch.float32) * INPUT_SCALE)


def test_mlp_has_no_bias_and_checks_widths():
    net = build_mlp(HIDDEN, seed=0)
    assert [tuple(l.weight.shape) for l in net.linears] == [(32, 64), (16, 32), (10, 16)]
    assert all(l.bias is None for l in net.linears)
    with pytest.raises(SparseFlowError, match="multiples of 4"):
        MLP((30, 16))
    with pytest.raises(SparseFlowError, match="comma-separated integers"):
        parse_hidden("12,x")
    assert parse_hidden("128,64") == (128, 64)
    assert torch.equal(build_mlp(HIDDEN, 3).linears[0].weight, build_mlp(HIDDEN, 3).linears[0].weight)


def test_training_is_deterministic_learns_and_respects_masks():
    d = load_digits()
    x, y = d.float_train()
    runs = []
    for seed in (0, 0, 1):
        net = build_mlp(HIDDEN, seed=seed)
        train(net, x, y, epochs=6, seed=seed, progress=False)
        runs.append(net)
    for a, b in zip(runs[0].parameters(), runs[1].parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(runs[0].linears[0].weight, runs[2].linears[0].weight)
    assert accuracy(runs[0], *d.float_test()) > 0.85  # random guess is 0.10

    net = build_mlp(HIDDEN, seed=0)
    g = torch.Generator().manual_seed(0)
    masks = {f"linears.{i}": (torch.rand(l.weight.shape, generator=g) > 0.7).float()
             for i, l in enumerate(net.linears)}
    before = [l.weight.detach().clone() for l in net.linears]
    train(net, x, y, epochs=2, seed=0, masks=masks, progress=False)
    for i, l in enumerate(net.linears):
        m = masks[f"linears.{i}"]
        assert torch.all(l.weight[m == 0] == 0)
        assert not torch.equal(l.weight[m == 1], before[i][m == 1])


def test_progress_goes_to_stderr(capsys):
    d = load_digits()
    x, y = d.float_train()
    train(build_mlp(HIDDEN), x[:64], y[:64], epochs=1, progress=True, tag="unit")
    cap = capsys.readouterr()
    assert cap.out == "" and "unit: epoch 1/1 loss" in cap.err
