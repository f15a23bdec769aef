"""Integer network: bit-exact chain of reference layers, calibrated shifts, weight sharing."""
import numpy as np
import pytest
import torch

from model.hw.config import Arith, EIEConfig, Requant
from model.nn.data import load_digits
from model.errors import SparseFlowError
from model.hw.formats import eie
from model.nn.nets import build_mlp
from model.nn.prune import make_masks, magnitude_scores
from model.nn.quant import QuantizedNet, choose_shift, kmeans_codebook, quantize, quantize_weights, share_weights
from model.hw.reference import layer as ref_layer
from model.nn.train import apply_masks, train


@pytest.fixture(scope="module")
def trained():
    d = load_digits()
    net = build_mlp((64, 32), seed=0)
    x, y = d.float_train()
    train(net, x, y, epochs=10, progress=False)
    masks = make_masks(magnitude_scores(net), "unstructured", 0.7)
    apply_masks(net, masks)
    train(net, x, y, epochs=4, masks=masks, progress=False)
    return d, net, masks


def test_forward_int_is_the_chain_of_reference_layers(trained):
    d, net, _ = trained
    q = quantize(net, d.x_train)
    x = d.x_test[:50].T
    acts = x.astype(np.int64)
    for i, l in enumerate(q.layers):
        last = i == len(q.layers) - 1
        assert l.arith == Arith(8, 16, max_cols=l.weight.shape[1], requant=Requant(l.shift, relu=not last))
        acts = ref_layer(l.weight, acts, l.arith)
    np.testing.assert_array_equal(q.forward_int(x), acts)
    assert q.forward_int(x).shape == (10, 50)
    np.testing.assert_array_equal(q.forward_int(x[:, 3]), acts[:, 3])  # one image = one column
    np.testing.assert_array_equal(quantize(net, d.x_train).forward_int(x), acts)  # deterministic


def test_integer_tracks_float_closely(trained):
    d, net, _ = trained
    q = quantize(net, d.x_train)
    with torch.no_grad():
        ref = net(d.float_test()[0]).numpy().T
    got = q.logits_float(d.x_test.T)
    assert np.abs(got - ref).max() < 0.02 * np.abs(ref).max()
    assert np.mean(got.argmax(0) == ref.argmax(0)) > 0.98
    float_acc = float(np.mean(ref.argmax(0) == d.y_test))
    assert abs(q.accuracy(d.x_test.T, d.y_test) - float_acc) <= 0.01
    assert q.accuracy(d.x_test.T, d.y_test) > 0.85  # random guess is 0.10


def test_weights_symmetric_and_pruned_zeros_kept(trained):
    _, net, masks = trained
    w = net.linears[1].weight.detach().double().numpy()
    wi, scale = quantize_weights(w, 8)
    assert np.abs(wi).max() == 127 and wi.min() >= -127
    assert scale == pytest.approx(np.abs(w).max() / 127)
    assert np.all(wi[masks["linears.1"].numpy() == 0] == 0)
    assert np.abs(wi * scale - w).max() <= scale / 2 + 1e-12


def test_shifts_are_the_smallest_that_fit_on_training_data(trained):
    d, net, _ = trained
    q = quantize(net, d.x_train)
    acts = q.activations(d.x_train.T)
    hi = (1 << 15) - 1
    assert any(l.shift > 0 for l in q.layers)
    for l, x in zip(q.layers, acts[:-1]):
        acc = l.weight @ x
        peak = np.maximum(acc, 0).max() if l.relu else np.abs(acc).max()
        assert (peak + (1 << l.shift >> 1)) >> l.shift <= hi  # no saturation on training data
        if l.shift:
            assert (peak + (1 << (l.shift - 1) >> 1)) >> (l.shift - 1) > hi  # one less would saturate
    assert choose_shift(np.array([hi]), True, 16) == 0
    assert choose_shift(np.array([hi + 1]), True, 16) == 1
    assert choose_shift(np.array([-5 * hi]), True, 16) == 0  # ReLU: negatives do not count
    assert choose_shift(np.array([-5 * hi]), False, 16) == 3


def test_narrow_activations_still_work(trained):
    d, net, _ = trained
    q8 = quantize(net, d.x_train, act_bits=8)
    assert all(l.arith.act_bits == 8 for l in q8.layers)
    assert np.abs(q8.forward_int(d.x_test.T)).max() <= 127
    assert q8.accuracy(d.x_test.T, d.y_test) > 0.8


def test_weight_sharing_codebook_feeds_the_eie_encoder(trained):
    d, net, _ = trained
    q = quantize(net, d.x_train)
    s = share_weights(q, d.x_train)
    for lq, ls in zip(q.layers, s.layers):
        assert ls.codebook.shape == (16,) and ls.codebook[0] == 0
        assert np.all((ls.indices == 0) == (lq.weight == 0))  # zeros stay zero, kept stay kept
        np.testing.assert_array_equal(ls.codebook[ls.indices], ls.weight)
        assert len(np.unique(ls.weight)) <= 16
        cfg = EIEConfig(arith=Arith(max_cols=ls.weight.shape[1]), max_rows=ls.weight.shape[0]).with_(codebook=True)
        m = eie.encode(ls.indices, cfg, codebook=ls.codebook)
        np.testing.assert_array_equal(eie.dense_weights(m), ls.weight)
        # The nearest codebook entry: no weight is further from its code than from any other.
        nz = lq.weight != 0
        dist = np.abs(lq.weight[nz][:, None] - ls.codebook[1:][None, :])
        assert np.all(np.abs(lq.weight[nz] - ls.weight[nz]) == dist.min(1))
    assert s.accuracy(d.x_test.T, d.y_test) >= q.accuracy(d.x_test.T, d.y_test) - 0.03


def test_kmeans_codebook_is_exact_for_few_values():
    w = np.array([[0, 5, -3, 5], [7, 0, 0, -3]])
    cb, idx = kmeans_codebook(w, 8)
    np.testing.assert_array_equal(cb[idx], w)
    assert cb[0] == 0 and sorted(cb[1:4]) == [-3, 5, 7]


def test_save_load_roundtrip(trained, tmp_path):
    d, net, _ = trained
    s = share_weights(quantize(net, d.x_train), d.x_train)
    s.save(tmp_path)
    back = QuantizedNet.load(tmp_path)
    np.testing.assert_array_equal(back.forward_int(d.x_test.T), s.forward_int(d.x_test.T))
    assert back.shifts == s.shifts
    np.testing.assert_array_equal(back.layers[0].indices, s.layers[0].indices)


def test_bad_inputs(trained):
    d, net, _ = trained
    q = quantize(net, d.x_train)
    with pytest.raises(SparseFlowError, match="input must hold integers"):
        q.forward_int(d.x_test.T + 0.5)
    with pytest.raises(SparseFlowError, match="shape mismatch"):
        q.forward_int(d.x_test[:, :32].T)
    with pytest.raises(SparseFlowError, match="integer inference covers model.nn.nets.MLP"):
        quantize(torch.nn.Sequential(torch.nn.Linear(64, 10, bias=False)), d.x_train)
