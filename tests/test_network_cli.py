"""``sparseflow compile`` / ``run``: bad input is one line ``sparseflow: error: ...``, exit 2, no DIR."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from scripts.cli import main

FAST = ["--epochs", "0", "--rounds", "1", "--calib", "16"]


def _export(model, path, shape):
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, *shape),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return path


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))


def _data(path, n_feat=16, classes=4, **over):
    rng = np.random.default_rng(0)
    d = {"x_train": rng.normal(size=(32, n_feat)).astype(np.float32), "y_train": rng.integers(0, classes, 32),
         "x_test": rng.normal(size=(8, n_feat)).astype(np.float32), "y_test": rng.integers(0, classes, 8)}
    d.update(over)
    np.savez(path, **{k: v for k, v in d.items() if v is not None})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    t = tmp_path_factory.mktemp("cli")
    f = {"good": _export(_mlp(), t / "mlp.onnx", (16,)), "data": _data(t / "data.npz")}
    f["tanh"] = _export(nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 4)), t / "tanh.onnx", (16,))
    bad = _mlp()
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    f["nan_model"] = _export(bad, t / "nan.onnx", (16,))
    f["corrupt"] = t / "corrupt.onnx"
    f["corrupt"].write_bytes(b"\x08\x07this is not a model" * 10)
    f["corrupt_data"] = t / "corrupt.npz"
    f["corrupt_data"].write_bytes(b"PK\x03\x04 broken")
    f["wrong_shape"] = _data(t / "d12.npz", n_feat=12)
    f["missing"] = _data(t / "dmiss.npz", y_test=None)
    x = np.zeros((8, 16), np.float32)
    x[3, 2] = np.nan
    f["nan_data"] = _data(t / "dnan.npz", x_test=x)
    f["labels"] = _data(t / "dlab.npz", y_train=np.full(32, 7))
    return f


CASES = [
    ("tanh", "data", [], "Tanh"),
    ("good", "wrong_shape", [], "shape"),
    ("good", "missing", [], "y_test"),
    ("good", "nan_data", [], "non-finite"),
    ("nan_model", "data", [], "non-finite"),
    ("good", "labels", [], "label 7"),
    ("corrupt", "data", [], ""),
    ("good", "corrupt_data", [], "not a readable .npz"),
    ("good", "data", ["--eie-entries", "1"], "--pes"),
    ("good", "data", ["--sparsity", "1.5"], "sparsity"),
    ("good", "data", ["--engine", "2:4"], "granularity 2:4"),
]


@pytest.mark.parametrize("model,data,extra,msg", CASES, ids=[f"{m}-{d}-{' '.join(e)}" for m, d, e, _ in CASES])
def test_compile_bad_input_one_line(files, tmp_path, capsys, model, data, extra, msg):
    out = tmp_path / "out"
    rc = main(["compile", "--model", str(files[model]), "--data", str(files[data]), "--out", str(out), *FAST, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    last = err[-1]
    assert last.startswith("sparseflow: error: ") and msg in last, err
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no half-written folder or temporary left


def test_compile_and_run_cli(files, tmp_path, capsys):
    out = tmp_path / "net"
    assert main(["compile", "--model", str(files["good"]), "--data", str(files["data"]), "--out", str(out),
                 "--sparsity", "0.5", "--pes", "4", "--lanes", "2", *FAST]) == 0
    assert (out / "compiled.json").is_file() and (out / "network.npz").is_file()
    capsys.readouterr()
    assert main(["run", str(out), "--data", str(files["data"]), "--limit", "3", "--compare", "2"]) == 0
    o = capsys.readouterr().out
    assert "mismatches 0" in o and "speed-up" in o
    # refusing a foreign folder; running a folder that is not compiled; data without the test arrays
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    assert main(["compile", "--model", str(files["good"]), "--data", str(files["data"]), "--out",
                 str(tmp_path / "mine"), *FAST]) == 2
    assert main(["run", str(tmp_path / "mine"), "--data", str(files["data"])]) == 2
    assert main(["run", str(out), "--data", str(files["missing"])]) == 2
    assert main(["run", str(out), "--data", str(files["wrong_shape"])]) == 2
    err = capsys.readouterr().err
    assert all(l.startswith("sparseflow: error: ") for l in err.strip().splitlines() if "[" not in l[:2])


def test_subprocess_no_traceback(files, tmp_path):
    p = subprocess.run([sys.executable, "-m", "scripts.cli", "compile", "--model", str(files["corrupt"]), "--data",
                        str(files["data"]), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("sparseflow: error: ")


@pytest.mark.slow
def test_lenet300100_end_to_end(tmp_path, capsys):
    """The README's three commands on LeNet-300-100 (100 held-out images): 0 mismatches, within 1 point."""
    import json
    d, z, out = tmp_path / "mnist.npz", tmp_path / "zoo", tmp_path / "l300"
    assert main(["data", "mnist", "--out", str(d)]) == 0
    from model.nn.zoo import write_zoo
    write_zoo(z, ("lenet300100",), progress=False)
    capsys.readouterr()
    assert main(["compile", "--model", str(z / "lenet300100.onnx"), "--data", str(d), "--out", str(out),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["accuracy"]["integer_golden"] >= rep["accuracy"]["dense_float"] - 0.01
    assert main(["run", str(out), "--data", str(d), "--limit", "100", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["mismatches"] == 0 and r["speedup_vs_dense"] > 10


def test_run_exit_1_on_mismatch(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "net"
    assert main(["compile", "--model", str(files["good"]), "--data", str(files["data"]), "--out", str(out),
                 "--sparsity", "0.5", "--pes", "4", "--lanes", "2", *FAST]) == 0
    import verif.netrun as nr
    real = nr.run_layer

    def flipped(*a, **kw):  # an RTL that gets one output wrong
        y, c = real(*a, **kw)
        y = y.copy()
        y[0, 0] += 1
        return y, c
    monkeypatch.setattr(nr, "run_layer", flipped)
    capsys.readouterr()
    assert main(["run", str(out), "--data", str(files["data"]), "--limit", "2", "--compare", "0"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
