"""LeNet end to end: the MNIST subset, one trained LeNet through all three front ends, the CLI.

The same trained LeNet-5 (with BatchNorm and Dropout) imported from its ``nn.Module``
(torch.fx), its ONNX export (``torch.onnx.export(..., dynamo=False)``) and its TorchScript
file gives outputs equal within 1e-5 (max |difference| of the logits, relative to the largest
logit when that is above 1), equal to PyTorch within the same, and to onnxruntime.
"""
import json

import numpy as np
import pytest
import torch

from model.nn.graph import load_model
from model.nn.graph.from_onnx import verify_onnx
from model.nn.mnist import load_mnist
from model.nn.train import train
from model.nn.zoo import LeNet5, export, lenet300100
from scripts.cli import main

# torch 2.13 deprecates torch.jit.trace/script (still supported); the files they write are what we test
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


TOL = 1e-5


def _close(a, b):
    assert np.abs(a - b).max() <= TOL * max(1.0, np.abs(b).max()), np.abs(a - b).max()


def test_mnist_split_is_fixed_and_stratified():
    d = load_mnist()
    assert d["x_train"].shape == (4000, 1, 28, 28) and d["x_test"].shape == (1000, 1, 28, 28)
    assert d["x_train"].dtype == np.float32 and d["y_train"].dtype == np.int64
    assert 0.0 <= d["x_train"].min() and d["x_train"].max() <= 1.0
    assert np.bincount(d["y_train"]).tolist() == [400] * 10 and np.bincount(d["y_test"]).tolist() == [100] * 10
    # the split is fixed (seed 0): the same first labels on every machine
    assert d["y_test"][:12].tolist() == [6, 3, 0, 8, 8, 3, 0, 0, 7, 8, 5, 8]
    assert d["y_train"][:12].tolist() == [6, 0, 5, 4, 9, 9, 8, 3, 1, 2, 2, 0]
    # no test image is also a training image
    tr = {a.tobytes() for a in d["x_train"]}
    assert not any(a.tobytes() in tr for a in d["x_test"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = load_mnist()
    x, y = torch.from_numpy(np.array(d["x_train"][:2000])), torch.from_numpy(np.array(d["y_train"][:2000]))
    torch.manual_seed(0)
    m = LeNet5(bn=True)
    train(m, x, y, epochs=1, lr=2e-3, seed=0, progress=False)
    m.eval()
    folder = tmp_path_factory.mktemp("lenet")
    onnx_path, ts_path = export(m, folder, "lenet5bn")
    return m, onnx_path, ts_path


def test_one_lenet_three_front_ends(trained):
    m, onnx_path, ts_path = trained
    x = np.array(load_mnist()["x_test"][:100])
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    graphs = {"module": load_model(m, (1, 28, 28)), "onnx": load_model(onnx_path), "torchscript": load_model(ts_path)}
    outs = {k: g(x) for k, g in graphs.items()}
    for k, g in graphs.items():
        assert [n.op for n in g.nodes] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                                           "Linear", "ReLU", "Linear", "ReLU", "Linear"], k
        _close(outs[k], ref)
    _close(outs["onnx"], outs["module"])
    _close(outs["torchscript"], outs["module"])
    assert (outs["module"].argmax(1) == ref.argmax(1)).all()
    verify_onnx(onnx_path, graphs["onnx"], x=x[:8])
    # names come from the source model
    assert graphs["module"].nodes[0].name == "features.0" and graphs["torchscript"].nodes[0].name == "features.0"
    assert "features.0" in graphs["onnx"].nodes[0].name


def test_cli_data_zoo_inspect(tmp_path, capsys):
    data = tmp_path / "mnist.npz"
    assert main(["data", "mnist", "--out", str(data)]) == 0
    with np.load(data) as z:
        assert sorted(z.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert z["x_train"].shape == (4000, 1, 28, 28) and z["y_test"].shape == (1000,)
    zoo = tmp_path / "zoo"
    capsys.readouterr()
    assert main(["zoo", "lenet", "--out", str(zoo), "--epochs", "1", "--json"]) == 0
    cap = capsys.readouterr()
    rep = json.loads(cap.out)
    assert cap.err == ""
    assert rep == json.loads((zoo / "zoo.json").read_text())
    assert set(rep["nets"]) == {"lenet300100", "lenet5", "lenet5bn"}
    for name, r in rep["nets"].items():
        assert (zoo / f"{name}.onnx").is_file() and (zoo / f"{name}.pt").is_file()
        assert r["test_accuracy"] > 0.5, name
        assert max(r["max_abs_diff"].values()) < 1e-4
        # inspect on the test split: the float graph scores what the module scored
        y = tmp_path / f"{name}.npy"
        assert main(["inspect", "--model", str(zoo / f"{name}.pt"), "--input", str(data), "--out", str(y),
                     "--json"]) == 0
        ins = json.loads(capsys.readouterr().out)
        assert abs(ins["output"]["accuracy"] - r["test_accuracy"]) <= 0.002
        assert np.load(y).shape == (1000, 10)
    # the table: engines per layer, host ops
    assert main(["inspect", "--model", str(zoo / "lenet5.onnx")]) == 0
    out = capsys.readouterr().out
    assert "eie, 2:4, dense" in out and "host" in out and "requant (fused)" in out and "61,706 parameters" in out
    # an .npy input, batch first, written back as float32
    x = np.array(load_mnist()["x_test"][:5])
    np.save(tmp_path / "x.npy", x)
    assert main(["inspect", "--model", str(zoo / "lenet300100.onnx"), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "y.npy")]) == 0
    g = load_model(zoo / "lenet300100.onnx")
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), g(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("argv,msg", [
    (["inspect", "--model", "/nonexistent.onnx"], "/nonexistent.onnx: no such file"),
    (["inspect", "--model", "M", "--out", "y.npy"], "--out needs --input"),
    (["inspect", "--model", "M", "--input", "X", "--out", "y.npy"], "the input has shape (2, 3); the network takes (N, 1, 28, 28)"),
    (["inspect", "--model", "M", "--input-shape", "1,x"], "input shape must be comma-separated positive integers"),
    (["data", "mnist", "--out", "/nonexistent/dir/m.npz"], "the output's parent folder does not exist"),
    (["data", "mnist", "--out", "m.txt"], "must be a .npz file"),
    (["zoo", "lenet", "--out", "Z", "--epochs", "-1"], "epochs must be >= 0, not -1"),
])
def test_cli_errors_are_one_line(argv, msg, tmp_path, capsys):
    m = tmp_path / "m.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(lenet300100().eval(), (torch.zeros(1, 1, 28, 28),), str(m), dynamo=False)
    np.save(tmp_path / "x.npy", np.zeros((2, 3), np.float32))
    sub = {"M": str(m), "X": str(tmp_path / "x.npy"), "y.npy": str(tmp_path / "y.npy"), "Z": str(tmp_path / "z"),
           "m.txt": str(tmp_path / "m.txt")}
    rc = main([sub.get(a, a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and msg in err and "Traceback" not in err, err


def test_inspect_takes_the_input_shape_from_the_data(tmp_path, capsys):
    m = LeNet5().eval()
    torch.jit.trace(m, torch.zeros(1, 1, 28, 28)).save(str(tmp_path / "plain.pt"))  # no sparseflow.json
    x = np.array(load_mnist()["x_test"][:3])
    np.save(tmp_path / "x.npy", x)
    assert main(["inspect", "--model", str(tmp_path / "plain.pt")]) == 2
    assert "give the input shape" in capsys.readouterr().err
    assert main(["inspect", "--model", str(tmp_path / "plain.pt"), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "y.npy")]) == 0
    with torch.no_grad():
        _close(np.load(tmp_path / "y.npy"), m(torch.from_numpy(x)).numpy())

