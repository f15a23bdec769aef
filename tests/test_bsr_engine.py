"""The block-sparse engine: bit-exact against the golden model, counters exactly the cycle model's,
on the native harness (random and corner jobs), cocotb on Icarus and Verilator (back-pressure),
and the host-side pieces (memory words, configuration, costs)."""
from dataclasses import replace

import numpy as np
import pytest

from model.errors import SparseFlowError
from model.hw.bsrcycles import predict_cycles, simulate_batch, words_per_block_row
from model.hw.config import Arith, BSRConfig, Requant
from model.hw.formats import bsr
from model.hw.reference import layer
from rtl.bsr.engine import CTL_FLAGS, group_bits, memory_words
from verif.cases import bsr_jobs, bsr_matrix
from verif.spmv_bsr import encode, run_spmv

BIAS_ARITH = Arith(max_cols=32, requant=Requant(), bias_bits=30)


def _cfg(block, lanes, arith=BIAS_ARITH, rows=32):
    return BSRConfig(lanes=lanes, block=block, max_rows=rows, max_words=256, arith=arith)


def _datapath_model(w, x, cfg):
    """``W @ x`` computed from the memory words the way the engine's datapath consumes them
    (slices, units, input groups, first/last), independent of the BSR encoder's layout."""
    m = encode(w, cfg)
    mem = memory_words(m, cfg)
    b, c, U, wb, g = cfg.block, cfg.slice_cols, cfg.units, cfg.arith.weight_bits, group_bits(cfg)
    xp = np.zeros(cfg.groups_per_vector * c, dtype=np.int64)
    xp[:len(x)] = x
    out, acc = [], None
    for k in range(mem.shape[1]):
        ctl = int(mem[-1, k])
        if ctl & 1:
            acc = np.zeros(b, dtype=np.int64)
        for u in range(U):
            grp = (ctl >> (CTL_FLAGS + u * g)) & ((1 << g) - 1)
            for i in range(b):
                word = int(mem[u * b + i, k])
                ws = [(word >> (wb * j)) & ((1 << wb) - 1) for j in range(c)]
                ws = [v - (1 << wb) if v >> (wb - 1) else v for v in ws]
                acc[i] += sum(wv * int(xp[grp * c + j]) for j, wv in enumerate(ws))
        if ctl & 2:
            out.extend(acc.tolist())
    return np.array(out[:w.shape[0]])


@pytest.mark.parametrize("block, lanes", [(2, 1), (2, 4), (4, 2), (4, 4), (4, 8), (2, 6)])
def test_memory_words_compute_the_product(block, lanes):
    cfg = _cfg(block, lanes, Arith(max_cols=32))
    rng = np.random.default_rng(block * 10 + lanes)
    for w, x, _ in bsr_jobs(cfg, random=3):
        xv = x[:, 0]
        assert np.array_equal(_datapath_model(w, xv, cfg), w @ xv), (block, lanes, w.shape)
    w = bsr_matrix(rng, 20, 28, block, 0.4)
    m = encode(w, cfg)
    # words: the non-zero blocks' slices, `units` per word, at least one word per block row
    per_row = np.diff(m.indptr) * cfg.slices_per_block
    assert list(words_per_block_row(m, cfg)) == [max(1, -(-n // cfg.units)) for n in per_row]


def test_config_tiles_the_multipliers():
    assert [(c.slice_cols, c.units) for c in (BSRConfig(lanes=1, block=2), BSRConfig(lanes=4, block=2),
                                              BSRConfig(lanes=2, block=4), BSRConfig(lanes=16, block=4))] == \
        [(1, 1), (2, 2), (1, 1), (4, 2)]
    for kw, msg in [(dict(lanes=3, block=4), "do not tile"), (dict(lanes=1, block=4), "do not tile"),
                    (dict(block=3), "block must be 2 or 4"), (dict(max_words=0), "max_words")]:
        with pytest.raises(SparseFlowError, match=msg):
            BSRConfig(**kw)


def test_engine_rejects_what_it_cannot_hold():
    import gc
    import warnings
    from rtl.bsr.engine import BSREngine
    cfg = _cfg(4, 4, rows=8).with_(max_words=4)
    w = np.ones((8, 32), dtype=int)
    with warnings.catch_warnings():  # the engine is never elaborated: not a forgotten design
        warnings.simplefilter("ignore")
        eng = BSREngine(cfg)
        with pytest.raises(SparseFlowError, match="memory words"):
            eng.load_program(encode(w, cfg))
        with pytest.raises(SparseFlowError, match="2x2 blocks"):
            eng.load_program(bsr.encode(w[:, :4], 8, (2, 2)))
        with pytest.raises(SparseFlowError, match="allows 8x32"):
            eng.load_program(encode(np.ones((9, 4), dtype=int), cfg))
        del eng
        gc.collect()


def test_cycle_model_skips_zero_blocks():
    """Issue cycles = the non-zero blocks' slices over the units: a quarter of the blocks take a
    quarter of the dense matrix's issue cycles, once both are past the input and drain."""
    cfg = _cfg(4, 4, rows=256).with_(arith=Arith(max_cols=256))
    rng = np.random.default_rng(3)
    dense = encode(np.ones((256, 256), dtype=int), cfg)
    quarter = encode(bsr_matrix(rng, 256, 256, 4, 0.25), cfg)
    assert simulate_batch(dense, 1, cfg)["busy"] == 256 * 256 // 8
    n = simulate_batch(quarter, 1, cfg)["busy"]
    assert n == quarter.nblocks * 2
    assert predict_cycles(dense, cfg) - predict_cycles(quarter, cfg) == 256 * 256 // 8 - n


def test_cost_model_offers_bsr_and_can_choose_it():
    from model.hw.config import EIEConfig
    from model.hw.costmodel import choose, layer_costs
    rng = np.random.default_rng(4)
    w = bsr_matrix(rng, 64, 64, 4, 0.25)
    x = rng.integers(-100, 100, (64, 4))
    eie_cfg = EIEConfig(n_pes=8, max_rows=64, arith=Arith(max_cols=64), max_entries=2048)
    costs = layer_costs(w, x, eie_cfg, lanes=4, block=4)
    assert costs["bsr"]["cycles"] == predict_cycles(encode(w, _cfg(4, 4, Arith(max_cols=64), 64)), _cfg(4, 4, Arith(max_cols=64), 64))
    assert costs["bsr"]["cycles"] < costs["dense"]["cycles"]
    assert choose({k: v for k, v in costs.items() if k != "eie"}) == "bsr"
    assert "bsr" not in layer_costs(w, x, eie_cfg, lanes=4)  # block None: left out (the demo)
    assert "bsr" not in layer_costs(w, x, eie_cfg, lanes=3, block=4)  # 6 multipliers do not tile 4x4


def _check_jobs(cfg, jobs, **kw):
    for i, (w, x, rq) in enumerate(jobs):
        run_cfg = cfg.with_(arith=replace(cfg.arith, requant=rq))
        bias = None
        if cfg.arith.bias_bits is not None:
            bias = np.random.default_rng(i).integers(-(1 << 20), 1 << 20, w.shape[0])
        r = run_spmv(w, x, run_cfg, bias=bias, **kw)  # raises on any result or busy mismatch
        if kw.get("pacing", 1.0) == 1.0 and kw.get("out_pacing", 1.0) == 1.0:
            assert list(r["cycles"]) == list(r["predicted"]), (i, w.shape, r["cycles"], r["predicted"])


@pytest.mark.parametrize("block, lanes", [(4, 4), pytest.param(2, 4, marks=pytest.mark.slow)])
def test_native_random_and_corners(block, lanes):
    cfg = _cfg(block, lanes)
    _check_jobs(cfg, bsr_jobs(cfg), sim="verilator", backend="native")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_cocotb_backpressure_and_cycles(sim):
    """An empty block row, partial blocks and a bias under random idle and a slow consumer (the
    result queue fills, the sequencer waits for credit). (Full speed, where every count is
    the cycle model's: the native test.)"""
    cfg = _cfg(2, 4, rows=16)
    rng = np.random.default_rng(7)
    w = bsr_matrix(rng, 14, 30, 2, 0.5)
    w[4:6] = 0
    x = rng.integers(-32768, 32768, (30, 4))
    _check_jobs(cfg, [(w, x, Requant(12, True))], sim=sim, pacing=0.7, out_pacing=0.15, seed=5)


def _cli(*argv):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "scripts.cli", *argv], capture_output=True, text=True)


@pytest.mark.parametrize("argv, msg", [
    (["--engine", "dense", "--block", "2"], "--block applies only to --engine bsr"),
    (["--engine", "eie", "--image", "img"], "--image applies only to --engine bsr"),
    (["--engine", "bsr", "--lanes", "3"], "do not tile 4x4 blocks"),
    (["--engine", "bsr", "--pes", "2"], "--pes does not apply to --engine bsr"),
])
def test_spmv_cli_bad_input(argv, msg, tmp_path):
    np.save(tmp_path / "w.npy", np.ones((4, 8), dtype=int))
    np.save(tmp_path / "x.npy", np.ones(8, dtype=int))
    src = [] if "--image" in argv else ["--weights", str(tmp_path / "w.npy")]
    out = _cli("spmv", *src, "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"), *argv)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and msg in lines[0], out.stderr


@pytest.mark.slow
def test_emitted_image_runs_as_loaded(tmp_path):
    """``emit --format bsr`` (with a bias), then ``spmv --engine bsr --image``: the image's
    blocks and bias go into the engine as they are, results checked against the golden model."""
    import json
    rng = np.random.default_rng(9)
    w = bsr_matrix(rng, 12, 20, 2, 0.5)
    x = rng.integers(-1000, 1000, (20, 2))
    for name, v in (("w", w), ("x", x), ("b", rng.integers(-99, 99, 12))):
        np.save(tmp_path / f"{name}.npy", v)
    assert _cli("emit", "--format", "bsr", "--block", "2x2", "--weights", str(tmp_path / "w.npy"),
                "--bias", str(tmp_path / "b.npy"), "--out", str(tmp_path / "img")).returncode == 0
    out = _cli("spmv", "--engine", "bsr", "--image", str(tmp_path / "img"), "--input", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "y.npy"), "--sim", "icarus", "--json")
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["block"] == 2 and rep["cycles"] == rep["predicted"]
    want = layer(w, x, Arith(max_cols=20, bias_bits=rep["bias_bits"]), np.load(tmp_path / "b.npy"))
    assert np.array_equal(np.load(tmp_path / "y.npy"), want)


def test_many_vectors_and_input_past_max_cols():
    """4100 vectors in one run (the vector and busy counters' higher bits move; every count is
    the cycle model's), then a vector longer than ``max_cols``: the extra elements are dropped
    (verif.cases.many_vectors_case / lane_overlong_case, as for the lane engines)."""
    from verif.cases import MANY_VECTORS, lane_overlong_case, many_vectors_case
    from verif.spmv_sparse24 import simulate_engine
    from verif.spmv_bsr import TOPLEVEL, make_engine
    cfg = _cfg(4, 4)
    w, x = many_vectors_case()
    out = run_spmv(w, x, cfg, sim="verilator", backend="native")
    assert len(out["cycles"]) == MANY_VECTORS and list(out["cycles"]) == list(out["predicted"])
    w, x, long_x = lane_overlong_case()
    rq = Requant(9, False)
    rcfg = cfg.with_(arith=replace(cfg.arith, requant=rq))
    eng = make_engine(rcfg)
    out = simulate_engine(eng, eng.load_program(encode(w, rcfg), rq), long_x, w.shape[0], sim="verilator",
                          backend="native", toplevel=TOPLEVEL)
    assert long_x.shape[0] > cfg.max_cols and (out["y"] == layer(w, x, rcfg.arith)).all()
