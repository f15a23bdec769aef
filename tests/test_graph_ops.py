"""The graph IR and its front ends against PyTorch / onnxruntime, op by op (seeded random inputs).

Tolerances: the NumPy evaluator computes in float64, PyTorch in float32, so the float graph is
compared with ``max |graph - torch| <= 1e-5 * max(1, max |torch|)``; the three imports of
one module (torch.fx, TorchScript traced and scripted, ONNX) agree with each other within 1e-5
and the ONNX import with onnxruntime within ``1e-5 + 1e-4 * |value|`` (``verify_onnx``).
"""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from model.hw.engines import NAMES
from model.errors import SparseFlowError
from model.nn.graph import Graph, load_model
from model.nn.graph.from_onnx import verify_onnx
from model.nn.graph.ir import AvgPool2d, Conv2d, Linear, MaxPool2d, Scale, Softmax
from model.nn.graph.lower import conv_matrix, im2col

# torch 2.13 deprecates torch.jit.trace/script (still supported); the files they write are what we test
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


TOL = 1e-5


def _close(out, ref, tol=TOL):
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape
    err = np.abs(out - ref).max()
    assert err <= tol * max(1.0, np.abs(ref).max()), err


class Fn(nn.Module):
    """Wraps a function of x (so fx sees call_function / call_method nodes)."""

    def __init__(self, f, *mods):
        super().__init__()
        self.f = f
        self.m = nn.ModuleList(mods)

    def forward(self, x):
        return self.f(self, x)


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 2 - 1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                    m.bias.copy_(torch.rand(c, generator=g) * 2 - 1)
    return model


IMG = (3, 9, 8)
CASES = {
    "linear": (lambda: nn.Linear(12, 7), (12,)),
    "linear_nobias": (lambda: nn.Linear(12, 7, bias=False), (12,)),
    "mlp_relu_functional": (lambda: Fn(lambda s, x: s.m[1](torch.relu(s.m[0](x))), nn.Linear(10, 8), nn.Linear(8, 4)), (10,)),
    "conv3x3": (lambda: nn.Conv2d(3, 5, 3), IMG),
    "conv_k5_s2_p2": (lambda: nn.Conv2d(3, 4, 5, stride=2, padding=2), IMG),
    "conv_rect_k_s_p": (lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), bias=False), IMG),
    "conv_same_even_kernel": (lambda: nn.Conv2d(3, 2, 4, padding="same"), IMG),
    "conv_valid": (lambda: nn.Conv2d(3, 2, 2, padding="valid"), IMG),
    "relu_method": (lambda: Fn(lambda s, x: s.m[0](x).relu(), nn.Conv2d(3, 4, 3)), IMG),
    "relu_F": (lambda: Fn(lambda s, x: F.relu(s.m[0](x)), nn.Conv2d(3, 4, 3)), IMG),
    "maxpool2": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2)), IMG),
    "maxpool3_s2_p1": (lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.MaxPool2d(3, stride=2, padding=1)), IMG),
    "maxpool_F": (lambda: Fn(lambda s, x: F.max_pool2d(s.m[0](x), 2, 1), nn.Conv2d(3, 4, 3)), IMG),
    "avgpool2": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(2)), IMG),
    "avgpool3_p1_incl": (lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(3, 2, 1)), IMG),
    "avgpool3_p1_excl": (lambda: nn.Sequential(nn.Conv2d(3, 4, 1), nn.AvgPool2d(3, 2, 1, count_include_pad=False)), IMG),
    "avgpool_F": (lambda: Fn(lambda s, x: F.avg_pool2d(s.m[0](x), (2, 3)), nn.Conv2d(3, 4, 1)), IMG),
    "global_avgpool": (lambda: nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                             nn.Linear(6, 3)), IMG),
    "flatten_module": (lambda: nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 7 * 6, 5)), IMG),
    "torch_flatten": (lambda: Fn(lambda s, x: s.m[1](torch.flatten(s.m[0](x), 1)), nn.Conv2d(3, 2, 3),
                                 nn.Linear(84, 5)), IMG),
    "view_size0": (lambda: Fn(lambda s, x: s.m[1](s.m[0](x).view(x.size(0), -1)), nn.Conv2d(3, 2, 3),
                              nn.Linear(84, 5)), IMG),
    "reshape_shape0": (lambda: Fn(lambda s, x: s.m[1](s.m[0](x).reshape(x.shape[0], 84)), nn.Conv2d(3, 2, 3),
                                  nn.Linear(84, 5)), IMG),
    "reshape_back_to_image": (lambda: Fn(lambda s, x: s.m[1](s.m[0](x).view(-1, 4, 3, 3)), nn.Linear(12, 36),
                                         nn.Conv2d(4, 2, 2)), (12,)),
    "bn2d_folded": (lambda: _randomize_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())), IMG),
    "bn2d_nobias_conv_folded": (lambda: _randomize_bn(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False),
                                                                    nn.BatchNorm2d(4, eps=1e-3))), IMG),
    "bn1d_folded": (lambda: _randomize_bn(nn.Sequential(nn.Linear(10, 6), nn.BatchNorm1d(6), nn.ReLU(),
                                                        nn.Linear(6, 3))), (10,)),
    "bn_not_affine": (lambda: _randomize_bn(nn.Sequential(nn.Linear(10, 6), nn.BatchNorm1d(6, affine=False))), (10,)),
    "bn_after_relu_host_scale": (lambda: _randomize_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(),
                                                                     nn.BatchNorm2d(4))), IMG),
    "dropout_identity_dropped": (lambda: nn.Sequential(nn.Linear(10, 6), nn.Dropout(0.5), nn.Identity(), nn.ReLU(),
                                                       nn.AlphaDropout(0.1), nn.Linear(6, 3)), (10,)),
    "softmax_final": (lambda: nn.Sequential(nn.Linear(10, 4), nn.Softmax(dim=1)), (10,)),
    "log_softmax_F": (lambda: Fn(lambda s, x: F.log_softmax(s.m[0](x), dim=-1), nn.Linear(10, 4)), (10,)),
}


def _make(case):
    torch.manual_seed(sum(map(ord, case)))
    factory, shape = CASES[case]
    model = factory().eval()
    x = torch.from_numpy(np.random.default_rng(len(case)).standard_normal((3, *shape)).astype(np.float32))
    with torch.no_grad():
        ref = model(x).numpy()
    return model, shape, x, ref


@pytest.mark.parametrize("case", sorted(CASES))
def test_fx_graph_matches_torch(case):
    model, shape, x, ref = _make(case)
    g = load_model(model, shape)
    _close(g(x.numpy()), ref)
    if "folded" in case:
        assert not any(isinstance(n, Scale) for n in g.nodes)  # BatchNorm went into the layer
    if case == "bn_after_relu_host_scale":
        assert isinstance(g.nodes[-1], Scale) and g.placement(2) == "host"
    if case == "dropout_identity_dropped":
        assert [n.op for n in g.nodes] == ["Linear", "ReLU", "Linear"]
    if case in ("softmax_final", "log_softmax_F"):
        assert isinstance(g.nodes[-1], Softmax) and g.nodes[-1].log == (case == "log_softmax_F")
        assert (g(x.numpy()).argmax(1) == g(x.numpy(), upto=-1).argmax(1)).all()  # host op, argmax unchanged


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchscript_and_onnx_imports_agree(case, tmp_path):
    model, shape, x, ref = _make(case)
    g = load_model(model, shape)
    ours = g(x.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
        scripted = None if isinstance(model, Fn) else torch.jit.script(model)  # lambdas do not script
        torch.onnx.export(model, (x,), str(tmp_path / "m.onnx"), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})
    for sm, kind in ((traced, "traced"), (scripted, "scripted")):
        if sm is None:
            continue
        sm.save(str(tmp_path / f"{kind}.pt"))
        gs = load_model(tmp_path / f"{kind}.pt", shape)
        assert [n.op for n in gs.nodes] == [n.op for n in g.nodes], kind
        _close(gs(x.numpy()), ours)
    go = load_model(tmp_path / "m.onnx")  # checked against onnxruntime inside (verify_onnx)
    _close(go(x.numpy()), ours)
    verify_onnx(tmp_path / "m.onnx", go, x=x.numpy())


class Functional(nn.Module):
    """Functional ops in a module that TorchScript can script (if statements, size queries)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2, 2)
        x = F.avg_pool2d(x, kernel_size=(1, 1), stride=1)
        x = F.dropout(x.reshape(x.size(0), -1), 0.2, self.training)
        return torch.log_softmax(self.fc(x), 1)


def test_scripted_functional_module(tmp_path):
    torch.manual_seed(5)
    m = _randomize_bn(Functional()).eval()
    x = torch.randn(2, 3, 9, 8)
    ref = m(x).detach().numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated (still supported in 2.13)
        torch.jit.script(m).save(str(tmp_path / "f.pt"))
    for src in (m, tmp_path / "f.pt"):
        g = load_model(src, IMG)
        assert [n.op for n in g.nodes] == ["Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "Flatten", "Linear", "Softmax"]
        assert g.nodes[0].name == "conv" and g.nodes[5].name == "fc"
        _close(g(x.numpy()), ref)


def test_bn_folding_is_exact():
    torch.manual_seed(1)
    m = _randomize_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Flatten(),
                                    nn.Linear(8 * 9 * 8, 5), nn.BatchNorm1d(5)), seed=3).eval()
    g = load_model(m, IMG)
    conv, lin = g.nodes[0], g.nodes[2]
    bn2, bn1 = m[1], m[4]
    for layer, bn, src in ((conv, bn2, m[0]), (lin, bn1, m[3])):
        s = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
        w = src.weight.detach().double().numpy()
        want_w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        want_b = (src.bias.detach().double().numpy() - bn.running_mean.double().numpy()) * s + \
            bn.bias.detach().double().numpy()
        np.testing.assert_allclose(layer.weight, want_w, rtol=0, atol=1e-5)
        np.testing.assert_allclose(layer.bias, want_b, rtol=0, atol=1e-5)
    x = torch.randn(4, *IMG)
    _close(g(x.numpy()), m(x).detach().numpy())


def test_conv_lowering_is_matrix_times_im2col():
    rng = np.random.default_rng(0)
    conv = Conv2d("c", rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4), stride=(2, 1), padding=(1, 0, 2, 1))
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col(x, conv.kernel, conv.stride, conv.padding)
    c, oh, ow = conv.out_shape(x.shape[1:])
    assert cols.shape == (2, 3 * 3 * 2, oh * ow) and conv_matrix(conv).shape == (4, 18)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))
    ref = torch.nn.functional.conv2d(torch.from_numpy(xp), torch.from_numpy(conv.weight.astype(np.float64)),
                                     torch.from_numpy(conv.bias.astype(np.float64)), stride=(2, 1)).numpy()
    for p in (0, 5, oh * ow - 1):  # each output position is one matrix x vector
        np.testing.assert_allclose(conv_matrix(conv) @ cols[0, :, p] + conv.bias, ref[0, :, p // ow, p % ow],
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(Graph((3, 7, 6), [conv])(x), ref, rtol=1e-9, atol=1e-9)


def test_graph_save_load_roundtrip(tmp_path):
    model, shape, x, ref = _make("global_avgpool")
    rng = np.random.default_rng(2)
    g = Graph((3, 9, 8), [Conv2d("c", rng.standard_normal((4, 3, 3, 3)), None, 1, (1, 1, 0, 0)),
                          Scale("s", rng.random(4), rng.random(4)),
                          MaxPool2d("p", 3, 2, 1), AvgPool2d("a", 2, 1, (0, 1, 1, 0), count_include_pad=False),
                          AvgPool2d("g", None), load_model(model, shape).nodes[3],
                          Linear("l", rng.standard_normal((5, 4)), rng.standard_normal(5)), Softmax("sm", log=True)],
              name="rt", source="test")
    g.save(tmp_path)
    g2 = load_model(tmp_path)
    assert g2.to_dict() == g.to_dict() and g2.table() == g.table()
    xi = rng.standard_normal((2, 3, 9, 8))
    np.testing.assert_array_equal(g2(xi), g(xi))


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((2, 3)), "the input has shape (2, 3); the network takes (N, 12)"),
    (np.full((1, 12), np.nan), "non-finite"),
    (np.zeros((0, 12)), "batch of 0"),
    (np.array([["a"] * 12]), "must be numbers"),
])
def test_evaluator_rejects_bad_inputs(bad, msg):
    g = load_model(nn.Linear(12, 3), (12,))
    with pytest.raises(SparseFlowError) as e:
        g(bad)
    assert msg in str(e.value)


def test_evaluator_accepts_one_sample_and_traces():
    g = load_model(nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 2)), (12,))
    x = np.random.default_rng(0).standard_normal(12)
    outs = g(x, trace=True)
    assert [o.shape for o in outs] == [(1, 12), (1, 6), (1, 6), (1, 2)]
    assert (outs[2] >= 0).all()
    rows = g.table()
    assert [r["placement"] for r in rows] == ["engine", "fused", "engine"]
    assert rows[0]["engines"] == list(NAMES)
