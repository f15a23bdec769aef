"""``sparseflow prune``: one-line errors (exit 2), and a small end-to-end run with its outputs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from model.hw.formats.nm import check_24
from model.nn.quant import QuantizedNet
from scripts.cli import main


@pytest.mark.parametrize("argv,msg", [
    (["--sparsity", "1.0"], "sparsity must be in [0, 1), not 1.0"),
    (["--sparsity", "-0.2"], "sparsity must be in [0, 1), not -0.2"),
    (["--granularity", "2:4", "--sparsity", "0.8"], "2:4 sparsity is exactly 0.5, not 0.8"),
    (["--method", "l2"], "argument --method: invalid choice: 'l2'"),
    (["--hidden", "30,16"], "layer input widths must be multiples of 4 (for 2:4), not 30"),
    (["--schedule", "dst", "--granularity", "channel"], "dst is unstructured only, not channel"),
    (["--load", "/nonexistent/ck.pt"], "checkpoint /nonexistent/ck.pt: no such file"),
])
def test_bad_options_are_one_line_errors(argv, msg, capsys, tmp_path):
    try:
        rc = main(["prune", "--out", str(tmp_path / "o"), *argv])
    except SystemExit as exc:  # argparse errors (bad choices) exit from the parser
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing written


def test_subprocess_error_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "scripts.cli", "prune", "--out", str(tmp_path),
                        "--sparsity", "nan"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr == "sparseflow: error: sparsity must be a number in [0, 1), not nan\n"
    assert p.stdout == ""


def test_end_to_end_24_run_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["prune", "--out", str(out), "--granularity", "2:4", "--method", "taylor", "--taylor", "batch",
               "--hidden", "32,16", "--epochs", "8", "--finetune-epochs", "3", "--json"])
    cap = capsys.readouterr()
    assert rc == 0 and cap.err == ""  # --json: no progress lines
    rep = json.loads(cap.out)
    assert rep == json.loads((out / "report.json").read_text())
    acc = rep["accuracy"]
    assert acc["float_dense"] > 0.8 and acc["float_pruned"] > 0.6 and acc["integer"] > 0.6
    assert abs(acc["integer"] - acc["float_pruned"]) <= 0.02
    assert rep["sparsity"]["total"] == 0.5 and len(rep["shifts"]) == 3
    assert rep["config"]["taylor"] == "batch" and rep["config"]["keep_rows"] is True
    masks = np.load(out / "masks.npz")
    q = QuantizedNet.load(out)
    for i, name in enumerate(("linears.0", "linears.1", "linears.2")):
        w = np.load(out / f"layer{i}.npy")
        check_24(w)
        assert np.all(w[masks[name] == 0] == 0)
        np.testing.assert_array_equal(q.layers[i].weight, w)
        assert (out / "shared" / f"layer{i}_codebook.npy").exists()
    from model.nn.data import load_digits
    d = load_digits()
    assert q.accuracy(d.x_test.T, d.y_test) == acc["integer"]

    # --load re-prunes the saved dense weights without training them again.
    rc = main(["prune", "--out", str(tmp_path / "again"), "--load", str(out / "model.pt"), "--sparsity", "0.6",
               "--finetune-epochs", "2"])
    cap = capsys.readouterr()
    assert rc == 0 and "dense: epoch" not in cap.err and "fine-tune: epoch" in cap.err
    rep2 = json.loads((tmp_path / "again" / "report.json").read_text())
    assert rep2["accuracy"]["float_dense"] == acc["float_dense"]
    assert rep2["config"]["hidden"] == [32, 16]


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["prune", "--out", str(tmp_path / "o"), "--load", str(bad)]) == 2
    assert capsys.readouterr().err == f"sparseflow: error: checkpoint {bad}: not a readable torch checkpoint\n"
