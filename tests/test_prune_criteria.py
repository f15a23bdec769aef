"""Importance scores: magnitude, first-order Taylor (checked against a hand-derived gradient), random."""
import pytest
import torch
from torch import nn

from model.errors import SparseFlowError
from model.nn.prune import scores
from model.nn.prune.criteria import magnitude_scores, random_scores, taylor_scores


def _tiny(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 3, bias=False))
    x = torch.randn(8, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    return net, x, y


def test_taylor_single_batch_equals_hand_gradient_times_weight():
    net, x, y = _tiny()
    w = net[0].weight.detach().double()
    # Cross-entropy of softmax(x W^T), mean over the batch: dL/dW = (p - onehot)^T x / n.
    p = torch.softmax(x.double() @ w.T, dim=1)
    grad = (p - nn.functional.one_hot(y, 3).double()).T @ x.double() / len(y)
    expected = (grad * w).abs()
    got = taylor_scores(net, x, y, mode="batch", n_batches=1, batch_size=8)["0"]
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-7)


def test_taylor_accumulates_per_batch_abs_over_batches():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(8, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False))
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    got = taylor_scores(net, x, y, mode="batch", n_batches=4, batch_size=8, seed=5)
    perm = torch.randperm(32, generator=torch.Generator().manual_seed(5))
    want = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for b in range(4):
        idx = perm[8 * b:8 * b + 8]
        params = dict(net.named_parameters())
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        grads = torch.autograd.grad(loss, list(params.values()))
        for (n, p), g in zip(params.items(), grads):
            want[n] += (g * p).abs().detach() / 4
    for name in ("0", "2"):
        torch.testing.assert_close(got[name], want[f"{name}.weight"])
    assert net[0].weight.grad is None  # scoring leaves no gradients behind


def test_taylor_ranks_differently_from_magnitude():
    net, x, y = _tiny(2)
    t = taylor_scores(net, x, y, mode="batch", n_batches=1, batch_size=8)["0"].flatten()
    m = magnitude_scores(net)["0"].flatten()
    assert not torch.equal(torch.argsort(t), torch.argsort(m))


def test_magnitude_and_random():
    net, _, _ = _tiny(3)
    torch.testing.assert_close(magnitude_scores(net)["0"], net[0].weight.detach().abs())
    r1, r2, r3 = random_scores(net, 1)["0"], random_scores(net, 1)["0"], random_scores(net, 2)["0"]
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert r1.shape == net[0].weight.shape


def test_dispatch_errors():
    net, x, y = _tiny()
    with pytest.raises(SparseFlowError, match="unknown pruning method 'l1'"):
        scores("l1", net)
    with pytest.raises(SparseFlowError, match="Taylor scores need training data"):
        scores("taylor", net)
    torch.testing.assert_close(scores("taylor", net, x, y, n_batches=1, taylor="batch")["0"],
                               taylor_scores(net, x, y, mode="batch", n_batches=1)["0"])
    torch.testing.assert_close(scores("taylor", net, x, y)["0"], taylor_scores(net, x, y)["0"])
    with pytest.raises(SparseFlowError, match="unknown Taylor form 'hessian'"):
        taylor_scores(net, x, y, mode="hessian")
    with pytest.raises(SparseFlowError, match="micro-batch must be at least one"):
        taylor_scores(net, x, y, micro_batch=0)


def test_taylor_example_form_is_row_normalised_sum_of_squared_per_example_saliency():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False))
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    for micro in (1, 4):
        perm = torch.randperm(10, generator=torch.Generator().manual_seed(7))
        params = dict(net.named_parameters())
        want = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
        for s in range(0, 10, micro):  # the last micro-batch of 4 has 2 examples
            idx = perm[s:s + micro]
            grads = torch.autograd.grad(nn.functional.cross_entropy(net(x[idx]), y[idx]), list(params.values()))
            for (n, p), g in zip(params.items(), grads):
                want[n] += (g * p).double().detach() ** 2
        raw = taylor_scores(net, x, y, micro_batch=micro, normalize=False, seed=7)
        got = taylor_scores(net, x, y, micro_batch=micro, seed=7)
        for name in ("0", "2"):
            w = want[f"{name}.weight"]
            torch.testing.assert_close(raw[name].double(), w, rtol=1e-5, atol=1e-12)
            torch.testing.assert_close(got[name].double(), w / w.sum(1, keepdim=True), rtol=1e-5, atol=1e-9)
