"""Memory images: round trips for every format, hex encoding, and a loader that rejects corruption."""
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.hw import images
from model.hw.config import Arith, EIEConfig, Requant, Sparse24Config, config_from_dict, config_to_dict
from model.errors import SparseFlowError
from model.hw.formats import bsr, csc, eie, nm

SETTINGS = settings(max_examples=25, deadline=None)


def rand_matrix(rng, rows, cols, bits, density):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, (rows, cols))
    w[rng.random((rows, cols)) >= density] = 0
    return w


def make(fmt, w, bits=8, **kw):
    """(matrix, config) as the encoders produce them."""
    rows, cols = w.shape
    if fmt in ("csc", "csr"):
        return csc.encode(w, bits, fmt), Arith(weight_bits=bits)
    if fmt == "bsr":
        return bsr.encode(w, bits, kw.get("block", (2, 3))), Arith(weight_bits=bits)
    if fmt == "2:4":
        return nm.encode(w, bits), Sparse24Config(arith=Arith(weight_bits=bits, max_cols=max(4, cols)),
                                                  max_rows=max(1, rows))
    cfg = EIEConfig(n_pes=kw.get("n_pes", 3), index_bits=kw.get("index_bits", 2),
                    arith=Arith(weight_bits=bits, max_cols=max(1, cols)), max_rows=max(1, rows))
    return eie.encode(w, cfg), cfg


def same_matrix(a, b):
    assert type(a) is type(b) and tuple(a.shape) == tuple(b.shape)
    if isinstance(a, eie.EIEMatrix):
        assert a.n_pes == b.n_pes and np.array_equal(a.ptr, b.ptr)
        assert all(np.array_equal(x, y) for x, y in zip(a.values, b.values))
        assert all(np.array_equal(x, y) for x, y in zip(a.zs, b.zs))
        assert (a.codebook is None) == (b.codebook is None)
        if a.codebook is not None:
            assert np.array_equal(a.codebook, b.codebook)
    elif isinstance(a, nm.NMMatrix):
        assert np.array_equal(a.values, b.values) and np.array_equal(a.positions, b.positions)
    else:
        assert np.array_equal(a.data, b.data) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.indptr, b.indptr)


@st.composite
def image_cases(draw):
    fmt = draw(st.sampled_from(images.FORMATS))
    bits = draw(st.integers(2, 16))
    rows = draw(st.integers(0, 20))
    cols = draw(st.integers(0, 5)) * 4 if fmt == "2:4" else draw(st.integers(0, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rand_matrix(rng, rows, cols, bits, draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])))
    if fmt == "2:4":  # keep at most two per group
        g = w.reshape(rows, cols // 4, 4)
        g[..., rng.permutation(4)[:2]] = 0
    kw = {"n_pes": draw(st.integers(1, 5)), "index_bits": draw(st.integers(1, 3)),
          "block": (draw(st.integers(1, 3)), draw(st.integers(1, 3)))}
    return fmt, w, bits, kw


@SETTINGS
@given(case=image_cases())
def test_round_trip_every_format(case):
    fmt, w, bits, kw = case
    m, cfg = make(fmt, w, bits, **kw)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "img"
        man = images.write_image(out, m, cfg)
        img = images.load_image(out, expect=cfg)
        assert img.format == fmt and img.config == cfg and img.manifest == man
        same_matrix(img.matrix, m)
        assert np.array_equal(img.dense(), w)
        assert np.array_equal(images.decode_image(out), w)
        for name, f in man["files"].items():
            data = (out / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
            assert data.count(b"\n") == f["words"]
        assert sorted(p.name for p in Path(d).iterdir()) == ["img"]  # no temp folders left


def test_codebook_image(tmp_path):
    cfg = EIEConfig(n_pes=2, codebook=True, codebook_bits=2, max_rows=8, arith=Arith(max_cols=4))
    book = np.array([0, -128, 5, 127])
    w = np.array([[0, 3, 0, 1], [2, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    m = eie.encode(w, cfg, book)
    man = images.write_image(tmp_path / "i", m, cfg)
    assert man["codebook"] == book.tolist()
    assert (tmp_path / "i" / "codebook.hex").read_text() == "00\n80\n05\n7f\n"
    got, got_cfg = images.load_eie(tmp_path / "i", cfg)
    same_matrix(got, m)
    assert got_cfg == cfg
    assert np.array_equal(eie.dense_weights(got), book[w])


def test_hex_encoding_is_twos_complement_and_padded():
    assert images.hex_bytes([0, 1, -1, -128, 127], 8) == b"00\n01\nff\n80\n7f\n"
    assert images.hex_bytes([5, -1], 5) == b"05\n1f\n"
    assert images.hex_bytes([], 7) == b""
    words = images.parse_hex(b"1F\nff\n", 8, 2, "x.hex")
    assert words.tolist() == [31, 255]
    assert images.to_signed(words, 8).tolist() == [31, -1]


def test_eie_file_layout(tmp_path):
    w = np.array([[1, 0], [0, -2], [3, 0], [0, 0], [0, 4]])
    m, cfg = make("eie", w, n_pes=2, index_bits=2)
    man = images.write_image(tmp_path / "i", m, cfg)
    assert set(man["files"]) == {"pe0_entries.hex", "pe0_ptr.hex", "pe1_entries.hex", "pe1_ptr.hex"}
    assert cfg.entry_bits == 10
    # PE 0: (1, z0) (3, z0) | (4, z2); entry word = z << 8 | value
    assert (tmp_path / "i" / "pe0_entries.hex").read_text().split() == ["001", "003", "204"]
    assert (tmp_path / "i" / "pe0_ptr.hex").read_text().split() == ["000", "002", "003"]  # ptr_bits 11
    assert (tmp_path / "i" / "pe1_entries.hex").read_text().split() == ["0fe"]
    assert man["widths"] == {"entry": 10, "value": 8, "index": 2, "ptr": cfg.ptr_bits}
    assert man["files"]["pe0_ptr.hex"]["width"] == cfg.ptr_bits
    assert man["entries_per_pe"] == [3, 1] and man["n_pes"] == 2 and man["nnz"] == 4


def test_nm_file_layout(tmp_path):
    w = np.array([[0, 5, 0, -1, 0, 0, 0, 0]])
    m, cfg = make("2:4", w)
    images.write_image(tmp_path / "i", m, cfg)
    # group 0: v0=5 @1, v1=-1 @3 -> ff05, meta 1 | 3<<2 = d; group 1: empty -> 0000, meta 0 | 1<<2 = 4
    assert (tmp_path / "i" / "values.hex").read_text().split() == ["ff05", "0000"]
    assert (tmp_path / "i" / "meta.hex").read_text().split() == ["d", "4"]


def test_config_dict_round_trip():
    for cfg in (Arith(), Arith(weight_bits=4, act_bits=8, max_cols=64, requant=Requant(3, False)),
                EIEConfig(n_pes=8, index_bits=3, codebook=True, arith=Arith(requant=Requant(2))),
                Sparse24Config(lanes=2, max_rows=16, arith=Arith(max_cols=32))):
        d = config_to_dict(cfg)
        assert config_from_dict(json.loads(json.dumps(d))) == cfg
    with pytest.raises(SparseFlowError, match="unknown EIEConfig field 'bogus'"):
        config_from_dict({"type": "EIEConfig", "bogus": 1})
    with pytest.raises(SparseFlowError, match="n_pes must be in 1..256"):
        config_from_dict({"type": "EIEConfig", "n_pes": 0})
    with pytest.raises(SparseFlowError, match="codebook must be true or false"):
        config_from_dict({"type": "EIEConfig", "codebook": 1})


# --- corruption: every problem is one SparseFlowError naming the file -------------------------

@pytest.fixture
def eie_image(tmp_path):
    rng = np.random.default_rng(7)
    w = rand_matrix(rng, 24, 6, 8, 0.2)
    m, cfg = make("eie", w, n_pes=2, index_bits=1)
    out = tmp_path / "img"
    images.write_image(out, m, cfg)
    return out, cfg


def edit_manifest(out, fn, seal=True):
    """Edit the manifest; ``seal`` recomputes its own checksum (to reach the deeper checks)."""
    man = json.loads((out / "manifest.json").read_text())
    fn(man)
    if seal:
        images.seal_manifest(man)
    (out / "manifest.json").write_text(json.dumps(man))


def rewrite(out, name, text, fix_checksum=True):
    (out / name).write_text(text)
    if fix_checksum:
        edit_manifest(out, lambda m: m["files"][name].update(sha256=hashlib.sha256(text.encode()).hexdigest()))


def lines(out, name):
    return (out / name).read_text().splitlines(keepends=True)


@pytest.mark.parametrize("corrupt, msg", [
    (lambda o: (o / "pe1_entries.hex").unlink(), r"pe1_entries.hex: missing"),
    (lambda o: (o / "manifest.json").unlink(), r"manifest.json: missing"),
    (lambda o: rewrite(o, "pe0_entries.hex", "".join(lines(o, "pe0_entries.hex")[:-1])),
     r"pe0_entries.hex: \d+ lines, the manifest says \d+ \(truncated\)"),
    (lambda o: rewrite(o, "pe0_ptr.hex", "".join(lines(o, "pe0_ptr.hex")) + "00\n"),
     r"pe0_ptr.hex: \d+ lines, the manifest says 7 \(extra lines\)"),
    (lambda o: rewrite(o, "pe1_entries.hex", "zzz\n" + "".join(lines(o, "pe1_entries.hex")[1:])),
     r"pe1_entries.hex: line 1 is not hex"),
    (lambda o: rewrite(o, "pe1_entries.hex", "7ff\n" + "".join(lines(o, "pe1_entries.hex")[1:])),
     r"pe1_entries.hex: line 1 = 7ff is wider than 9 bits"),
    (lambda o: rewrite(o, "pe1_entries.hex", "1\n" + "".join(lines(o, "pe1_entries.hex")[1:])),
     r"pe1_entries.hex: line 1 has 1 characters, expected 3 hex digits"),
    (lambda o: rewrite(o, "pe0_entries.hex", "001\n" + "".join(lines(o, "pe0_entries.hex")[1:]), False),
     r"pe0_entries.hex: sha256 checksum mismatch"),
    (lambda o: (o / "manifest.json").write_text("{not json"), r"manifest.json: unreadable"),
    (lambda o: edit_manifest(o, lambda m: m.update(format="coo")), r"unknown format 'coo'"),
    (lambda o: edit_manifest(o, lambda m: m.update(sparseflow_image=99)), r"image version 99"),
    (lambda o: edit_manifest(o, lambda m: m.update(n_pes=3)), r"n_pes is 3 but the configuration gives 2"),
    (lambda o: edit_manifest(o, lambda m: m.update(nnz=1)), r"nnz is 1 but"),
    (lambda o: edit_manifest(o, lambda m: m.update(padding_entries=0)), r"padding_entries is 0 but"),
    (lambda o: edit_manifest(o, lambda m: m.update(shape=[24])), r"'shape' must be a list of 2"),
    (lambda o: edit_manifest(o, lambda m: m["config"].update(index_bits=3)), r"widths is .* but the configuration"),
    (lambda o: edit_manifest(o, lambda m: m["config"].update(n_pes=0)), r"config: n_pes must be in 1..256"),
    (lambda o: edit_manifest(o, lambda m: m["files"]["pe0_ptr.hex"].update(width=5)),
     r"pe0_ptr.hex: the manifest says 5 bits wide"),
    (lambda o: edit_manifest(o, lambda m: m["files"]["pe0_ptr.hex"].update(words=6)),
     r"pe0_ptr.hex: the manifest says 6 words, the image's layout needs 7"),
    (lambda o: edit_manifest(o, lambda m: m["files"].pop("pe1_ptr.hex")), r"file pe1_ptr.hex is not listed"),
    (lambda o: edit_manifest(o, lambda m: m["files"].update({"x.hex": {}})), r"unexpected file x.hex"),
    (lambda o: rewrite(o, "pe0_ptr.hex", "".join(reversed(lines(o, "pe0_ptr.hex")))),
     r"pe0_ptr.hex: column pointers must start at 0"),
])
def test_loader_rejects_corruption(eie_image, corrupt, msg):
    out, cfg = eie_image
    corrupt(out)
    with pytest.raises(SparseFlowError, match=msg):
        images.load_image(out)


def test_loader_rejects_non_canonical_entries(eie_image):
    out, _ = eie_image
    # a padding entry (value 0, z 1) appended to a PE's last column changes nothing yet is not canonical
    text = "".join(lines(out, "pe0_entries.hex")) + "100\n"
    ptr = lines(out, "pe0_ptr.hex")
    ptr[-1] = f"{int(ptr[-1], 16) + 1:0{len(ptr[-1]) - 1}x}\n"
    rewrite(out, "pe0_entries.hex", text)
    rewrite(out, "pe0_ptr.hex", "".join(ptr))
    edit_manifest(out, lambda m: m["files"]["pe0_entries.hex"].update(words=m["files"]["pe0_entries.hex"]["words"] + 1))
    with pytest.raises(SparseFlowError, match="pe0_entries.hex: .*"):
        images.load_image(out)


def test_loader_checks_expected_config(eie_image):
    out, cfg = eie_image
    images.load_image(out, expect=cfg.with_(max_rows=64, max_entries=4096))  # bigger hardware is fine
    with pytest.raises(SparseFlowError, match="encoded with index_bits=1, the expected configuration has 2"):
        images.load_image(out, expect=cfg.with_(index_bits=2))
    with pytest.raises(SparseFlowError, match="encoded with n_pes=2"):
        images.load_image(out, expect=cfg.with_(n_pes=4))
    with pytest.raises(SparseFlowError, match="encoded with weight_bits=8"):
        images.load_image(out, expect=cfg.with_(arith=Arith(weight_bits=6, max_cols=6)))
    with pytest.raises(SparseFlowError, match=r"PE \d needs \d+ entries .* its memory holds 2"):
        images.load_image(out, expect=cfg.with_(max_entries=2))
    with pytest.raises(SparseFlowError, match="holds a eie image, expected 2:4"):
        images.load_nm(out)
    with pytest.raises(SparseFlowError, match="needs a EIEConfig"):
        images.load_image(out, expect=Arith())


@pytest.mark.parametrize("fmt", ["csc", "csr", "bsr", "2:4"])
def test_loader_rejects_corruption_other_formats(tmp_path, fmt):
    w = np.array([[0, 3, 0, -2], [1, 0, 0, 0], [0, 0, 0, 0]])
    m, cfg = make(fmt, w)
    out = tmp_path / "i"
    images.write_image(out, m, cfg)
    name = "meta.hex" if fmt == "2:4" else "indices.hex"
    good = (out / name).read_text()
    rewrite(out, name, good[:-1], fix_checksum=False)
    with pytest.raises(SparseFlowError, match=f"{name}: "):
        images.load_image(out)
    rewrite(out, name, good)  # checksum restored: loads again
    assert np.array_equal(images.decode_image(out), w)
    if fmt == "2:4":  # positions 1 and 1 in one group
        rewrite(out, "meta.hex", "5\n" + good[2:])
        with pytest.raises(SparseFlowError, match="meta.hex: 2:4 metadata of row 0, group 0 is invalid"):
            images.load_image(out)
    else:
        edit_manifest(out, lambda man: man.update(nnz=man["nnz"] + 1, blocks=man.get("blocks", 0) + 1))
        with pytest.raises(SparseFlowError):
            images.load_image(out)


def test_write_is_atomic(tmp_path, monkeypatch):
    w = np.eye(4, dtype=int)
    m, cfg = make("csc", w)
    out = tmp_path / "img"
    calls = []

    def failing(path, words, width, _real=images.write_hex):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return _real(path, words, width)

    monkeypatch.setattr(images, "write_hex", failing)
    with pytest.raises(SparseFlowError, match=r"img: cannot write \(disk full\)"):  # one line, not a traceback
        images.write_image(out, m, cfg)
    assert list(tmp_path.iterdir()) == []  # neither the image nor a temp folder
    monkeypatch.undo()
    images.write_image(out, m, cfg)
    m2, cfg2 = make("eie", w)
    images.write_image(out, m2, cfg2)  # replaces an image
    assert images.load_image(out).format == "eie"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img"]


def test_write_refuses_foreign_folder_and_bad_matrix(tmp_path):
    m, cfg = make("csc", np.eye(3, dtype=int))
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    with pytest.raises(SparseFlowError, match="holds notes.txt, which SparseFlow did not write; not replacing it"):
        images.write_image(tmp_path / "keep", m, cfg)
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"
    with pytest.raises(SparseFlowError, match="parent folder does not exist"):
        images.write_image(tmp_path / "no" / "img", m, cfg)
    with pytest.raises(SparseFlowError, match="needs a Arith"):
        images.write_image(tmp_path / "x", m, EIEConfig())
    big, ecfg = make("eie", np.ones((6, 2), dtype=int), n_pes=1)
    with pytest.raises(SparseFlowError, match="PE 0 needs 12 entries"):
        images.write_image(tmp_path / "x", big, ecfg.with_(max_entries=4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
