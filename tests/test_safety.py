"""Never destroy a user's files (issue 17): safe outputs, exact input checks, one-line errors.

Every test here failed before the fix (the /dev/null-like cases use device nodes made in a
temporary folder, never the machine's own /dev/null).
"""
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from model.hw import images

from model import outputs
from model.errors import SparseFlowError
from scripts.cli import main

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def run(capsys, *argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors exit from the parser
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def cli(*argv, env=None, cwd=ROOT, stdout=subprocess.PIPE):
    """The command in a fresh interpreter: exit status, stdout, stderr."""
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.update(env or {})
    p = subprocess.run([PY, "-m", "scripts.cli", *map(str, argv)], stdout=stdout, stderr=subprocess.PIPE,
                       text=True, cwd=cwd, env=e)
    return p.returncode, p.stdout, p.stderr


def one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("sparseflow: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes, and every folder."""
    snap = {}
    for p in sorted(folder.rglob("*")):
        snap[str(p.relative_to(folder))] = p.read_bytes() if p.is_file() else "dir"
    return snap


@pytest.fixture
def user_folder(tmp_path):
    """A folder of a user's own, with a manifest.json of another project among its files."""
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    (d / "manifest.json").write_text('{"name": "my web app"}\n')
    (d / "notes.txt").write_text("do not lose me\n")
    (d / "sub" / "data.bin").write_bytes(b"\x00\x01")
    (d / "report.json").write_text("{}\n")
    return d


@pytest.fixture
def w(tmp_path):
    rng = np.random.default_rng(17)
    w = (rng.integers(-100, 100, (8, 12)) * (rng.random((8, 12)) < 0.4)).astype(np.int8)
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "X.npy", rng.integers(-50, 50, 12))
    return w


@pytest.fixture
def image(tmp_path, w, capsys):
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "img")
    assert rc == 0, err
    return tmp_path / "img"


# ----------------------------------------------------------------------------------------------
# A user's files in an output folder survive every command

def test_emit_never_replaces_a_folder_it_did_not_write(tmp_path, w, user_folder, capsys):
    before = snapshot(user_folder)
    rc, out, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", user_folder)
    one_line_error(rc, err, "which SparseFlow did not write; not replacing it")
    assert out == "" and snapshot(user_folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["W.npy", "X.npy", "mine"]  # no temp folder left


def test_emit_replaces_its_own_image_but_not_a_file_added_to_it(tmp_path, image, capsys):
    assert (image / outputs.MARKER).is_file()
    rc, _, err = run(capsys, "emit", "--format", "eie", "--weights", tmp_path / "W.npy", "--out", image)
    assert rc == 0, err
    assert images.load_image(image).format == "eie"
    (image / "my-notes.txt").write_text("mine")
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", image)
    one_line_error(rc, err, "my-notes.txt")
    assert (image / "my-notes.txt").read_text() == "mine" and images.load_image(image).format == "eie"


def test_legacy_image_without_marker_is_still_replaced(tmp_path, image, capsys):
    (image / outputs.MARKER).unlink()  # written by an older SparseFlow: the manifest lists every file
    rc, _, err = run(capsys, "emit", "--format", "2:4", "--weights", tmp_path / "W.npy", "--out", image)
    assert rc == 2 and "not 2:4" in err  # (the matrix is not 2:4) nothing changed
    rc, _, err = run(capsys, "emit", "--format", "csr", "--weights", tmp_path / "W.npy", "--out", image)
    assert rc == 0, err
    assert images.load_image(image).format == "csr"


def test_emit_out_dot_is_refused_and_leaves_nothing(tmp_path, w, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", ".")
    one_line_error(rc, err, "working folder")
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["W.npy", "X.npy", "work"]


def test_synth_never_deletes_a_folder_it_did_not_write(user_folder, capsys):
    before = snapshot(user_folder)
    rc, out, err = run(capsys, "synth", "--engine", "eie", "--target", "ice40-up5k", "--sim", "none",
                       "--out", user_folder)
    one_line_error(rc, err, "which SparseFlow did not write")
    assert snapshot(user_folder) == before
    from verif.synth import TARGETS, run_flow
    with pytest.raises(SparseFlowError, match="not replacing it"):  # the library call refuses too
        run_flow(None, TARGETS["ice40-up5k"], user_folder, 50.0)
    assert snapshot(user_folder) == before


def test_synth_claims_and_clears_only_its_own_folder(tmp_path):
    out = tmp_path / "s"
    with outputs.claim_dir(out, "synth", clear=True):
        (out / "top.v").write_text("x")
        (out / "logs").mkdir()
        (out / "logs" / "a.log").write_text("y")
    marker = json.loads((out / outputs.MARKER).read_text())
    assert marker["files"] == ["logs/a.log", "top.v"] and marker["command"] == "synth"
    with outputs.claim_dir(out, "synth", clear=True):  # a re-run starts from an empty folder
        assert sorted(p.name for p in out.iterdir()) == [outputs.MARKER]
    (out / "mine.txt").write_text("z")
    with pytest.raises(SparseFlowError, match="mine.txt"):
        with outputs.claim_dir(out, "synth", clear=True):
            pass
    assert (out / "mine.txt").read_text() == "z"


def test_prune_refuses_a_user_folder_before_training(user_folder, capsys):
    before = snapshot(user_folder)
    rc, _, err = run(capsys, "prune", "--epochs", "1", "--finetune-epochs", "1", "--hidden", "8", "--out", user_folder)
    one_line_error(rc, err, "which SparseFlow did not write")
    assert snapshot(user_folder) == before


def test_demo_refuses_a_user_folder(user_folder, capsys):
    before = snapshot(user_folder)
    rc, _, err = run(capsys, "demo", "--limit", "1", "--out", user_folder)
    one_line_error(rc, err, "which SparseFlow did not write")
    assert snapshot(user_folder) == before


# ----------------------------------------------------------------------------------------------
# Special files and symlinks are written through; modes follow the umask

def _chardev(path: Path, minor: int) -> Path:
    """A copy of /dev/null (minor 3) or /dev/full (minor 7) in a temporary folder."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except OSError as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


def test_character_device_out_stays_a_device(tmp_path, image, capsys):
    null = _chardev(tmp_path / "null", 3)
    rc, _, err = run(capsys, "decode", image, "--out", null)
    assert rc == 0, err
    assert stat.S_ISCHR(os.stat(null).st_mode) and os.stat(null).st_rdev == os.makedev(1, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".null")]  # no temp file left
    # Only now (the copy above stayed a device) the machine's own /dev/null, which must stay one.
    rc, _, err = run(capsys, "decode", image, "--out", "/dev/null")
    assert rc == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_rdev == os.makedev(1, 3)


def test_full_device_is_one_line_no_space(tmp_path, image, capsys):
    full = _chardev(tmp_path / "full", 7)
    rc, _, err = run(capsys, "decode", image, "--out", full)
    one_line_error(rc, err, "No space left on device")
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_fifo_out_stays_a_fifo(tmp_path, image, w, capsys):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    rc, _, err = run(capsys, "decode", image, "--out", fifo)
    reader.join(timeout=30)
    assert rc == 0, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not reader.is_alive()
    import io
    np.testing.assert_array_equal(np.load(io.BytesIO(got[0])), w)


def test_symlink_out_stays_a_symlink(tmp_path, image, w, capsys):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "W2.npy"
    target.write_bytes(b"old")
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    rc, _, err = run(capsys, "decode", image, "--out", link)
    assert rc == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(np.load(target), w)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_modes_follow_the_umask(tmp_path, w, mask, capsys):
    old = os.umask(mask)
    try:
        rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "img")
        assert rc == 0, err
        rc, _, err = run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "D.npy")
        assert rc == 0, err
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(tmp_path / "D.npy") == 0o666 & ~mask
    assert mode(tmp_path / "img") == 0o777 & ~mask
    assert {mode(p) for p in (tmp_path / "img").iterdir()} == {0o666 & ~mask}


def test_replacing_a_file_keeps_its_mode(tmp_path, image, capsys):
    out = tmp_path / "D.npy"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    rc, _, err = run(capsys, "decode", image, "--out", out)
    assert rc == 0, err
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


@pytest.fixture
def small_fs(tmp_path):
    """Mount a tiny tmpfs (as root); yields a function taking mount options."""
    mounts = []

    def mount(name, opts):
        d = tmp_path / name
        d.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if p.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        mounts.append(d)
        return d

    yield mount
    for d in mounts:
        subprocess.run(["umount", str(d)], capture_output=True)


def test_read_only_and_full_file_systems_are_one_line(tmp_path, image, w, small_fs, capsys):
    ro = small_fs("ro", "ro,size=64k")
    for argv in (["decode", image, "--out", ro / "W.npy"],
                 ["emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", ro / "img"]):
        rc, _, err = run(capsys, *argv)
        one_line_error(rc, err, "Read-only file system")
    full = small_fs("full", "size=16k")
    with open(full / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * (64 << 10))
        except OSError:
            pass
    big = np.zeros((64, 512), dtype=np.int8)
    big[0, 0] = 1
    np.save(tmp_path / "big.npy", big)
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "big.npy", "--out", full / "img")
    one_line_error(rc, err, "No space left on device")
    rc, _, err = run(capsys, "decode", image, "--out", full / "W.npy")
    one_line_error(rc, err, "No space left on device")
    assert sorted(p.name for p in full.iterdir()) == ["filler"]  # no partial output, no temp file


# ----------------------------------------------------------------------------------------------
# An output that is also an input is refused before any work, the input unchanged

def test_out_equal_to_an_input_is_refused(tmp_path, w, image, capsys):
    wp, xp = tmp_path / "W.npy", tmp_path / "X.npy"
    before = wp.read_bytes(), xp.read_bytes()
    (tmp_path / "hard.npy").hardlink_to(wp)
    (tmp_path / "soft.npy").symlink_to(xp)
    for out, what in ((wp, "--weights"), (xp, "--input"), (tmp_path / "hard.npy", "--weights"),
                      (tmp_path / "soft.npy", "--input")):
        rc, _, err = run(capsys, "spmv", "--weights", wp, "--input", xp, "--out", out, "--sim", "icarus")
        one_line_error(rc, err, f"is the input {what}")
    assert (wp.read_bytes(), xp.read_bytes()) == before
    man = (image / "manifest.json").read_bytes()
    rc, _, err = run(capsys, "decode", image, "--out", image / "manifest.json")
    one_line_error(rc, err, "inside the input image")
    assert (image / "manifest.json").read_bytes() == man
    np.save(image / "W.npy", w)  # (the image folder now holds a user file: emit must not replace it)
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", image / "W.npy", "--out", image)
    one_line_error(rc, err, "holds the input --weights")


def test_prune_out_holding_its_checkpoint_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with outputs.new_dir(out, "prune") as tmp:
        (tmp / "model.pt").write_bytes(b"checkpoint")
    rc, _, err = run(capsys, "prune", "--load", out / "model.pt", "--out", out)
    one_line_error(rc, err, "holds the input --load")
    assert (out / "model.pt").read_bytes() == b"checkpoint"


# ----------------------------------------------------------------------------------------------
# Wrong values are refused in their own type, before any conversion

@pytest.mark.parametrize("arr,shown", [
    (np.array([[2**63, 0, 0, 0]], dtype=np.uint64), "9223372036854775808"),
    (np.array([[2**64 - 1, 0, 0, 0]], dtype=np.uint64), "18446744073709551615"),
    (np.array([[200, 0, 0, 0]], dtype=np.uint8), "200"),
    (np.array([[1e30, 0, 0, 0]]), "1e+30"),
    (np.array([[-3e38, 0, 0, 0]], dtype=np.float32), "-3e+38"),
    (np.array([[2.0**63, 0, 0, 0]]), "9.22337e+18"),
])
def test_unsigned_huge_and_float_weights_give_the_range_error(tmp_path, arr, shown):
    np.save(tmp_path / "W.npy", arr)
    np.save(tmp_path / "X.npy", np.ones(4, dtype=np.int64))
    for argv in (["spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy", "--out",
                  tmp_path / "Y.npy", "--sim", "icarus"],
                 ["emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "img"]):
        rc, out, err = cli(*argv, env={"PYTHONWARNINGS": "error"})
        one_line_error(rc, err, f"weights[0, 0] = {shown} is out of range for 8-bit signed (-128..127)")
        assert "Warning" not in err and not (tmp_path / "Y.npy").exists() and not (tmp_path / "img").exists()


def test_unsigned_input_vector_is_checked_in_its_own_type(tmp_path, w, capsys):
    np.save(tmp_path / "X.npy", np.full(12, 2**63, dtype=np.uint64))
    rc, _, err = run(capsys, "spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy",
                     "--out", tmp_path / "Y.npy", "--sim", "icarus")
    one_line_error(rc, err, "input[0] = 9223372036854775808 is out of range for 16-bit signed")
    assert not (tmp_path / "Y.npy").exists()


def _edit(img: Path, fn, seal: bool):
    man = json.loads((img / "manifest.json").read_text())
    fn(man)
    if seal:
        images.seal_manifest(man)
    (img / "manifest.json").write_text(json.dumps(man))


def test_consistent_manifest_edit_is_caught_by_its_checksum(tmp_path, w, capsys):
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "img")
    assert rc == 0, err
    # rows + 1: still a valid CSC matrix (an empty last row), but not the matrix that was emitted
    _edit(tmp_path / "img", lambda m: m["shape"].__setitem__(0, m["shape"][0] + 1), seal=False)
    rc, _, err = run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "D.npy")
    one_line_error(rc, err, "manifest_sha256 checksum mismatch")
    assert not (tmp_path / "D.npy").exists()
    _edit(tmp_path / "img", lambda m: m.pop("manifest_sha256"), seal=False)
    rc, _, err = run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "D.npy")
    one_line_error(rc, err, "no manifest_sha256")


def test_huge_manifest_shape_is_one_line_not_memory_error(tmp_path, w, capsys):
    rc, _, err = run(capsys, "emit", "--format", "eie", "--pes", "2", "--weights", tmp_path / "W.npy",
                     "--out", tmp_path / "img")
    assert rc == 0, err

    def huge(m):
        m["shape"][0] = 1 << 40
        m["config"]["max_rows"] = 1 << 40
    _edit(tmp_path / "img", huge, seal=True)  # a hostile but self-consistent manifest
    rc, _, err = run(capsys, "decode", tmp_path / "img", "--out", tmp_path / "D.npy")
    one_line_error(rc, err, "too large")


@pytest.mark.parametrize("engine,opt", [("2:4", ["--pes", "4"]), ("dense", ["--fifo-depth", "2"]),
                                        ("2:4", ["--index-bits", "3"]), ("eie", ["--lanes", "4"])])
def test_spmv_refuses_options_of_another_engine(tmp_path, w, engine, opt, capsys):
    rc, _, err = run(capsys, "spmv", "--engine", engine, "--weights", tmp_path / "W.npy", "--input",
                     tmp_path / "X.npy", "--out", tmp_path / "Y.npy", "--sim", "icarus", *opt)
    one_line_error(rc, err, f"{opt[0]} does not apply to --engine {engine}")
    assert not (tmp_path / "Y.npy").exists()


def test_prune_empty_hidden_is_an_error(tmp_path, capsys):
    rc, _, err = run(capsys, "prune", "--hidden", "", "--epochs", "1", "--finetune-epochs", "1", "--out", tmp_path / "o")
    one_line_error(rc, err, "at least one hidden layer is needed")
    assert not (tmp_path / "o").exists()


def test_channel_pruning_that_empties_a_layer_warns(tmp_path):
    p = subprocess.run([PY, "-m", "scripts.cli", "prune", "--granularity", "channel", "--sparsity", "0.95",
                        "--hidden", "8", "--epochs", "1", "--finetune-epochs", "1", "--seed", "0",
                        "--out", tmp_path / "o", "--json"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["sparsity"]["linears.0"] == 1.0
    assert "sparseflow: warning: pruning removed every weight of layer linears.0" in p.stderr
    assert rep["warnings"] and "linears.0" in rep["warnings"][0]


# ----------------------------------------------------------------------------------------------
# Tracebacks and exit statuses

def test_argparse_errors_use_the_documented_prefix(capsys):
    rc, _, err = run(capsys, "spmv", "--engine", "tpu", "--weights", "W", "--input", "X", "--out", "Y")
    one_line_error(rc, err, "invalid choice: 'tpu'", "sparseflow spmv --help")


def test_errors_name_the_options_the_user_typed(tmp_path, capsys):
    np.save(tmp_path / "W.npy", np.zeros((1, 1 << 17), dtype=np.int8))
    np.save(tmp_path / "X.npy", np.zeros(1 << 17, dtype=np.int8))
    rc, _, err = run(capsys, "spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy", "--out",
                     tmp_path / "Y.npy", "--weight-bits", "16", "--act-bits", "32", "--sim", "icarus")
    one_line_error(rc, err, "--weight-bits", "--act-bits")
    assert "acc_bits" not in err and "65..64" not in err
    rc, _, err = run(capsys, "spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy", "--out",
                     tmp_path / "Y.npy", "--act-bits", "40", "--sim", "icarus")
    one_line_error(rc, err, "--act-bits must be in 2..32, not 40")
    rc, _, err = run(capsys, "emit", "--format", "eie", "--pes", "300", "--weights", tmp_path / "W.npy",
                     "--out", tmp_path / "img")
    one_line_error(rc, err, "--pes must be in 1..256, not 300")
    for argv, msg in ((["--engine", "eie", "--pes", "300"], "--pes must be in 1..256, not 300"),
                      (["--engine", "2:4", "--lanes", "999"], "--lanes must be in 1..256, not 999"),
                      (["--engine", "eie", "--density", "2"], "--density must be in (0, 1], not 2.0")):
        rc, _, err = run(capsys, "synth", *argv, "--target", "ice40-up5k", "--sim", "none", "--out", tmp_path / "s")
        one_line_error(rc, err, msg)
        assert not (tmp_path / "s").exists()


def test_text_file_named_npy_and_pickles(tmp_path, capsys):
    (tmp_path / "W.npy").write_text("1 2 3\n4 5 6\n")
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "img")
    one_line_error(rc, err, "no NumPy header")
    assert "allow_pickle" not in err
    np.save(tmp_path / "O.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    rc, _, err = run(capsys, "emit", "--format", "csc", "--weights", tmp_path / "O.npy", "--out", tmp_path / "img")
    one_line_error(rc, err, "holds Python objects")
    assert "allow_pickle" not in err


def test_pickled_checkpoint_is_one_line_without_torch_warnings(tmp_path):
    import pickle
    import collections
    (tmp_path / "ck.pt").write_bytes(pickle.dumps(collections.Counter(a=1)))
    rc, out, err = cli("prune", "--load", tmp_path / "ck.pt", "--out", tmp_path / "o")
    one_line_error(rc, err, "not a readable torch checkpoint")


def test_broken_pipe_is_one_line_exit_2(tmp_path, w):
    r, wfd = os.pipe()
    os.close(r)  # the reader (e.g. `head`) has already gone
    try:
        rc, _, err = cli("emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "img",
                         "--json", stdout=wfd)
    finally:
        os.close(wfd)
    one_line_error(rc, err, "broken pipe")
    assert images.load_image(tmp_path / "img").format == "csc"  # the output itself was written


def test_unwritable_build_folder_is_one_line(tmp_path, w):
    ro = tmp_path / "ro"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro.mkdir() or ro)],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        rc, _, err = cli("spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy",
                         "--out", tmp_path / "Y.npy", "--sim", "icarus", env={"SPARSEFLOW_BUILD": str(ro / "b")})
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)
    one_line_error(rc, err, "cannot be written", "SPARSEFLOW_BUILD")
    assert not (tmp_path / "Y.npy").exists()


def test_missing_iverilog_is_one_line(tmp_path, w):
    rc, _, err = cli("spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy",
                     "--out", tmp_path / "Y.npy", "--sim", "icarus", env={"PATH": str(tmp_path)})
    one_line_error(rc, err, "iverilog", "--sim verilator")
    assert not (tmp_path / "Y.npy").exists()


def test_damaged_build_cache_is_rebuilt(tmp_path, monkeypatch):
    from verif import runner
    from verif.smoke import SmokeAdder
    monkeypatch.setattr(runner, "BUILD_ROOT", tmp_path / "build")
    runner.simulate(SmokeAdder(8), toplevel="smoke_adder", test_module="verif.tb_smoke", sim="icarus")
    (build,) = (tmp_path / "build" / "sim").glob("smoke_adder-icarus-*/")
    assert (build / ".built").exists()
    (build / "sim.vvp").unlink()  # the marker stays, the simulator binary is gone
    runner.simulate(SmokeAdder(8), toplevel="smoke_adder", test_module="verif.tb_smoke", sim="icarus")
    assert (build / "sim.vvp").exists()


def test_old_run_folders_are_cleaned(tmp_path, monkeypatch):
    from verif import runner
    runs = tmp_path / "runs"
    now = __import__("time").time()
    for i in range(20):
        d = runs / f"r{i:02d}"
        d.mkdir(parents=True)
        age = 3600 + i * 10 if i < 15 else 5  # r15..r19 are recent
        os.utime(d, (now - age, now - age))
    import fcntl
    held = open(runs / "r14" / ".lock", "w")  # r14 (old) is still running: its lock is held
    fcntl.flock(held, fcntl.LOCK_EX)
    os.utime(runs / "r14", (now - 9999, now - 9999))
    try:
        runner._clean_runs(runs)
    finally:
        held.close()
    left = sorted(p.name for p in runs.iterdir())
    # the newest KEEP_RUNS by time (r15..r19 recent, then r00..r02 the youngest old ones) and the locked one
    assert left == ["r00", "r01", "r02", "r14", "r15", "r16", "r17", "r18", "r19"]


def test_every_error_path_is_one_line_exit_2_without_partial_output(tmp_path, w, image, capsys):
    cases = [
        ["decode", tmp_path / "nope", "--out", tmp_path / "o.npy"],
        ["decode", image, "--out", tmp_path / "no" / "o.npy"],
        ["decode", image, "--out", tmp_path],
        ["emit", "--format", "csc", "--weights", tmp_path / "W.npy", "--out", tmp_path / "W.npy"],
        ["emit", "--format", "2:4", "--weights", tmp_path / "W.npy", "--out", tmp_path / "o"],
        ["spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "W.npy", "--out", tmp_path / "o.npy"],
        ["spmv", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy", "--out", tmp_path / "no" / "y.npy"],
        ["spmv", "--engine", "2:4", "--lanes", "0", "--weights", tmp_path / "W.npy", "--input", tmp_path / "X.npy",
         "--out", tmp_path / "o.npy"],
        ["synth", "--engine", "2:4", "--pes", "4", "--target", "ice40-up5k"],
        ["prune", "--sparsity", "2", "--out", tmp_path / "o"],
        ["emit", "--format", "csc"],
    ]
    before = snapshot(tmp_path)
    for argv in cases:
        rc, out, err = run(capsys, *argv)
        one_line_error(rc, err)
        assert out == "", argv
        assert snapshot(tmp_path) == before, argv


def test_waves_json_stdout_is_json_and_env_waves_work_for_24(tmp_path, capsys):
    rng = np.random.default_rng(5)
    w24 = np.zeros((4, 8), dtype=np.int8)
    w24[:, 0::4] = rng.integers(-9, 9, (4, 2))
    np.save(tmp_path / "W24.npy", w24)
    np.save(tmp_path / "X.npy", rng.integers(-9, 9, 8))
    rc, out, err = run(capsys, "spmv", "--engine", "2:4", "--weights", tmp_path / "W24.npy", "--input",
                       tmp_path / "X.npy", "--out", tmp_path / "Y.npy", "--sim", "icarus", "--waves", "--json")
    assert rc == 0, err
    rep = json.loads(out)  # nothing printed before the JSON
    assert (Path(rep["run_dir"]) / "dump.fst").is_file()
    os.environ["SPARSEFLOW_WAVES"] = "1"
    try:
        rc, out, err = run(capsys, "spmv", "--engine", "dense", "--weights", tmp_path / "W24.npy", "--input",
                           tmp_path / "X.npy", "--out", tmp_path / "Y.npy", "--sim", "icarus", "--json")
    finally:
        del os.environ["SPARSEFLOW_WAVES"]
    assert rc == 0, err
    assert (Path(json.loads(out)["run_dir"]) / "dump.fst").is_file()


def test_help_says_fst():
    rc, out, _ = cli("spmv", "--help")
    assert rc == 0 and "VCD" not in out and "FST" in out.upper()


def test_spmv_shows_progress_on_a_terminal_and_keeps_stdout_json(tmp_path, w):
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([PY, "-m", "scripts.cli", "spmv", "--weights", str(tmp_path / "W.npy"), "--input",
                          str(tmp_path / "X.npy"), "--out", str(tmp_path / "Y.npy"), "--sim", "icarus", "--json"],
                         stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    os.close(slave)
    out = p.stdout.read()
    rc = p.wait()
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    assert rc == 0, err
    assert json.loads(out)["matches_golden"] is True
    assert b"sparseflow: simulating eie_array on icarus" in err.replace(b"\r", b"")


def test_prune_output_of_an_older_version_is_recognised(tmp_path, capsys):
    old = tmp_path / "p"
    old.mkdir()
    (old / "layer0.npy").write_bytes(b"x")
    (old / "report.json").write_text(json.dumps({"files": ["layer0.npy", "report.json"]}))
    assert outputs.foreign_file(old, __import__("scripts.cmd_prune").cmd_prune._legacy_prune) is None
    (old / "mine.txt").write_text("keep")
    rc, _, err = run(capsys, "prune", "--out", old, "--epochs", "1")
    one_line_error(rc, err, "holds mine.txt")
