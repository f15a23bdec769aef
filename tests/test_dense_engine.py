"""The dense baseline engine on Icarus and Verilator, bit-exact against model.hw.reference, with
random idle and back-pressure; its cycle counts against the 2:4 engine's on the same matrix."""
import gc

import numpy as np
import pytest

from model.hw.config import Arith, Requant, Sparse24Config
from model.errors import SparseFlowError
from model.hw.formats import nm
from rtl.dense.engine import DenseEngine
from verif.runner import SIMULATORS, lint, to_verilog
from verif.spmv_sparse24 import make_engine, run_spmv

# Constructor-error tests leave half-built components behind; Amaranth warns when they are
# collected, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

# Same configuration as tests/test_sparse24_engine.py: the same lanes and multipliers.
CFG = Sparse24Config(lanes=3, arith=Arith(weight_bits=8, act_bits=16, max_cols=32, requant=Requant(4, True)),
                     max_rows=16)
WAIVERS = ["-Wno-DECLFILENAME", "-Wno-PROCASSINIT", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
           "-Wno-UNUSEDSIGNAL", "-Wno-CASEINCOMPLETE"]  # justified in tests/test_sparse24_engine.py


def with_requant(shift, relu):
    return CFG.with_(arith=Arith(8, 16, max_cols=32, requant=Requant(shift, relu)))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_random_dense_matrices_with_stalls(sim):
    rng = np.random.default_rng(21)
    w = rng.integers(-128, 128, (11, 29))  # odd columns: the last pair holds a zero weight
    w[0] = -128
    x = rng.integers(-32768, 32768, (29, 3))
    x[:, 0] = -32768
    out = run_spmv(w, x, with_requant(0, False), sim=sim, dense=True, pacing=0.5, seed=4)
    assert out["engine"] == "dense" and out["y"].shape == (11, 3)
    assert out["y"][0, 0] == 32767  # saturated
    out = run_spmv(w[:4, :8], x[:8], with_requant(7, True), sim=sim, dense=True, pacing=0.8, seed=5)
    assert (out["y"] >= 0).all()


def test_dense_takes_twice_the_issue_cycles_of_2to4():
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, (12, 32))
    w.reshape(12, 8, 4)[:, :, 1:3] = 0  # 2:4 (positions 0 and 3 kept)
    x = rng.integers(-500, 500, (32, 3))
    sparse = run_spmv(w, x, CFG, sim="icarus")
    dense = run_spmv(w, x, CFG, sim="icarus", dense=True)
    assert (sparse["y"] == dense["y"]).all()
    assert dense["busy"] == 2 * sparse["busy"] == 2 * 3 * 4 * 8
    assert dense["total_cycles"] > 1.6 * sparse["total_cycles"]


def test_dense_init_and_verilog():
    w = np.arange(-8, 8).reshape(2, 8)
    assert "16'hf9f8" in to_verilog(DenseEngine(CFG, init=w), "d")  # init image: (-8, -7) packed
    assert to_verilog(make_engine(with_requant(1, True), dense=True), "d") == \
        to_verilog(make_engine(with_requant(5, False), dense=True), "d")
    lint(make_engine(CFG, dense=True), toplevel="dense_engine", waivers=WAIVERS)


def test_dense_constructor_and_host_errors():
    with pytest.raises(SparseFlowError, match=r"^DenseEngine needs a LaneConfig, not None$"):
        DenseEngine(None)
    with pytest.raises(SparseFlowError, match=r"^DenseEngine init must be a numpy array, not NMMatrix$"):
        DenseEngine(CFG, init=nm.encode(np.zeros((2, 8), int), 8))
    with pytest.raises(SparseFlowError, match=r"^init\[0, 1\] = 300 is out of range for 8-bit signed"):
        DenseEngine(CFG, init=np.array([[0, 300]]))
    with pytest.raises(SparseFlowError, match=r"^weights have 33 columns; the configuration allows 32$"):
        run_spmv(np.zeros((2, 33), int), np.zeros(33, int), CFG, dense=True)
    gc.collect()


def test_dense_config_is_the_lane_config_and_builds_the_same_engine():
    # The dense baseline needs no 2:4 parameters: a DenseConfig (LaneConfig) with the same
    # lanes, widths and sizes gives the same Verilog as the Sparse24Config it used to take,
    # and one whose max_cols is no multiple of 4 is accepted.
    from model.hw.config import DenseConfig, LaneConfig
    assert DenseConfig is LaneConfig and isinstance(CFG, LaneConfig)
    lane = DenseConfig(lanes=CFG.lanes, arith=CFG.arith, max_rows=CFG.max_rows)
    assert to_verilog(make_engine(lane, dense=True), "d") == to_verilog(make_engine(CFG, dense=True), "d")
    odd = DenseConfig(lanes=2, arith=Arith(max_cols=30), max_rows=4)
    assert DenseEngine(odd).words_per_row == 15
    with pytest.raises(SparseFlowError, match=r"^max_cols must be a multiple of 4, not 30$"):
        Sparse24Config(lanes=2, arith=Arith(max_cols=30), max_rows=4)
    gc.collect()
