"""`sparseflow emit` / `sparseflow decode`: exact round trips, JSON reports, one-line errors."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.hw import images
from model.hw.config import config_from_dict
from scripts.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def weights(tmp_path):
    rng = np.random.default_rng(3)
    w = (rng.integers(-128, 128, (40, 24)) * (rng.random((40, 24)) < 0.15)).astype(np.int8)
    np.save(tmp_path / "w.npy", w)
    w24 = np.zeros((6, 16), dtype=np.int16)
    w24[:, 1::4] = rng.integers(-100, 100, (6, 4))
    w24[:, 2::4] = 7
    np.save(tmp_path / "w24.npy", w24)
    return w, w24


@pytest.mark.parametrize("fmt, extra", [
    ("csc", []), ("csr", []), ("bsr", ["--block", "4x3"]), ("bsr", []),
    ("eie", ["--pes", "4", "--index-bits", "2"]), ("eie", []), ("2:4", []),
])
def test_emit_decode_round_trip(tmp_path, capsys, weights, fmt, extra):
    w, w24 = weights
    src = tmp_path / ("w24.npy" if fmt == "2:4" else "w.npy")
    want = w24 if fmt == "2:4" else w
    rc, out, err = run(capsys, "emit", "--format", fmt, "--weights", src, "--out", tmp_path / "img", "--json", *extra)
    assert rc == 0 and err == ""
    rep = json.loads(out)
    assert rep["format"] == fmt and rep["shape"] == list(want.shape)
    assert rep["nnz"] == np.count_nonzero(want)
    assert rep["density"] == pytest.approx(np.count_nonzero(want) / want.size)
    man = json.loads((tmp_path / "img" / "manifest.json").read_text())
    assert rep["memory_bytes"] == {n: -(-f["words"] * f["width"] // 8) for n, f in man["files"].items()}
    bits = sum(f["words"] * f["width"] for f in man["files"].values())
    assert rep["compression_ratio"] == pytest.approx(want.size * 8 / bits)
    if fmt == "eie":
        n = 4 if extra else config_from_dict(man["config"]).n_pes
        assert len(rep["entries_per_pe"]) == n
        assert sum(rep["entries_per_pe"]) == rep["nnz"] + rep["padding_entries"]
    rc, out, err = run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "back.npy", "--json")
    assert rc == 0 and json.loads(out)["nnz"] == rep["nnz"]
    back = np.load(tmp_path / "back.npy")
    assert back.dtype == np.int8 and np.array_equal(back, want)


def test_emit_eie_codebook(tmp_path, capsys):
    idx = np.array([[0, 1, 0, 3], [2, 0, 0, 0], [0, 0, 3, 3]])
    np.save(tmp_path / "idx.npy", idx)
    np.save(tmp_path / "cb.npy", np.array([0, -7, 12, 100]))
    rc, out, _ = run(capsys, "emit", "--format", "eie", "--weights", tmp_path / "idx.npy", "--codebook",
                     tmp_path / "cb.npy", "--pes", "2", "--out", tmp_path / "img", "--json")
    assert rc == 0 and json.loads(out)["nnz"] == 5
    m, cfg = images.load_eie(tmp_path / "img")
    assert cfg.codebook and cfg.codebook_bits == 2 and m.codebook.tolist() == [0, -7, 12, 100]
    assert run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "b.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "b.npy"), idx)


def test_emit_sizes_eie_config_to_the_matrix(tmp_path, capsys, weights):
    run(capsys, "emit", "--format", "eie", "--weights", tmp_path / "w.npy", "--pes", "8", "--out", tmp_path / "i")
    m, cfg = images.load_eie(tmp_path / "i")
    assert cfg.n_pes == 8 and cfg.max_rows == 40 and cfg.max_cols == 24
    assert cfg.max_entries == m.entries_per_pe.max()


@pytest.mark.parametrize("setup, argv, msg", [
    (lambda d: np.save(d / "x.npy", np.array([[1.0, np.nan]])), ["--format", "csc"], "NaN"),
    (lambda d: np.save(d / "x.npy", np.array([[1.5, 0.0]])), ["--format", "eie"], "must hold integers"),
    (lambda d: np.save(d / "x.npy", np.array([[300, 0]])), ["--format", "csr"], "out of range for 8-bit"),
    (lambda d: np.save(d / "x.npy", np.array([[9, 0]])), ["--format", "csc", "--weight-bits", "4"], "out of range for 4-bit"),
    (lambda d: np.save(d / "x.npy", np.ones(4)), ["--format", "bsr"], "must be 2-D"),
    (lambda d: np.save(d / "x.npy", np.ones((2, 8))), ["--format", "2:4"], r"not 2:4: row 0, columns 0..3"),
    (lambda d: np.save(d / "x.npy", np.ones((2, 6))), ["--format", "2:4"], "multiple of 4 columns"),
    (lambda d: (d / "x.npy").write_bytes(b"garbage"), ["--format", "csc"], "not a readable .npy file"),
    (lambda d: None, ["--format", "csc"], "no such file"),
    (lambda d: np.save(d / "x.npy", np.eye(2)), ["--format", "csc", "--pes", "4"], "--pes applies only to --format eie"),
    (lambda d: np.save(d / "x.npy", np.eye(2)), ["--format", "bsr", "--block", "4by4"], "block shape must look like"),
    (lambda d: np.save(d / "x.npy", np.eye(2)), ["--format", "eie", "--pes", "0"], "--pes must be in 1..256"),
    (lambda d: np.save(d / "x.npy", np.eye(2)), ["--format", "eie", "--codebook", "cb.npy"], "codebook cb.npy"),
    (lambda d: np.save(d / "x.npy", np.eye(2)), ["--format", "csc", "--weight-bits", "1"], "--weight-bits must be in 2..16"),
    (lambda d: np.save(d / "x.npy", np.eye(2)), ["--format", "foo"], "invalid choice: 'foo'"),
])
def test_emit_errors(tmp_path, capsys, setup, argv, msg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    try:
        rc, out, err = run(capsys, "emit", "--weights", "x.npy", "--out", "img", *argv)
    except SystemExit as exc:  # argparse errors exit directly
        rc, (out, err) = exc.code, capsys.readouterr()
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "error:" in err
    assert __import__("re").search(msg, err), err
    assert not (tmp_path / "img").exists()
    assert not any(p.name.startswith(".img") for p in tmp_path.iterdir())


def test_decode_errors(tmp_path, capsys, weights):
    run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "w.npy", "--out", tmp_path / "img")
    lines = (tmp_path / "img" / "data.hex").read_text().splitlines(keepends=True)
    (tmp_path / "img" / "data.hex").write_text("".join(lines[:-1]))
    rc, out, err = run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "w2.npy")
    assert rc == 2 and "data.hex:" in err and "truncated" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "w2.npy").exists()
    rc, _, err = run(capsys, "decode", tmp_path / "none", "--out", tmp_path / "w2.npy")
    assert rc == 2 and "no such image folder" in err


def test_no_traceback_from_the_command(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[np.nan]]))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "scripts.cli", "emit", "--format", "eie", "--weights",
                        str(tmp_path / "x.npy"), "--out", str(tmp_path / "img")],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == "sparseflow: error: weights contains NaN or infinity"
    assert not (tmp_path / "img").exists()


@settings(max_examples=15, deadline=None)
@given(fmt=st.sampled_from(["csc", "csr", "eie", "2:4", "bsr"]), rows=st.integers(0, 9), groups=st.integers(0, 4),
       dtype=st.sampled_from([np.int8, np.int16, np.int64, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_decode_of_emit_is_identity(fmt, rows, groups, dtype, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (rows, groups * 4)) * (rng.random((rows, groups * 4)) < 0.3)
    if fmt == "2:4":
        w.reshape(rows, groups, 4)[..., rng.permutation(4)[:2]] = 0
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        np.save(d / "w.npy", w.astype(dtype))
        assert main(["emit", "--format", fmt, "--weights", str(d / "w.npy"), "--out", str(d / "img")]) == 0
        assert main(["decode", str(d / "img"), "--out", str(d / "b.npy")]) == 0
        assert np.array_equal(np.load(d / "b.npy"), w)
