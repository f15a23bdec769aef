"""``sparseflow spmv`` (EIE engine): one good run on Icarus, bad input -> one line, exit 2."""
import json

import numpy as np
import pytest

from model.hw.reference import matvec
from model.hw.config import Arith
from scripts.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, (10, 12)) * (rng.random((10, 12)) < 0.4)
    x = rng.integers(-500, 500, (12, 2))
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "X.npy", x)
    return tmp_path, w, x


def test_spmv_eie_runs_and_reports(files, capsys):
    tmp, w, x = files
    out = tmp / "Y.npy"
    rc = main(["spmv", "--weights", str(tmp / "W.npy"), "--input", str(tmp / "X.npy"), "--out", str(out),
               "--pes", "3", "--fifo-depth", "2", "--sim", "icarus", "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.load(out), matvec(w, x, Arith()))
    assert rep["cycles"] == rep["predicted"] and rep["pes"] == 3 and len(rep["utilisation"]) == 3
    assert rep["frontend_width"] == 8  # the scanning front end is the default
    assert all(0 < e <= 1 for e in rep["efficiency"])


@pytest.mark.parametrize("bad,message", [
    ("shape", "shape mismatch: weights are 10x12 but the input has 11 rows"),
    ("nan", "input contains NaN or infinity"),
    ("range", "input[0, 0] = 40000 is out of range for 16-bit signed (-32768..32767)"),
    ("missing", "no such file"),
    ("pes", "--pes must be >= 1, not 0"),
    ("width", "--frontend-width must be a power of two, not 3"),
])
def test_spmv_bad_input_is_one_line_exit_2(files, capsys, bad, message):
    tmp, w, x = files
    xin = tmp / "X.npy"
    args = []
    if bad == "shape":
        np.save(xin, x[:11])
    elif bad == "nan":
        np.save(xin, np.full((12, 1), np.nan))
    elif bad == "range":
        x = x.copy(); x[0, 0] = 40000; np.save(xin, x)
    elif bad == "missing":
        xin = tmp / "nope.npy"
    elif bad == "width":
        args = ["--frontend-width", "3"]
    else:
        args = ["--pes", "0"]
    rc = main(["spmv", "--weights", str(tmp / "W.npy"), "--input", str(xin), "--out", str(tmp / "Y.npy"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp / "Y.npy").exists()


def test_spmv_codebook_runs_bit_exact(files, capsys):
    """Weight sharing end to end: indices + codebook -> codebook-mode array, checked against W = cb[idx];
    the relative-index width is the cost model's (the default) and reported with bits per non-zero."""
    tmp, w, x = files
    rng = np.random.default_rng(5)
    idx = rng.integers(1, 8, w.shape) * (w != 0)
    cb = np.array([0, -128, -40, -3, 5, 77, 127, 1])
    np.save(tmp / "I.npy", idx)
    np.save(tmp / "CB.npy", cb)
    rc = main(["spmv", "--weights", str(tmp / "I.npy"), "--codebook", str(tmp / "CB.npy"), "--input",
               str(tmp / "X.npy"), "--out", str(tmp / "Y.npy"), "--pes", "2", "--sim", "icarus", "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    np.testing.assert_array_equal(np.load(tmp / "Y.npy"), matvec(cb[idx], x, Arith()))
    assert rep["codebook_bits"] == 3 and rep["cycles"] == rep["predicted"]
    from model.hw.costmodel import choose_index_bits
    widths = {int(b): c for b, c in rep["index_widths"].items()}
    assert rep["index_bits"] == choose_index_bits(widths) and rep["index_bits_chosen_by"] == "cost model"
    entries = widths[rep["index_bits"]]["entries"]
    assert rep["bits_per_nonzero"] == pytest.approx(entries * (rep["index_bits"] + 3) / np.count_nonzero(idx), abs=1e-3)


@pytest.mark.parametrize("book,weights,message", [
    ([3, 1, 2, 4], None, "codebook CB.npy: entry 0 must be 0"),
    ([0, 1, 2], None, "codebook CB.npy: must be 1-D with 2, 4, ... or 256 entries, got shape (3,)"),
    ([0, 300], None, "codebook CB.npy: codebook[1] = 300 is out of range for 8-bit signed"),
    ([0, 0.5], None, "codebook CB.npy: codebook must hold integers"),
    ([0, 1], "neg", "codebook indices must be in 0..1"),
])
def test_spmv_bad_codebook_is_one_line_exit_2(files, capsys, book, weights, message):
    tmp, w, x = files
    np.save(tmp / "CB.npy", np.array(book))
    np.save(tmp / "I.npy", -(w != 0).astype(int) if weights == "neg" else (w != 0).astype(int))
    rc = main(["spmv", "--weights", str(tmp / "I.npy"), "--codebook", str(tmp / "CB.npy"), "--input",
               str(tmp / "X.npy"), "--out", str(tmp / "Y.npy")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err.replace(str(tmp) + "/", ""), err
    assert not (tmp / "Y.npy").exists()
