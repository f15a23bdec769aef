"""cocotb regression of the EIE array on Icarus and Verilator, bit-exact against model.hw.reference,
counters exact against model.hw.cyclemodel. One compiled simulation per configuration runs every
matrix and vector of a test (weights and registers go in through ``load``)."""
import zlib

import numpy as np
import pytest

from model.hw.config import Arith, EIEConfig, Requant
from model.errors import SparseFlowError
from model.hw.cyclemodel import simulate_vector
from verif.cases import (busy_mismatch, codebook_jobs, counter_mismatch, directed_jobs, random_jobs,  # noqa: F401
                         requant_jobs)  # (test_native imports some of these from here)
from verif.runner import SIMULATORS
from verif.spmv_eie import run_jobs, run_spmv, size_config

BASE = EIEConfig(n_pes=4, index_bits=2, fifo_depth=2, max_rows=24, max_entries=256, arith=Arith(max_cols=24))


def check_counters(results, cfg):
    for r in results:
        msg = counter_mismatch(r["matrix"], r["x"], cfg, r["cycles"], r["busy"], r["stall"])
        assert msg is None, (r["matrix"].shape, msg)


# name -> (config, simulators run by default). Others are @slow.
CASES = {
    "pe4": (BASE, ("icarus",)),  # Verilator builds are costly: its default run is the requant test
    "pe1_depth1": (BASE.with_(n_pes=1, fifo_depth=1, index_bits=3, max_entries=2048), ("icarus",)),
    "pe8_depth4": (BASE.with_(n_pes=8, fifo_depth=4, max_entries=128), ("icarus",)),
    "pe16_depth1": (BASE.with_(n_pes=16, fifo_depth=1, max_entries=64, index_bits=1), ()),
    # The scanning front end (K elements per input word, rtl.eie.nonzero.NonZeroScan): K does
    # not divide max_cols (a padded last word), and 8 x 16 bits + last is a 129-bit x port.
    "pe4_wide4": (BASE.with_(frontend_width=4, arith=Arith(max_cols=22)), ("icarus",)),
    "pe2_wide8_depth1": (BASE.with_(n_pes=2, fifo_depth=1, frontend_width=8, max_entries=512), ()),
    # The read-out register of arrays over 16 PEs (EIEConfig.wide_timing), forced on a small one.
    "pe4_readout_reg": (BASE.with_(wide_timing=True, frontend_width=4), ("icarus",)),
}


def _params():
    for name, (cfg, fast) in CASES.items():
        for sim in SIMULATORS:
            marks = () if sim in fast else (pytest.mark.slow,)
            yield pytest.param(name, sim, marks=marks, id=f"{name}-{sim}")


@pytest.mark.parametrize("name,sim", list(_params()))
def test_eie_matches_reference_and_cycle_model(name, sim):
    cfg = CASES[name][0]
    seed = zlib.crc32(name.encode()) % 1000  # stable across processes (hash() is not)
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    jobs = directed_jobs(rng, cfg) + random_jobs(rng, cfg, 3)
    # Input at full speed (so the counters must equal the cycle model), results and loads paced.
    res = run_jobs(jobs, cfg, sim=sim, pacing=1.0, out_pacing=0.5, load_pacing=0.7, seed=1)
    check_counters(res, cfg)
    # Random idle on the input too: results still exact; busy does not depend on timing.
    res = run_jobs(jobs[-2:], cfg, sim=sim, pacing=0.6, out_pacing=0.7, seed=2)
    for r in res:
        msg = busy_mismatch(r["matrix"], r["x"], cfg, r["busy"])
        assert msg is None, msg


RQ = EIEConfig(n_pes=2, index_bits=3, fifo_depth=1, max_rows=16, max_entries=128,
               arith=Arith(max_cols=16, requant=Requant(shift=4, relu=True)))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_eie_requant_layers_share_one_build(sim):
    jobs = requant_jobs(np.random.default_rng(3))
    res = run_jobs(jobs, RQ, sim=sim, pacing=1.0, out_pacing=0.6, load_pacing=0.5, seed=4)
    assert len({r["run_dir"] for r in res}) == 1
    check_counters(res, RQ)
    res = run_jobs(jobs[:3], RQ, sim=sim, pacing=0.7, out_pacing=0.8, seed=5)  # random idle on x too
    assert res[-2]["y"].max() == 32767 and res[-1]["y"].min() == -32768


CB = EIEConfig(n_pes=3, index_bits=3, fifo_depth=2, max_rows=16, max_entries=128, codebook=True, codebook_bits=3,
               arith=Arith(max_cols=12))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_eie_codebook_mode(sim):
    """Weight sharing end to end on the RTL: codebook and indices through ``load``, results equal
    ``layer(codebook[indices] @ x)``, counters equal the cycle model, jobs at narrower index widths."""
    print("seed 15")
    jobs = codebook_jobs(np.random.default_rng(15), CB)
    res = run_jobs(jobs, CB, sim=sim, pacing=1.0, out_pacing=0.6, load_pacing=0.7, seed=6)
    assert len({r["run_dir"] for r in res}) == 1  # one build for every codebook and width
    for r, job in zip(res, jobs):
        np.testing.assert_array_equal(r["weights"], job[3][job[0]])  # the array multiplied by codebook[indices]
        assert r["cfg"].index_bits == (job[5] or CB.index_bits)
        assert int(r["matrix"].zs[0].max(initial=0)) <= r["cfg"].max_gap
    check_counters(res, CB)
    res = run_jobs(jobs[-2:], CB, sim=sim, pacing=0.6, out_pacing=0.7, seed=7)  # random idle on x too
    for r in res:
        assert busy_mismatch(r["matrix"], r["x"], CB, r["busy"]) is None


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
def test_eie_64_pes_small_matrix(sim):
    cfg = EIEConfig(n_pes=64, index_bits=2, fifo_depth=4, max_rows=80, max_entries=32, arith=Arith(max_cols=24))
    rng = np.random.default_rng(64)
    w = rng.integers(-128, 128, (80, 24)) * (rng.random((80, 24)) < 0.4)
    x = rng.integers(-32768, 32768, (24, 4)) * (rng.random((24, 4)) < 0.6)
    r = run_spmv(w, x, cfg, sim=sim)
    assert r["cycles"] == r["predicted"]


def test_run_spmv_rejects_bad_input():
    cfg = BASE
    w = np.ones((4, 6), dtype=int)
    with pytest.raises(SparseFlowError, match=r"^shape mismatch: weights are 4x6 but the input has 5 rows$"):
        run_spmv(w, np.ones(5, dtype=int), cfg)
    with pytest.raises(SparseFlowError, match=r"^weights\[0, 1\] = 300 is out of range for 8-bit signed"):
        run_spmv(np.array([[0, 300]]), np.ones(2, dtype=int), cfg)
    with pytest.raises(SparseFlowError, match=r"^input contains NaN or infinity$"):
        run_spmv(w, np.array([1, 2, np.nan, 0, 0, 0]), cfg)
    with pytest.raises(SparseFlowError, match=r"^PE 0 needs 576 entries \(padding included\); its memory holds 256$"):
        run_spmv(np.ones((24, 24), dtype=int), np.ones(24, dtype=int), cfg.with_(n_pes=1, max_entries=256))
    with pytest.raises(SparseFlowError, match=r"^pacing must be in \(0, 1\], not 0$"):
        run_spmv(w, np.ones(6, dtype=int), cfg, pacing=0)


def test_size_config_fits_the_matrix():
    w = np.zeros((100, 37), dtype=int)
    w[::7, ::2] = 3
    cfg = size_config(w, n_pes=8, index_bits=2)
    assert (cfg.max_rows, cfg.max_cols, cfg.n_pes) == (128, 64, 8)
    from model.hw.formats.eie import check_fits, encode
    check_fits(encode(w, cfg), cfg)


@pytest.mark.parametrize("sim", [pytest.param("icarus"), pytest.param("verilator", marks=pytest.mark.slow)])
def test_eie_waves_on_demand(sim, monkeypatch):
    monkeypatch.setenv("SPARSEFLOW_WAVES", "1")
    cfg = BASE.with_(n_pes=2, max_rows=8, max_entries=32, arith=Arith(max_cols=8))
    r = run_spmv(np.eye(8, dtype=int), np.arange(8), cfg, sim=sim)
    from pathlib import Path
    dumps = [p.name for p in Path(r["run_dir"]).iterdir() if p.suffix in (".fst", ".vcd")]
    assert dumps == ["dump.fst"], dumps


@pytest.mark.parametrize("k", [1, 8])
def test_input_past_the_columns_is_dropped(k):
    """Elements past the loaded matrix's columns (and past ``max_cols``) are dropped
    (rtl/eie/nonzero.py ``cols``): the results are the matrix times the first ``cols``
    elements (a case the mutation screen asked for). Native: run_jobs would refuse the shape.
    ``k`` 8: the scanning front end, whose 129-bit input words the harness sends as three
    int64 chunks; there the same build also runs the directed cases at full input speed
    (counters == cycle model)."""
    from rtl.common.config import build_config
    from rtl.eie.array import EIEArray
    from verif import native
    from verif.cases import OVERLONG_SEED, overlong, overlong_jobs
    from rtl.common.protocol import packed_inputs
    from verif.spmv_eie import TOPLEVEL, prepare_jobs
    cfg = BASE.with_(arith=Arith(max_cols=24, requant=Requant(4, True)), frontend_width=k)  # verif.mutation.eie_config
    print(f"seed {OVERLONG_SEED}")
    prepared, arrays = prepare_jobs(overlong_jobs(cfg), cfg)
    rng = np.random.default_rng(6)
    jobs = [{"load": arrays[f"load_{i}"], "x": packed_inputs(overlong(arrays[f"x_{i}"], cfg.max_cols + 3, rng), 16, k),
             "rows": int(arrays[f"rows_{i}"])} for i in range(len(prepared))]
    dut = EIEArray(build_config(cfg))
    exe = native.build(dut, toplevel=TOPLEVEL, eie=True, n_pes=cfg.n_pes)
    results, _ = native.run(exe, jobs, out_bits=16, eie=True, n_pes=cfg.n_pes, chunks=native.x_chunks(dut))
    for (m, a2, expect, _, _), r, j in zip(prepared, results, jobs):
        assert j["x"].shape[1] == -(-(cfg.max_cols + 3) // k) and cfg.max_cols + 3 > a2.shape[0]
        np.testing.assert_array_equal(r["y"], expect)
    if k > 1:
        seed = 31
        print(f"seed {seed}")
        rng = np.random.default_rng(seed)
        res = run_jobs(directed_jobs(rng, cfg) + random_jobs(rng, cfg, 2), cfg, backend="native", processes=1,
                       out_pacing=0.5, load_pacing=0.7, seed=1)
        check_counters(res, cfg)


def test_vector_counter_over_many_vectors():
    """4100 vectors in one run: ``vectors`` counts each (run_jobs checks it after every vector
    against the vectors sent), so its bits up to 12 move (verif.cases.many_vectors_case,
    added after mutation screening). Native: the cocotb testbench would take minutes."""
    from verif.cases import MANY_VECTORS, MANY_VECTORS_SEED, many_vectors_case
    from verif.spmv_eie import run_jobs
    print(f"seed {MANY_VECTORS_SEED}")
    cfg = BASE.with_(arith=Arith(max_cols=24, requant=Requant(4, True)))  # verif.mutation.eie_config
    w, x = many_vectors_case()
    r = run_jobs([(w[:1], x[:, :3]), (w, x)], cfg, backend="native", processes=1)
    assert r[1]["vectors"][-1] == MANY_VECTORS + 3 and r[1]["y"].shape == (2, MANY_VECTORS)


@pytest.mark.parametrize("sim", [pytest.param("icarus"), pytest.param("verilator", marks=pytest.mark.slow)])
def test_dense_matrix_fills_every_pe(sim):
    """A fully dense max_rows x max_cols matrix: every PE holds its most entries, so PE
    pointers reach bit 7 (verif.cases.eie_dense_jobs, added after mutation screening: EIE
    mutant 198). Results exact, counters equal to the cycle model."""
    from verif.cases import LONG_RUN_SEED, eie_dense_jobs
    print(f"seed {LONG_RUN_SEED}")
    jobs = eie_dense_jobs(BASE)
    assert jobs[0][0].size // BASE.n_pes >= 128
    check_counters(run_jobs(jobs, BASE, sim=sim, pacing=1.0, out_pacing=1.0, seed=8), BASE)


@pytest.mark.parametrize("wide_timing", [False, True])
def test_total_cycles_match_cycle_model_with_and_without_readout_register(wide_timing):
    """First vector of each job, input and results at full speed: ``total_cycles`` equals the
    cycle model's, which counts the wide array's read-out register as one more cycle."""
    cfg = BASE.with_(n_pes=2, wide_timing=wide_timing)
    rng = np.random.default_rng(11)
    print("seed 11")
    jobs = random_jobs(rng, cfg, 3)
    res = run_jobs(jobs, cfg, sim="icarus", pacing=1.0, out_pacing=1.0, load_pacing=1.0, seed=3)
    for r in res:
        want = simulate_vector(r["matrix"], r["x"][:, 0], cfg)["total_cycles"]
        assert r["total_cycles"][0] == want, (wide_timing, r["matrix"].shape)
