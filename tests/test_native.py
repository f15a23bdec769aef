"""The native Verilator backend (verif/native) against the cocotb testbenches it mirrors.

For the same case and the same stream pacing, both backends must return identical results
and identical cycle counters (the regression's random and corner cases, EIE, 2:4 and dense);
the cycle model must hold on native runs too; a hung DUT, a broken harness build and a
backend/simulator mismatch must fail with a clear message.
"""
import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

import test_eie_array as eie_cases
import test_sparse24_engine as lane_cases
from model.hw.config import Arith, EIEConfig, Requant
from model.errors import SparseFlowError
from verif import native
from verif.spmv_eie import run_jobs, run_spmv
from verif.spmv_sparse24 import run_spmv as run_lanes
from verif.streams import Pacer

SEED = 20261129


def _same_eie(a, b):
    for k in ("y", "cycles", "total_cycles", "busy", "stall", "vectors"):
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k


def _eie_both(jobs, cfg, **kw):
    nat = run_jobs(jobs, cfg, sim="verilator", backend="native", **kw)
    coc = run_jobs(jobs, cfg, sim="verilator", backend="cocotb", **kw)
    for a, b in zip(nat, coc):
        _same_eie(a, b)
    return nat


def test_pacer_is_splitmix64():
    """The Python pacer draws the harness's sequence (SplitMix64, first output for seed 0)."""
    p = Pacer(0.5, seed=0)
    assert p._next() == 0xE220A8397B1DCDAF
    a, b = Pacer(0.3, seed=7), Pacer(0.3, seed=7)
    draws = [a.go() for _ in range(2000)]
    assert draws == [b.go() for _ in range(2000)] and 0.27 < np.mean(draws) < 0.33
    full = Pacer(1.0, seed=3)
    assert all(full.go() for _ in range(10)) and full._state == 3  # full speed draws nothing


@pytest.mark.parametrize("name", ["rq", "pe4", pytest.param("pe8_depth4", marks=pytest.mark.slow),
                                  pytest.param("pe1_depth1", marks=pytest.mark.slow),
                                  pytest.param("pe16_depth1", marks=pytest.mark.slow)])
def test_eie_native_equals_cocotb(name):
    cfg = eie_cases.RQ if name == "rq" else eie_cases.CASES[name][0]
    rng = np.random.default_rng(SEED)
    jobs = eie_cases.directed_jobs(rng, cfg) + eie_cases.random_jobs(rng, cfg, 3)
    print(f"seed {SEED}, config {name}")
    # Full-speed input (counters = cycle model), then random idle and back-pressure everywhere.
    res = _eie_both(jobs, cfg, pacing=1.0, out_pacing=0.5, load_pacing=0.7, seed=1)
    eie_cases.check_counters(res, cfg)
    _eie_both(jobs, cfg, pacing=0.6, out_pacing=0.7, load_pacing=0.4, seed=2)


def _lanes_both(w, x, cfg, **kw):
    nat = run_lanes(w, x, cfg, sim="verilator", backend="native", **kw)
    coc = run_lanes(w, x, cfg, sim="verilator", backend="cocotb", **kw)
    for k in ("y", "cycles", "total_cycles", "busy"):
        assert np.array_equal(np.asarray(nat[k]), np.asarray(coc[k])), k
    return nat


@pytest.mark.parametrize("dense", [False, True])
def test_lanes_native_equals_cocotb(dense):
    rng = np.random.default_rng(SEED + dense)
    print(f"seed {SEED + dense}")
    w = lane_cases.random_24(rng, 13, 32)
    x = rng.integers(-32768, 32768, (32, 4))
    for pacing, seed in ((1.0, 0), (0.5, 1), (0.8, 2)):
        _lanes_both(w, x, lane_cases.with_requant(6, True), dense=dense, pacing=pacing, seed=seed)
    out = _lanes_both(lane_cases.corner_matrix(), lane_cases.corner_inputs(), lane_cases.with_requant(0, False),
                      dense=dense, pacing=1.0)
    assert sum(out["cycles"]) == out["total_cycles"]


def test_native_cycle_model_on_larger_layer():
    """A layer too slow for cocotb in the regression: native counters equal the cycle model."""
    rng = np.random.default_rng(SEED)
    w = rng.integers(-128, 128, (96, 160)) * (rng.random((96, 160)) < 0.1)
    x = rng.integers(-3000, 3000, (160, 40)) * (rng.random((160, 40)) < 0.6)
    cfg = EIEConfig(n_pes=8, fifo_depth=4, index_bits=4, max_rows=128, max_entries=256, arith=Arith(max_cols=256))
    r = run_spmv(w, x, cfg, sim="verilator", backend="native")
    assert r["cycles"] == r["predicted"]
    assert r["backend"] == "native" and r["sim_cycles"] >= sum(r["cycles"])


def test_backend_checks():
    w, x = np.eye(4, dtype=int), np.arange(4)
    cfg = EIEConfig(n_pes=2, max_rows=4, max_entries=8, arith=Arith(max_cols=4))
    with pytest.raises(SparseFlowError, match=r"^the native backend runs on verilator, not icarus; "):
        run_spmv(w, x, cfg, sim="icarus", backend="native")
    with pytest.raises(SparseFlowError, match=r"^unknown backend 'fast'; choose one of cocotb, native$"):
        run_spmv(w, x, cfg, backend="fast")


class _Deaf(wiring.Component):
    """The lane engines' ports, but ``x`` is never ready: a DUT that stops answering."""

    def __init__(self):
        super().__init__({"load": In(stream.Signature(8)), "x": In(stream.Signature(17)),
                          "y": Out(stream.Signature(17)), "cycles": Out(32), "busy": Out(32), "vectors": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.load.ready.eq(1)
        m.d.sync += self.cycles.eq(self.cycles + 1)
        return m


def test_stalled_dut_names_the_stream():
    exe = native.build(_Deaf(), toplevel="deaf", eie=False)
    job = {"load": np.arange(3), "x": np.ones((2, 5), dtype=np.int64), "rows": 4}
    with pytest.raises(RuntimeError, match=r"stalled: no handshake for 500 cycles in job 0; "
                                           r"y: 0 of 8 results received \(x: 0 of 10 inputs accepted\)"):
        native.run(exe, [job], out_bits=16, eie=False, watchdog=500)


def test_build_error_shows_the_first_error_line(tmp_path, monkeypatch):
    bad = tmp_path / "harness.cpp"
    bad.write_text("int main() { return undeclared_name; }\n")
    monkeypatch.setattr(native, "HARNESS", bad)
    with pytest.raises(RuntimeError, match=r"native build of deaf failed: .*error: .*undeclared_name"):
        native.build(_Deaf(), toplevel="deaf", eie=False)


def test_native_waves_on_demand():
    cfg = EIEConfig(n_pes=2, max_rows=8, max_entries=32, arith=Arith(max_cols=8, requant=Requant(1, True)))
    r = run_spmv(np.eye(8, dtype=int), np.arange(8), cfg, sim="verilator", backend="native", waves=True)
    from pathlib import Path
    dump = Path(r["run_dir"]) / "dump.fst"
    assert dump.exists() and dump.stat().st_size > 100


def test_spmv_cli_defaults_to_native_on_verilator(tmp_path, capsys):
    import json

    from scripts.cli import main
    rng = np.random.default_rng(SEED)
    w = rng.integers(-128, 128, (10, 12)) * (rng.random((10, 12)) < 0.4)
    x = rng.integers(-500, 500, (12, 3))
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "X.npy", x)
    rc = main(["spmv", "--weights", str(tmp_path / "W.npy"), "--input", str(tmp_path / "X.npy"),
               "--out", str(tmp_path / "Y.npy"), "--pes", "3", "--pacing", "0.7", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["backend"] == "native" and rep["cycles"] != []
    from model.hw.reference import matvec
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), matvec(w, x, Arith()))
    rc = main(["spmv", "--weights", str(tmp_path / "W.npy"), "--input", str(tmp_path / "X.npy"),
               "--out", str(tmp_path / "Y2.npy"), "--sim", "icarus", "--backend", "native"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "the native backend runs on verilator, not icarus" in err


def test_split_over_processes_equals_one_process():
    """Vectors split over two harness processes give what one process gives (full speed)."""
    rng = np.random.default_rng(SEED + 2)
    w = rng.integers(-128, 128, (40, 48)) * (rng.random((40, 48)) < 0.3)
    x = rng.integers(-3000, 3000, (48, 70)) * (rng.random((48, 70)) < 0.5)
    cfg = EIEConfig(n_pes=4, fifo_depth=2, index_bits=3, max_rows=64, max_entries=512, arith=Arith(max_cols=64))
    jobs = [(w, x), (w[:7], x[:, :3]), (w.T[:, :40], x[:40, :9])]
    one = run_jobs(jobs, cfg, sim="verilator", backend="native", processes=1)
    two = run_jobs(jobs, cfg, sim="verilator", backend="native", processes=2)
    assert two[0]["processes"] == 2 and one[0]["processes"] == 1
    for a, b in zip(one, two):
        _same_eie(a, b)


def test_bias_native_equals_cocotb():
    """Bias words travel through load like any other: both backends agree on every engine."""
    rng = np.random.default_rng(SEED + 3)
    w = rng.integers(-128, 128, (20, 32)) * (rng.random((20, 32)) < 0.4)
    x = rng.integers(-500, 500, (32, 4))
    b = rng.integers(-5000, 5000, 20)
    ar = Arith(8, 16, max_cols=32, requant=Requant(4, True), bias_bits=30)
    from verif.spmv_eie import size_config
    _eie_both([(w, x, None, None, b)], size_config(w, n_pes=4, arith=ar), pacing=0.6, out_pacing=0.7, seed=3)
    g = w.reshape(20, 8, 4).copy()
    np.put_along_axis(g, np.argsort(np.abs(g), axis=2)[:, :, :2], 0, axis=2)
    from model.hw.config import Sparse24Config
    cfg = Sparse24Config(lanes=4, max_rows=32, arith=ar)
    for dense in (False, True):
        _lanes_both(g.reshape(20, 32), x, cfg, dense=dense, bias=b, pacing=0.7, seed=4)


def test_native_engine_with_weights_from_elaboration():
    """FPGA-style engines (weights set at elaboration, no load words) run natively too."""
    from model.hw.formats import nm
    from model.hw.reference import layer
    from rtl.sparse24.engine import Sparse24Engine
    from verif.spmv_sparse24 import simulate_engine
    rng = np.random.default_rng(SEED + 4)
    w = lane_cases.random_24(rng, 7, 20)
    x = rng.integers(-2000, 2000, (20, 3))
    eng = Sparse24Engine(lane_cases.CFG, init=nm.encode(w, 8))
    out = simulate_engine(eng, [], x, 7, sim="verilator", toplevel="sparse24_init", pacing=0.7, backend="native")
    assert (out["y"] == layer(w, x, lane_cases.CFG.arith)).all()
