"""Your own network through the flow: compile (prune, quantize, engines) and run on the RTL.

Small nets keep this fast: a Linear+bias MLP and a Conv+BN+pool net on seeded synthetic data.
The integer golden model must equal the RTL bit for bit, layer by layer, on every engine and
both simulators (Verilator native; Icarus through cocotb on a couple of images).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from model.hw.engines import NAMES, get
from model.errors import SparseFlowError
from model.nn.graph import load_model
from model.network.compile import CompileOptions, compile_network, quantize_graph
from model.network.folder import engine_configs, load_compiled, write_compiled
from model.network.intnet import host_op
from model.network.torchnet import GraphNet

FAST = dict(epochs=1, finetune_epochs=1, rounds=1, progress=False, calib=64)


def _data(shape, classes, n_train=96, n_test=24, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, *shape)).astype(np.float32)
    def make(n):
        y = rng.integers(0, classes, n)
        x = centers[y] + 0.3 * rng.normal(size=(n, *shape)).astype(np.float32)
        return np.clip(x, -2, 2).astype(np.float32), y.astype(np.int64)
    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))


class ConvNet(nn.Module):
    """Conv (padding 1) + BN + ReLU + max-pool, conv + ReLU + avg-pool, flatten, linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, 3)
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
        x = nn.functional.avg_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def compiled_mlp():
    data = _data((16,), 4)
    g = load_model(mlp().eval(), (16,))
    return compile_network(g, data, CompileOptions(sparsity=0.5, **FAST)), data


@pytest.fixture(scope="module")
def compiled_conv():
    data = _data((1, 8, 8), 3)
    g = load_model(ConvNet().eval(), (1, 8, 8))
    return compile_network(g, data, CompileOptions(sparsity=0.5, **FAST)), data


def test_graphnet_matches_graph():
    data = _data((1, 8, 8), 3)
    g = load_model(ConvNet().eval(), (1, 8, 8))
    with torch.no_grad():
        y = GraphNet(g)(torch.from_numpy(data["x_test"])).numpy()
    assert np.allclose(y, g(data["x_test"]), atol=1e-5)
    g2 = GraphNet(g).to_graph()
    assert np.allclose(g2(data["x_test"]), g(data["x_test"]), atol=1e-6)


def test_integer_network_tracks_float(compiled_conv):
    c, data = compiled_conv
    net = c.net
    assert [l.kind for l in net.layers] == ["conv", "conv", "linear"]
    assert all(l.bias is not None for l in net.layers)
    f = c.pruned(data["x_test"])
    q = net.logits_float(data["x_test"])
    assert np.abs(f - q).max() < 0.05 * max(1.0, np.abs(f).max())
    # pruning kept the target (layer scope): half of each layer's weights are zero
    for l in net.layers:
        assert np.count_nonzero(l.weight) <= 0.5 * l.weight.size + 1


def test_host_ops_integer():
    from model.nn.graph.ir import AvgPool2d, MaxPool2d
    x = np.arange(-8, 8).reshape(1, 1, 4, 4)
    assert host_op(MaxPool2d("m", (2, 2)), x, 16).tolist() == [[[[-3, -1], [5, 7]]]]
    # average rounds half up: (-8-7-4-3)/4 = -5.5 -> -5
    assert host_op(AvgPool2d("a", (2, 2)), x, 16)[0, 0, 0, 0] == -5
    assert host_op(AvgPool2d("g", None), x, 16)[0, 0, 0, 0] == 0  # -0.5 -> 0


@pytest.mark.parametrize("engine", NAMES)
def test_conv_net_bit_exact_native(engine):
    data = _data((1, 8, 8), 3)
    g = load_model(ConvNet().eval(), (1, 8, 8))
    gran = "2:4" if get(engine).needs_24 else "unstructured"
    c = compile_network(g, data, CompileOptions(sparsity=0.5, granularity=gran, engine=engine, **FAST))
    from verif.netrun import run_network
    cfgs = engine_configs(c.net, 4, 2)
    x = c.net.quantize_input(data["x_test"][:6])
    res = run_network(c.net, x, cfgs, sim="verilator", backend="native", progress=False)
    assert res["mismatches"] == 0
    assert np.array_equal(res["logits"], c.net.logits(x))
    assert all(l["engine"] == engine for l in res["layers"])


def test_mlp_bias_bit_exact_native_and_compare(compiled_mlp):
    c, data = compiled_mlp
    from verif.netrun import run_network
    cfgs = engine_configs(c.net, 4, 2, kinds={"eie", "dense"})
    x = c.net.quantize_input(data["x_test"])
    res = run_network(c.net, x, cfgs, sim="verilator", backend="native", compare={"dense": 4}, progress=False)
    assert res["mismatches"] == 0
    assert np.array_equal(res["logits"], c.net.logits(x))
    assert all("dense" in l["cycles"] for l in res["layers"])


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_icarus_cocotb_bit_exact(which, compiled_mlp, compiled_conv):
    c, data = compiled_mlp if which == "mlp" else compiled_conv
    from verif.netrun import run_network
    cfgs = engine_configs(c.net, 4, 2)
    x = c.net.quantize_input(data["x_test"][:2 if which == "mlp" else 1])
    res = run_network(c.net, x, cfgs, sim="icarus", backend="cocotb", progress=False)
    assert res["mismatches"] == 0
    assert np.array_equal(res["logits"], c.net.logits(x))


def test_save_load_roundtrip(compiled_conv, tmp_path):
    c, data = compiled_conv
    out = write_compiled(c, tmp_path / "net")
    net, man = load_compiled(out)
    assert man["engines"] == [l.engine for l in c.net.layers]
    x = c.net.quantize_input(data["x_test"])
    assert np.array_equal(net.logits(x), c.net.logits(x))
    for im in man["images"]:
        assert (out / im["path"] / "manifest.json").is_file()
    assert json.loads((out / "report.json").read_text())["accuracy"]["integer_golden"] >= 0
    # rewriting a compiled folder replaces it; a foreign non-empty folder is refused
    write_compiled(c, out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    with pytest.raises(SparseFlowError, match="x.txt"):
        write_compiled(c, other)
    assert (other / "x.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net", "other"]  # no temporary left


def test_quantization_rules(compiled_mlp):
    c, data = compiled_mlp
    net = c.net
    assert net.weight_bits == 8 and net.act_bits == 16
    for l in net.layers:
        assert np.abs(l.weight).max() <= 127
        assert 0 <= l.shift < 32
    # a peak training input fits the int16 range and doubling the scale would not
    peak = np.abs(data["x_train"]).max()
    assert peak * 2 ** net.input_frac <= 32767 < peak * 2 ** (net.input_frac + 1)


def test_weight_sharing_codebook(compiled_mlp):
    c, data = compiled_mlp
    net = quantize_graph(c.pruned, data["x_train"], share_bits=4)
    for l in net.layers:
        assert len(np.unique(l.weight[l.weight != 0])) <= 15
        assert np.array_equal(l.codebook[l.indices], l.weight)


def test_python_api(tmp_path):
    import sparseflow
    data = _data((16,), 4)
    net = sparseflow.compile(mlp().eval(), data, sparsity=0.5, epochs=1, rounds=1, calib=64, pes=4, lanes=2)
    g = net.golden(data["x_test"][:5])
    r = net.run(data["x_test"][:5])
    assert np.array_equal(r["logits"], g)
    out = net.save(tmp_path / "api")
    assert np.array_equal(sparseflow.load(out).golden(data["x_test"][:5]), g)


def test_weight_sharing_runs_in_codebook_mode():
    import sparseflow
    data = _data((16,), 4)
    net = sparseflow.compile(mlp().eval(), data, sparsity=0.5, epochs=1, rounds=1, calib=64, share_bits=4,
                             engine="eie", pes=4, lanes=2)
    assert all(l.codebook is not None for l in net.int.layers)
    acc = net.report["accuracy"]  # held-out accuracy with and without sharing, both from the golden model
    plain = sparseflow.compile(mlp().eval(), data, sparsity=0.5, epochs=1, rounds=1, calib=64, engine="eie",
                               pes=4, lanes=2)
    assert acc["integer_golden_unshared"] == plain.report["accuracy"]["integer_golden"]
    for row, l in zip(net.report["layers"], net.int.layers):  # each layer at the cost model's index width
        assert row["index_bits"] == l.index_bits == row["costs"]["eie"]["index_bits"]
    r = net.run(data["x_test"][:4])
    assert r["mismatches"] == 0 and np.array_equal(r["logits"], net.golden(data["x_test"][:4]))
