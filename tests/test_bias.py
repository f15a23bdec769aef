"""Hardware bias (issue 12): ``y = requant(W @ x + b)`` with a per-row bias loaded beside the
weights. The configuration rule, the reference against numpy, the requantizer in Amaranth's
simulator, the three engines on Icarus and Verilator against the reference (random and corner
cases, random idle/back-pressure, EIE counters against the cycle model), memory images and the
command line, and one-line errors for bad biases. Without ``bias_bits`` nothing changes (the
Verilog holds no bias logic)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from amaranth.sim import Simulator

from model.hw import images
from model.hw.config import Arith, EIEConfig, Requant, Sparse24Config
from model.errors import SparseFlowError
from model.hw.formats import csc, eie, nm
from model.hw.reference import layer, matvec
from rtl.common.requant import Requantizer
from verif.runner import SIMULATORS, lint, to_verilog

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

BB = 28  # = weight 8 + act 16 + ceil(log2 12): a bias as wide as any sum of products
EIE_CFG = EIEConfig(n_pes=2, index_bits=2, fifo_depth=2, max_rows=12, max_entries=128,
                    arith=Arith(max_cols=12, requant=Requant(), bias_bits=BB))
LANE_CFG = Sparse24Config(lanes=3, max_rows=12, arith=Arith(max_cols=12, requant=Requant(), bias_bits=BB))


def numpy_layer(w, x, b, shift, relu, act_bits=16):
    """The contract written out independently of model.hw.reference (Python integers)."""
    acc = np.asarray(w, dtype=object) @ np.asarray(x, dtype=object) + np.asarray(b, dtype=object)[:, None]
    out = np.empty(acc.shape, dtype=np.int64)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    for idx, v in np.ndenumerate(acc):
        v = max(v, 0) if relu else v
        v = (v + (1 << (shift - 1))) >> shift if shift else v
        out[idx] = min(max(v, lo), hi)
    return out


# ---- the configuration rule and the reference ----------------------------------------------------

def test_accumulator_grows_one_bit_with_a_bias():
    assert Arith(max_cols=12).acc_bits == 28 and Arith(max_cols=12).bias_bits is None
    assert Arith(max_cols=12, bias_bits=28).acc_bits == 29
    assert Arith(max_cols=12, bias_bits=12).acc_bits == 29  # max(sum, bias) + 1
    assert Arith(max_cols=12, bias_bits=40).acc_bits == 41
    with pytest.raises(SparseFlowError, match=r"^acc_bits must be in 29\.\.64, not 28$"):
        Arith(max_cols=12, bias_bits=8, acc_bits=28)
    with pytest.raises(SparseFlowError, match=r"^bias_bits must be in 2\.\.63, not 1$"):
        Arith(bias_bits=1)
    with pytest.raises(SparseFlowError, match=r"^bias_bits must be an integer"):
        Arith(bias_bits=8.0)
    assert Arith(bias_bits=5).bias_range == (-16, 15)


def test_reference_adds_the_bias_before_relu_and_shift():
    rng = np.random.default_rng(1)
    for shift, relu in [(0, False), (0, True), (7, True), (13, False), (31, True)]:
        a = Arith(max_cols=12, requant=Requant(shift, relu), bias_bits=BB)
        w = rng.integers(-128, 128, (9, 12)) * (rng.random((9, 12)) < 0.5)
        x = rng.integers(-32768, 32768, (12, 4))
        b = rng.integers(-(1 << (BB - 1)), 1 << (BB - 1), 9)
        assert np.array_equal(layer(w, x, a, b), numpy_layer(w, x, b, shift, relu))
        assert np.array_equal(layer(w, x[:, 0], a, b), numpy_layer(w, x[:, :1], b, shift, relu)[:, 0])
        assert np.array_equal(matvec(w, x, a, b), w @ x + b[:, None])
        assert np.array_equal(layer(w, x, a), layer(w, x, a, np.zeros(9, int)))  # None = zeros
    # The worst case fits the accumulator (matvec asserts the sizing rule).
    a = Arith(max_cols=12, bias_bits=BB)
    lo, hi = a.bias_range
    assert matvec(np.full((1, 12), -128), np.full(12, -32768), a, [hi])[0] == 12 * 2 ** 22 + hi
    assert matvec(np.full((1, 12), 127), np.full(12, -32768), a, [lo])[0] == -12 * 127 * 32768 + lo


@pytest.mark.parametrize("bad, msg", [
    (np.ones(3), r"^bias has 3 entries but the weights have 4 rows$"),
    (np.ones((4, 1)), r"^bias must be 1-D, got shape \(4, 1\)$"),
    ([0, 0, 1 << 27, 0], r"^bias\[2\] = 134217728 is out of range for 28-bit signed"),
    ([0, 0.5, 0, 0], r"^bias must hold integers; bias\[1\] = 0\.5$"),
    ([0, np.nan, 0, 0], r"^bias contains NaN or infinity$"),
    (["a", "b", "c", "d"], r"^bias must hold integers, not <U1$"),
])
def test_bad_bias_is_one_line_error_everywhere(bad, msg):
    w, x = np.ones((4, 8), dtype=int), np.ones(8, dtype=int)
    a = Arith(max_cols=12, bias_bits=BB)
    with pytest.raises(SparseFlowError, match=msg):
        layer(w, x, a, bad)
    from verif.spmv_eie import load_words, run_spmv
    with pytest.raises(SparseFlowError, match=msg):
        run_spmv(w, x, EIE_CFG, sim="icarus", bias=bad)
    with pytest.raises(SparseFlowError, match=msg):
        load_words(eie.encode(w, EIE_CFG), EIE_CFG, None, bad)
    from verif.spmv_sparse24 import run_spmv as run24
    w24 = np.tile([1, 0, 0, 2], (4, 2))
    for dense in (False, True):
        with pytest.raises(SparseFlowError, match=msg):
            run24(w24, x, LANE_CFG, sim="icarus", dense=dense, bias=bad)
    with pytest.raises(SparseFlowError, match=msg):
        images.write_image("/nonexistent/never", csc.encode(w, 8, "csc"), a, bias=bad)


def test_bias_without_bias_hardware_is_an_error():
    msg = r"^a bias was given but the configuration has none \(set Arith\.bias_bits\)$"
    w, x = np.ones((2, 4), dtype=int), np.ones(4, dtype=int)
    with pytest.raises(SparseFlowError, match=msg):
        layer(w, x, Arith(max_cols=4), [1, 2])
    from verif.spmv_eie import run_spmv
    with pytest.raises(SparseFlowError, match=msg):
        run_spmv(w, x, EIE_CFG.with_(arith=Arith(max_cols=12)), sim="icarus", bias=[1, 2])
    from verif.spmv_sparse24 import make_engine
    eng = make_engine(LANE_CFG.with_(arith=Arith(max_cols=12)))
    with pytest.raises(SparseFlowError, match=msg):
        eng.load_program(nm.encode(np.zeros((2, 4), int), 8), None, [1, 2])


# ---- RTL: the requantizer, the Verilog ------------------------------------------------------------

@pytest.mark.parametrize("requant", [None, Requant()])
def test_requantizer_adds_the_bias_first(requant):
    arith = Arith(weight_bits=4, act_bits=6, max_cols=4, requant=requant, bias_bits=9)
    dut = Requantizer(arith)
    rng = np.random.default_rng(2)
    # acc inputs are sums of products (sum_bits wide); the bias spans its whole range.
    slo, shi = -(1 << (arith.sum_bits - 1)), (1 << (arith.sum_bits - 1)) - 1
    blo, bhi = arith.bias_range
    cases = [(a, b) for a in (slo, shi, 0, -1, 1) for b in (blo, bhi, 0, -1, 1)]
    cases += [(int(a), int(b)) for a, b in zip(rng.integers(slo, shi + 1, 300), rng.integers(blo, bhi + 1, 300))]
    cases += [(a, -a + d) for a in (-40, 0, 37) for d in (-2, -1, 0, 1, 2)]  # the ReLU edge

    async def bench(ctx):
        for acc, bias in cases:
            for shift, relu in [(0, 0), (0, 1), (1, 1), (3, 0), (31, 1)]:
                ctx.set(dut.acc, acc)
                ctx.set(dut.bias, bias)
                ctx.set(dut.shift, shift)
                ctx.set(dut.relu, relu)
                if requant is None:
                    want = acc + bias
                else:
                    want = int(numpy_layer([[1]], [[acc]], [bias], shift, relu, act_bits=6)[0, 0])
                assert ctx.get(dut.out) == want, (acc, bias, shift, relu)
                if requant is None:
                    break

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def _engines(bias_bits):
    from rtl.common.config import build_config
    from rtl.dense.engine import DenseEngine
    from rtl.eie.array import EIEArray
    from rtl.sparse24.engine import Sparse24Engine
    a = Arith(max_cols=12, requant=Requant(), bias_bits=bias_bits)
    return {"eie": EIEArray(build_config(EIE_CFG.with_(arith=a))),
            "2:4": Sparse24Engine(build_config(LANE_CFG.with_(arith=a))),
            "dense": DenseEngine(build_config(LANE_CFG.with_(arith=a)))}


def test_bias_off_builds_no_bias_logic_and_bias_on_lints_clean():
    for name, eng in _engines(None).items():
        assert "bias" not in to_verilog(eng, "top"), name
    for name, eng in _engines(BB).items():
        assert "bias" in to_verilog(eng, "top"), name
    # The same Verilator -Wall waivers as the engines' own lint tests (justified there).
    waivers = ["-Wno-DECLFILENAME", "-Wno-PROCASSINIT", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
               "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE"]
    for name, eng in _engines(BB).items():
        lint(eng, toplevel="bias_top", waivers=waivers)


def test_requant_values_still_share_one_verilog_with_a_bias():
    from rtl.common.config import build_config
    from rtl.eie.array import EIEArray
    from verif.spmv_sparse24 import make_engine

    def a(shift, relu):
        return Arith(max_cols=12, requant=Requant(shift, relu), bias_bits=BB)
    assert (to_verilog(EIEArray(build_config(EIE_CFG.with_(arith=a(3, True)))), "e")
            == to_verilog(EIEArray(build_config(EIE_CFG.with_(arith=a(9, False)))), "e"))
    assert (to_verilog(make_engine(LANE_CFG.with_(arith=a(3, True))), "e")
            == to_verilog(make_engine(LANE_CFG.with_(arith=a(9, False))), "e"))


# ---- RTL on both simulators -----------------------------------------------------------------------

def corner_cases(rng, rows, cols, w_of):
    """(weights, x, bias, requant) corners: bias at its range limits (acc near its own), both
    saturations, the ReLU edge (W @ x + b = -1, 0, 1), negative biases, zero weights."""
    lo, hi = EIE_CFG.arith.bias_range
    alo, ahi = EIE_CFG.arith.act_range
    cases = []
    w = w_of(np.where(rng.random((rows, cols)) < 0.5, -128, 127))
    xe = np.stack([np.full(cols, alo), np.full(cols, ahi), np.where(np.arange(cols) % 2, alo, ahi)], axis=1)
    cases.append((w, xe, np.where(np.arange(rows) % 2, lo, hi), Requant(0, False)))  # both limits, saturate
    cases.append((w, xe, np.where(np.arange(rows) % 2, lo, hi), Requant(16, False)))  # the extremes, shifted
    w = w_of(rng.integers(-128, 128, (rows, cols)))
    x = rng.integers(-2000, 2000, (cols, 1))
    edge = -(w @ x)[:, 0] + (np.arange(rows) % 3) - 1  # acc + bias = -1, 0, 1, -1, ...
    cases.append((w, x, edge, Requant(0, True)))
    cases.append((w, x, edge, Requant(1, True)))
    cases.append((w, x, edge, Requant(1, False)))
    cases.append((np.zeros((rows, cols), int), x, -np.arange(1, rows + 1) * 1000, Requant(3, False)))  # bias only
    cases.append((w_of(rng.integers(-128, 128, (rows, cols))), rng.integers(-32768, 32768, (cols, 2)),
                  -rng.integers(0, 1 << 20, rows), Requant(6, True)))  # negative biases
    return cases


def random_cases(rng, rows, cols, w_of, count):
    lo, hi = EIE_CFG.arith.bias_range
    out = []
    for i in range(count):
        r = int(rng.integers(1, rows + 1))
        w = w_of(rng.integers(-128, 128, (r, cols)) * (rng.random((r, cols)) < 0.6))
        x = rng.integers(-32768, 32768, (cols, 3)) * (rng.random((cols, 3)) < 0.7)
        b = rng.integers(-(1 << int(rng.integers(14, BB))), 1 << int(rng.integers(14, BB)), r)
        b[0] = [lo, hi, 0][i % 3]
        out.append((w, x, b, Requant(int(rng.integers(8, 21)), bool(rng.integers(0, 2)))))
    return out


def _no_bias_differs(w, x, b, rq, a):
    """The bias changes the result of the case (so a bias-ignoring RTL fails the check)."""
    ab = Arith(max_cols=a.max_cols, requant=rq, bias_bits=a.bias_bits)
    return not np.array_equal(layer(w, x, ab, b), layer(w, x, ab))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_eie_bias_matches_reference_and_cycle_model(sim):
    from test_eie_array import check_counters
    from verif.spmv_eie import run_jobs
    rng = np.random.default_rng(12)
    cases = corner_cases(rng, 12, 12, lambda w: w) + random_cases(rng, 12, 12, lambda w: w, 3)
    assert all(_no_bias_differs(w, x, b, rq, EIE_CFG.arith) for w, x, b, rq in cases)
    jobs = [(w, x, rq, None, b) for w, x, b, rq in cases]
    jobs.insert(3, (cases[0][0], cases[0][1], Requant(0, False)))  # no bias after a bias: zeros loaded
    jobs.append((np.array([[-128]]), np.array([[-32768, 5]]), Requant(2, True), None, [-(1 << 27)]))  # 1x1
    res = run_jobs(jobs, EIE_CFG, sim=sim, pacing=1.0, out_pacing=0.5, load_pacing=0.7, seed=7)
    assert len({r["run_dir"] for r in res}) == 1
    check_counters(res, EIE_CFG)  # a bias changes no cycle
    ys = np.concatenate([r["y"].ravel() for r in res])
    assert ys.min() == -32768 and ys.max() == 32767
    # Random idle on the input as well.
    res = run_jobs(jobs[-4:], EIE_CFG, sim=sim, pacing=0.6, out_pacing=0.7, load_pacing=0.5, seed=8)
    assert len(res) == 4  # (each result is checked against the reference inside run_jobs)


@pytest.mark.parametrize("dense", [False, True], ids=["2:4", "dense"])
@pytest.mark.parametrize("sim", SIMULATORS)
def test_lane_engines_bias_match_reference(sim, dense):
    from verif.spmv_sparse24 import run_spmv
    rng = np.random.default_rng(24 + dense)
    w_of = (lambda w: w) if dense else nm.keep_largest_24
    cases = corner_cases(rng, 12, 12, w_of) + random_cases(rng, 12, 12, w_of, 2)
    dirs = set()
    for i, (w, x, b, rq) in enumerate(cases):
        assert _no_bias_differs(w, x, b, rq, LANE_CFG.arith)
        cfg = LANE_CFG.with_(arith=Arith(max_cols=12, requant=rq, bias_bits=BB))
        pacing = 1.0 if i < 3 else 0.6  # full speed, then random idle / back-pressure
        out = run_spmv(w, x, cfg, sim=sim, dense=dense, pacing=pacing, seed=i, bias=b)
        assert np.array_equal(out["y"], numpy_layer(w, x, b, rq.shift, rq.relu))
        dirs.add(str(out["run_dir"]).rsplit("/", 2)[0])
        if i == 0:  # a bias changes no cycle: the same case without one counts the same
            plain = run_spmv(w, x, cfg, sim=sim, dense=dense, pacing=1.0, seed=i)
            assert plain["cycles"] == out["cycles"] and not np.array_equal(plain["y"], out["y"])
    assert len(dirs) == 1  # one build for every case


# ---- memory images and the command line -----------------------------------------------------------

def _image_cases(rng):
    w = rng.integers(-128, 128, (7, 8)) * (rng.random((7, 8)) < 0.4)
    a = Arith(max_cols=8, bias_bits=20)
    e_cfg = EIEConfig(n_pes=3, index_bits=2, max_rows=7, arith=a)
    s_cfg = Sparse24Config(max_rows=7, arith=a)
    from model.hw.formats import bsr
    return {"eie": (eie.encode(w, e_cfg), e_cfg), "2:4": (nm.encode(nm.keep_largest_24(w), 8), s_cfg),
            "csc": (csc.encode(w, 8, "csc"), a), "csr": (csc.encode(w, 8, "csr"), a),
            "bsr": (bsr.encode(w, 8, (2, 4)), a)}


@pytest.mark.parametrize("fmt", images.FORMATS)
def test_image_round_trip_keeps_the_bias(tmp_path, fmt):
    rng = np.random.default_rng(5)
    m, cfg = _image_cases(rng)[fmt]
    b = np.array([-(1 << 19), (1 << 19) - 1, 0, -1, 1, 12345, -54321])
    man = images.write_image(tmp_path / "img", m, cfg, bias=b)
    assert man["files"]["bias.hex"]["words"] == 7 and man["files"]["bias.hex"]["width"] == 20
    text = (tmp_path / "img" / "bias.hex").read_text().split()
    assert text[:3] == ["80000", "7ffff", "00000"]
    img = images.load_image(tmp_path / "img", expect=cfg)
    assert img.bias.tolist() == b.tolist()
    assert np.array_equal(img.dense(), images.decode_matrix(m))
    # Without a bias: no file, Image.bias is None.
    images.write_image(tmp_path / "plain", m, cfg)
    assert "bias.hex" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())["files"]
    assert images.load_image(tmp_path / "plain").bias is None


def test_image_bias_corruption_and_mismatch_are_one_line_errors(tmp_path):
    m, cfg = _image_cases(np.random.default_rng(6))["eie"]
    b = np.arange(7) - 3
    path = tmp_path / "img"
    images.write_image(path, m, cfg, bias=b)
    raw = (path / "bias.hex").read_bytes()
    (path / "bias.hex").write_bytes(raw.replace(b"00003", b"00004"))
    with pytest.raises(SparseFlowError, match=r"^bias\.hex: sha256 checksum mismatch"):
        images.load_image(path)
    (path / "bias.hex").write_bytes(raw[:-6])
    with pytest.raises(SparseFlowError, match=r"^bias\.hex: 6 lines, the manifest says 7 \(truncated\)$"):
        images.load_image(path)
    (path / "bias.hex").write_bytes(raw)
    with pytest.raises(SparseFlowError, match=r"^bias\.hex: a bias was given but the configuration has none"):
        images.load_image(path, expect=cfg.with_(arith=Arith(max_cols=8)))
    with pytest.raises(SparseFlowError, match=r"^bias\.hex: bias\[\d\] = -?\d+ is out of range for 2-bit signed"):
        images.load_image(path, expect=cfg.with_(arith=Arith(max_cols=8, bias_bits=2)))
    man = json.loads((path / "manifest.json").read_text())
    man["config"]["arith"]["bias_bits"] = None
    man["config"]["arith"]["acc_bits"] = None
    images.seal_manifest(man)  # a consistent edit: past the manifest's own checksum
    (path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(SparseFlowError, match=r"^manifest\.json: bias\.hex is listed but the configuration has no bias_bits$"):
        images.load_image(path)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "scripts.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_cli_emit_decode_and_spmv_with_bias(tmp_path):
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rng = np.random.default_rng(9)
    w = rng.integers(-100, 100, (6, 8)) * (rng.random((6, 8)) < 0.5)
    b = rng.integers(-50000, 50000, 6)
    x = rng.integers(-300, 300, (8, 2))
    for name, arr in (("W", w), ("B", b), ("X", x), ("Bshort", b[:5]), ("Bfloat", b + 0.5)):
        np.save(tmp_path / f"{name}.npy", arr)
    p = _cli("emit", "--format", "eie", "--weights", str(tmp_path / "W.npy"), "--bias", str(tmp_path / "B.npy"),
             "--out", str(tmp_path / "img"), cwd=root)
    assert p.returncode == 0, p.stderr
    p = _cli("decode", str(tmp_path / "img"), "--out", str(tmp_path / "W2.npy"), "--bias-out",
             str(tmp_path / "B2.npy"), cwd=root)
    assert p.returncode == 0, p.stderr
    assert np.array_equal(np.load(tmp_path / "W2.npy"), w) and np.array_equal(np.load(tmp_path / "B2.npy"), b)
    p = _cli("spmv", "--weights", str(tmp_path / "W.npy"), "--input", str(tmp_path / "X.npy"), "--bias",
             str(tmp_path / "B.npy"), "--shift", "4", "--relu", "--sim", "icarus", "--pes", "2",
             "--out", str(tmp_path / "Y.npy"), cwd=root)
    assert p.returncode == 0, p.stderr
    assert np.array_equal(np.load(tmp_path / "Y.npy"), numpy_layer(w, x, b, 4, True))
    for bad, msg in (("Bshort", "bias has 5 entries but the weights have 6 rows"),
                     ("Bfloat", "bias must hold integers; bias[0] = ")):
        for cmd in (["spmv", "--input", str(tmp_path / "X.npy"), "--sim", "icarus"], ["emit", "--format", "csc"]):
            p = _cli(*cmd, "--weights", str(tmp_path / "W.npy"), "--bias", str(tmp_path / f"{bad}.npy"),
                     "--out", str(tmp_path / "never"), cwd=root)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, (cmd, p.stderr)
            assert p.stderr.startswith(f"sparseflow: error: {msg}"), p.stderr
    p = _cli("decode", str(tmp_path / "img"), "--out", str(tmp_path / "W3.npy"), cwd=root)
    assert p.returncode == 0
    np.save(tmp_path / "W24.npy", nm.keep_largest_24(np.pad(w, ((0, 0), (0, 0)))))
    p = _cli("emit", "--format", "2:4", "--weights", str(tmp_path / "W24.npy"), "--out", str(tmp_path / "i24"), cwd=root)
    p = _cli("decode", str(tmp_path / "i24"), "--out", str(tmp_path / "W4.npy"), "--bias-out",
             str(tmp_path / "B4.npy"), cwd=root)
    assert p.returncode == 2 and "has no bias" in p.stderr


# ---- elaboration-time biases (FPGA builds) ----------------------------------------------------------

def test_eie_bias_at_elaboration_and_through_load_in_amaranth_sim():
    from test_eie_units import _array_run
    from rtl.eie.array import EIEArray
    from verif.spmv_eie import load_words
    rng = np.random.default_rng(31)
    cfg = EIE_CFG.with_(arith=Arith(max_cols=12, requant=Requant(5, True), bias_bits=BB))
    w = rng.integers(-128, 128, (9, 7)) * (rng.random((9, 7)) < 0.5)
    b = rng.integers(-(1 << 22), 1 << 22, 9)
    xs = [rng.integers(-3000, 3000, 7) for _ in range(2)]
    want = numpy_layer(w, np.array(xs).T, b, 5, True)
    m = eie.encode(w, cfg)
    y = _array_run(EIEArray(cfg, init=m, bias_init=b, checks=True), [], xs, 9)
    np.testing.assert_array_equal(y, want)
    y = _array_run(EIEArray(cfg, checks=True), load_words(m, cfg, Requant(5, True), b), xs, 9)
    np.testing.assert_array_equal(y, want)
    with pytest.raises(SparseFlowError, match=r"^bias has 8 entries but the weights have 9 rows$"):
        EIEArray(cfg, init=m, bias_init=b[:8])
    with pytest.raises(SparseFlowError, match=r"^bias_init needs init"):
        EIEArray(cfg, bias_init=b)


@pytest.mark.parametrize("dense", [False, True], ids=["2:4", "dense"])
def test_lane_bias_at_elaboration_icarus(dense):
    from rtl.dense.engine import DenseEngine
    from rtl.sparse24.engine import Sparse24Engine
    from verif.spmv_sparse24 import simulate_engine
    rng = np.random.default_rng(32)
    cfg = LANE_CFG.with_(arith=Arith(max_cols=12, requant=Requant(4, False), bias_bits=BB))
    w = nm.keep_largest_24(rng.integers(-128, 128, (7, 12)))
    b = rng.integers(-(1 << 20), 1 << 20, 7)
    x = rng.integers(-2000, 2000, (12, 2))
    eng = DenseEngine(cfg, init=w, bias_init=b) if dense else Sparse24Engine(cfg, init=nm.encode(w, 8), bias_init=b)
    out = simulate_engine(eng, [], x, 7, sim="icarus", toplevel="bias_init", pacing=0.7)
    np.testing.assert_array_equal(out["y"], numpy_layer(w, x, b, 4, False))
