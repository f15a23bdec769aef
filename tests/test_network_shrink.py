"""Channel pruning that removes channels: the compiled matrices shrink, the function does not change,
and the smaller network is bit-exact on the RTL (dense engine) in fewer cycles."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from model.nn.graph import load_model
from model.nn.graph.ir import Conv2d, Flatten, Graph, Linear, ReLU, Reshape
from model.network.compile import CompileOptions, compile_network
from model.network.folder import engine_configs, report_md
from model.network.shrink import shrink_channels
from test_network_compile import FAST, ConvNet, _data, mlp

SEED = 3


def _zero_rows(g: Graph, rows: dict) -> Graph:
    g = copy.deepcopy(g)
    for n in g.nodes:
        if n.name in rows:
            n.weight[rows[n.name]] = 0
    return g


def _layers(g):
    return {n.name: n for n in g.nodes if not n.host}


def test_conv_net_shrinks_and_computes_the_same():
    g = load_model(ConvNet().eval(), (1, 8, 8))
    names = list(_layers(g))  # c1 (BN folded, padding 1), c2 (no padding), fc
    g0 = _zero_rows(g, {names[0]: [1, 3], names[1]: [0, 4]})
    assert all(_layers(g0)[n].bias is not None and np.all(_layers(g0)[n].bias != 0) for n in names[:2])
    s, rep = shrink_channels(g0)
    lay = _layers(s)
    assert lay[names[0]].weight.shape == (2, 1, 3, 3)
    assert lay[names[1]].weight.shape == (4, 2, 3, 3)
    assert lay[names[2]].weight.shape == (3, 4)
    assert [r["removed_rows"] for r in rep] == [2, 2, 0]
    assert [r["removed_inputs"] for r in rep] == [0, 2 * 9, 2]
    assert [r["before"] for r in rep] == [[4, 9], [6, 36], [3, 6]]
    # The removed channels output relu(bias) != 0: their contribution moved into the next bias.
    assert not np.allclose(lay[names[1]].bias, _layers(g0)[names[1]].bias[[1, 2, 3, 5]])
    x = _data((1, 8, 8), 3, seed=SEED)["x_test"]
    np.testing.assert_allclose(s(x), g0(x), atol=2e-5, err_msg=f"seed {SEED}")


def test_constant_under_zero_padding_stays_unless_zero():
    rng = np.random.default_rng(SEED)
    w1 = rng.normal(size=(4, 1, 3, 3)).astype(np.float32)
    w1[[0, 1]] = 0
    b1 = np.array([-1.0, 0.5, 0.2, 0.3], np.float32)  # channel 0: relu(-1) = 0, channel 1: 0.5
    nodes = [Conv2d("c1", w1, b1), ReLU("r1"), Conv2d("c2", rng.normal(size=(2, 4, 3, 3)).astype(np.float32),
                                                     None, padding=(1, 1, 1, 1)),
             Flatten("f"), Linear("fc", rng.normal(size=(3, 2 * 6 * 6)).astype(np.float32))]
    g = Graph((1, 8, 8), nodes)
    s, rep = shrink_channels(g)
    assert rep[0]["removed_rows"] == 1 and rep[0]["kept_zero_rows"] == 1  # only the zero constant goes
    assert _layers(s)["c2"].weight.shape == (2, 3, 3, 3) and _layers(s)["c2"].bias is None
    x = rng.normal(size=(5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(s(x), g(x), atol=2e-5)


def test_outputs_and_reshape_paths_are_kept():
    rng = np.random.default_rng(SEED)
    w1, w2 = rng.normal(size=(8, 6)).astype(np.float32), rng.normal(size=(4, 8)).astype(np.float32)
    w1[2] = 0
    w2[1] = 0  # a class row: the network's output, never removed
    g = Graph((6,), [Linear("a", w1), Reshape("rs", (2, 4)), Flatten("f"), Linear("b", w2)])
    s, rep = shrink_channels(g)
    assert [r["after"] for r in rep] == [[8, 6], [4, 8]] and [r["kept_zero_rows"] for r in rep] == [1, 1]


@pytest.fixture(scope="module")
def channel_mlp():
    data = _data((16,), 4)
    g = load_model(mlp().eval(), (16,))
    opts = dict(granularity="channel", sparsity=0.5, schedule="oneshot", **FAST)
    return (compile_network(g, data, CompileOptions(**opts)),
            compile_network(g, data, CompileOptions(shrink=False, **opts)), data)


def test_channel_compile_reports_shrunken_shapes(channel_mlp):
    c, full, data = channel_mlp
    assert [l.weight.shape for l in full.net.layers] == [(12, 16), (8, 12), (4, 8)]
    assert [l.weight.shape for l in c.net.layers] == [(6, 16), (4, 6), (4, 4)]
    assert c.net.meta["shrunk_from"] == {l.name: list(s) for l, s in
                                         zip(c.net.layers, [(12, 16), (8, 12), (4, 8)])}
    assert [l.get("shrunk_from") for l in c.report["layers"]] == [[12, 16], [8, 12], [4, 8]]
    assert "6x16 (was 12x16)" in report_md(c.report)
    # The same function: the integer networks agree on every held-out prediction's logits closely.
    assert c.report["accuracy"]["pruned_float"] == full.report["accuracy"]["pruned_float"]
    np.testing.assert_allclose(c.pruned(data["x_test"]), full.pruned(data["x_test"]), atol=2e-5)


def test_shrunken_channel_net_bit_exact_on_dense_rtl_in_fewer_cycles(channel_mlp):
    from verif.netrun import run_network
    c, full, data = channel_mlp
    # One build for both (sized from the unshrunk net; the same build as test_network_compile's MLP runs).
    cfgs = engine_configs(full.net, 4, 2, kinds={"eie", "dense"})
    cycles = {}
    for name, net in (("shrunk", c.net), ("full", full.net)):
        x = net.quantize_input(data["x_test"][:6])
        res = run_network(net, x, cfgs, engines=["dense"] * 3, sim="verilator", backend="native", progress=False)
        assert res["mismatches"] == 0, name
        assert np.array_equal(res["logits"], net.logits(x)), name
        cycles[name] = sum(l["cycles"]["dense"]["per_inference"] for l in res["layers"])
    assert cycles["shrunk"] < 0.75 * cycles["full"], cycles


@pytest.mark.slow
def test_channel_pruned_conv_net_shrinks_and_is_bit_exact_on_dense_rtl():
    from verif.netrun import run_network
    data = _data((1, 8, 8), 3)
    g = load_model(ConvNet().eval(), (1, 8, 8))
    c = compile_network(g, data, CompileOptions(granularity="channel", sparsity=0.5, schedule="oneshot",
                                                engine="dense", **FAST))
    assert [l.weight.shape for l in c.net.layers] == [(2, 9), (3, 18), (3, 3)]
    x = c.net.quantize_input(data["x_test"][:4])
    res = run_network(c.net, x, engine_configs(c.net, 4, 2), sim="verilator", backend="native", progress=False)
    assert res["mismatches"] == 0 and np.array_equal(res["logits"], c.net.logits(x))


def test_shrink_line_names_the_shrunken_layers():
    from scripts.cli import shrink_line
    layers = [{"name": "fc1", "matrix": [6, 16]}, {"name": "fc2", "matrix": [4, 6]}, {"name": "out", "matrix": [4, 4]}]
    line = shrink_line({"fc1": [12, 16], "fc2": [8, 12]}, layers)
    assert line.endswith(": fc1 12x16 -> 6x16, fc2 8x12 -> 4x6")
    assert shrink_line({}, layers) is None and shrink_line(None, layers) is None
