"""Every unsupported input is refused with one line naming the op and the node (all three front ends)."""
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from model.errors import SparseFlowError
from model.nn.graph import load_model

# torch 2.13 deprecates torch.jit.trace/script (still supported); the files they write are what we test
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")



def _refused(src, shape=None, *must):
    with pytest.raises(SparseFlowError) as e:
        load_model(src, shape)
    msg = str(e.value)
    assert "\n" not in msg and msg.strip() == msg
    for m in must:
        assert m in msg, msg
    return msg


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x) + x)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x, y):
        return self.fc(x) + y


class Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return F.gelu(self.fc(x))


class BatchChange(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x):
        return self.fc(x.view(-1, 6))


class DataDependent(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


IMG = (2, 6, 6)
TORCH_CASES = [
    ("sigmoid", lambda: nn.Sequential(nn.Linear(4, 2), nn.Sigmoid()), (4,), ("Sigmoid node '1'", "not supported")),
    ("gelu", lambda: Gelu(), (4,), ("gelu node 'gelu'", "not supported")),
    ("groups", lambda: nn.Conv2d(2, 4, 3, groups=2), IMG, ("Conv2d node '0'", "groups=2")),
    ("dilation", lambda: nn.Sequential(nn.Conv2d(2, 4, 3, dilation=2)), IMG, ("Conv2d node '0'", "dilation=(2, 2)")),
    ("residual", lambda: Res(), IMG, ("node 'conv'", "add", "residual")),
    ("second_input", lambda: TwoInputs(), (4,), ("2 inputs", "'x', 'y'")),
    ("ceil_mode", lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.MaxPool2d(2, ceil_mode=True)), IMG,
     ("MaxPool2d node '1'", "ceil_mode=True")),
    ("avg_ceil_mode", lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.AvgPool2d(2, ceil_mode=True)), IMG,
     ("AvgPool2d node '1'", "ceil_mode=True")),
    ("pool_dilation", lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.MaxPool2d(2, dilation=2)), IMG,
     ("MaxPool2d node '1'", "dilation=(2, 2)")),
    ("reflect_pad", lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")), IMG,
     ("Conv2d node '0'", "padding_mode='reflect'")),
    ("softmax_not_last", lambda: nn.Sequential(nn.Linear(4, 3), nn.Softmax(1), nn.Linear(3, 2)), (4,),
     ("Linear node '2'", "follows the softmax '1'")),
    ("bn_no_stats", lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False)), (4,),
     ("BatchNorm1d node '1'", "track_running_stats=False")),
    ("adaptive_2", lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.AdaptiveAvgPool2d(2)), IMG,
     ("AdaptiveAvgPool2d node '1'", "output_size=2")),
    ("flatten_batch", lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.Flatten(0)), IMG, ("Flatten node '1'", "start_dim=0")),
    ("view_changes_batch", lambda: BatchChange(), (12,), ("view node 'view'", "changes the batch dimension")),
    ("conv1d", lambda: nn.Sequential(nn.Conv1d(2, 2, 3)), (2, 8), ("Conv1d node '0'", "not supported")),
    ("leaky", lambda: nn.Sequential(nn.Linear(4, 2), nn.LeakyReLU()), (4,), ("LeakyReLU node '1'",)),
    ("data_dependent", lambda: DataDependent(), (4,), ("torch.fx could not trace DataDependent",)),
]


@pytest.mark.parametrize("case,factory,shape,must", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_module_refusals(case, factory, shape, must):
    _refused(factory().eval(), shape, *must)


def test_conv_module_needs_an_input_shape():
    _refused(nn.Sequential(nn.Conv2d(1, 2, 3)), None, "give the input shape")


@pytest.mark.parametrize("case,factory,shape,must", [c for c in TORCH_CASES if c[0] in
                                                     ("sigmoid", "groups", "dilation", "residual", "ceil_mode",
                                                      "softmax_not_last", "view_changes_batch")],
                         ids=lambda c: c if isinstance(c, str) else "")
def test_torchscript_refusals(case, factory, shape, must, tmp_path):
    m = factory().eval()
    x = torch.randn(2, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(m, x).save(str(tmp_path / "m.pt"))
    op = {"sigmoid": "aten::sigmoid", "groups": "groups=2", "dilation": "dilation=(2, 2)",
          "residual": "aten::add", "ceil_mode": "ceil_mode=True", "softmax_not_last": "follows the softmax",
          "view_changes_batch": "changes the batch dimension"}[case]
    _refused(tmp_path / "m.pt", shape, op, "node '")


def test_torch_save_pickles_are_refused_cleanly(tmp_path):
    m = nn.Sequential(nn.Linear(4, 2))
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    torch.save(m, tmp_path / "full.pt")
    torch.save(m, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    _refused(tmp_path / "sd.pt", None, "a state dict", "not a TorchScript file")
    for f in ("full.pt", "legacy.pt"):
        _refused(tmp_path / f, None, "pickled PyTorch object", "refused")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip" + bytes(range(256)))
    _refused(tmp_path / "junk.pt", None, "junk.pt")
    (tmp_path / "rand.pt").write_bytes(np.random.default_rng(0).bytes(3000))
    _refused(tmp_path / "rand.pt", None, "rand.pt")
    _refused(tmp_path / "missing.pt", None, "no such file")
    # the CLI: one line on stderr, exit 2, no torch warning, nothing on stdout
    for f in ("sd.pt", "full.pt"):
        p = subprocess.run([sys.executable, "-m", "scripts.cli", "inspect", "--model", str(tmp_path / f)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and p.stdout == ""
        assert p.stderr.startswith("sparseflow: error: ") and p.stderr.count("\n") == 1, p.stderr


# -- ONNX, built by hand (what exporters may write) ----------------------------------------------
def _model(nodes, inputs, inits=(), output=("y", []), opset=17):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    out = helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])
    g = helper.make_graph(nodes, "g", vi, [out], [numpy_helper.from_array(np.asarray(a, np.float32), n)
                                                 for n, a in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


_W = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
_K = np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32)
_KG = np.random.default_rng(1).standard_normal((4, 1, 3, 3)).astype(np.float32)
X4 = [("x", ["N", 4])]
XI = [("x", ["N", 2, 6, 6])]
ONNX_CASES = [
    ("transA", _model([helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transA=1)], [("x", [4, 5])],
                      [("W", _W.T)]), None, ("Gemm node 'fc'", "transA=1")),
    ("residual", _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
                         helper.make_node("Gemm", ["h", "W2"], ["h2"], name="fc2", transB=1),
                         helper.make_node("Add", ["h2", "h"], ["y"], name="skip")], X4,
                        [("W", np.eye(4)), ("W2", np.eye(4))]), None, ("feeds 2", "node 'fc2'")),
    ("two_inputs", _model([helper.make_node("Add", ["x", "z"], ["y"], name="add")], [("x", ["N", 4]), ("z", ["N", 4])]),
     None, ("2 inputs", "'x', 'z'")),
    ("group2", _model([helper.make_node("Conv", ["x", "K"], ["y"], name="conv", group=2)], XI, [("K", _KG)]),
     None, ("Conv node 'conv'", "group=2")),
    ("dilation", _model([helper.make_node("Conv", ["x", "K"], ["y"], name="conv", dilations=[2, 2])], XI, [("K", _K)]),
     None, ("Conv node 'conv'", "dilations=[2, 2]")),
    ("ceil_mode", _model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], ceil_mode=1)], XI),
     None, ("MaxPool node 'mp'", "ceil_mode=1")),
    ("pad_op", _model([helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode="reflect")], XI,
                      [("p", np.zeros(8))]), None, ("Pad node 'pad'", "not supported")),
    ("sigmoid", _model([helper.make_node("Sigmoid", ["x"], ["y"], name="act")], X4), None, ("Sigmoid node 'act'",)),
    ("flatten_axis2", _model([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2)], XI), None,
     ("Flatten node 'fl'", "axis=2")),
    ("reshape_batch", _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")], XI,
                             [("s", np.array([-1, 6]))]), None, ("Reshape node 'rs'", "batch")),
    ("no_shape", _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [("x", ["N", "C"])]), None,
     ("give the input shape",)),
    ("bn_training", _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
                            helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"], name="bn",
                                             training_mode=1)], X4,
                           [("W", _W), ("s", np.ones(3)), ("b", np.zeros(3)), ("m", np.zeros(3)), ("v", np.ones(3))]),
     None, ("BatchNormalization node 'bn'", "training_mode=1")),
]


@pytest.mark.parametrize("case,model,shape,must", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_refusals(case, model, shape, must, tmp_path):
    onnx.save(model, tmp_path / "m.onnx")
    _refused(tmp_path / "m.onnx", shape, *must)


def test_onnx_corrupt_and_wrong_files(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage\xff\xff\xff")
    _refused(tmp_path / "bad.onnx", None, "bad.onnx", "not a readable ONNX model")
    (tmp_path / "empty.onnx").write_bytes(b"")
    _refused(tmp_path / "empty.onnx", None, "empty.onnx")
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], X4)
    data = m.SerializeToString()
    (tmp_path / "trunc.onnx").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "trunc.onnx", None, "trunc.onnx")
    _refused(tmp_path / "none.onnx", None, "no such file")
    _refused(42, None, "cannot import a int")


def test_cli_refusal_is_one_line(tmp_path, capsys):
    from scripts.cli import main
    onnx.save(ONNX_CASES[3][1], tmp_path / "g.onnx")
    assert main(["inspect", "--model", str(tmp_path / "g.onnx")]) == 2
    err = capsys.readouterr().err
    assert err == "sparseflow: error: Conv node 'conv': group=2 (grouped convolution) is not supported (only 1)\n"
