"""The board self-test top in cocotb: a correct run lights PASS, a corrupted expected ROM lights FAIL,
and the UART report carries the cycle count (checked inside verif/board_tb.py)."""
import pytest

from model.errors import SparseFlowError
from rtl.board.cases import make_case
from rtl.board.selftest import OVERHEAD, SelfTest
from verif.synth import simulate_selftest

CLK_HZ = 12e6  # the iCEBreaker oscillator: the UART divisor the board build uses


@pytest.mark.parametrize("corrupt,report_stage", [(False, False), (True, False), (False, True)],
                         ids=["pass", "fail", "pass_report_stage"])
def test_standin_selftest_icarus(corrupt, report_stage):
    """``report_stage`` (the wide arrays' registered ``done`` before the UART) sends the same
    report."""
    case = make_case("standin", 1, 4, 8, 0.5, seed=3)
    r = simulate_selftest(case, CLK_HZ, "icarus", corrupt=corrupt, report_stage=report_stage)
    assert (r["passed"], r["failed"]) == ((0, 1) if corrupt else (1, 0))
    assert r["uart"] == f"{'F' if corrupt else 'P'} {r['cycles']:08X}\r\n"
    assert r["cycles"] > 4 * 8  # at least one cycle per MAC


@pytest.mark.parametrize("engine", ["eie", pytest.param("2:4", marks=pytest.mark.slow),
                                    pytest.param("dense", marks=pytest.mark.slow),
                                    pytest.param("bsr", marks=pytest.mark.slow)])
def test_engine_selftest_pass_and_fail(engine):
    case = make_case(engine, 2, 8, 16, 0.3, seed=5)
    good = simulate_selftest(case, CLK_HZ, "icarus")
    bad = simulate_selftest(case, CLK_HZ, "icarus", corrupt=True)
    assert (good["passed"], good["failed"]) == (1, 0)
    assert (bad["passed"], bad["failed"]) == (0, 1)
    assert good["cycles"] == bad["cycles"]  # the corruption is in the checker's ROM, not the run
    if engine != "eie":  # one vector: the report is the engine's own count plus the overhead
        assert good["cycles"] == good["engine_cycles"] + OVERHEAD


@pytest.mark.slow  # a Verilator build takes ~20 s; Icarus covers the default run
def test_standin_selftest_verilator():
    case = make_case("standin", 1, 4, 8, 0.5, seed=3)
    assert simulate_selftest(case, CLK_HZ, "verilator")["passed"] == 1


def test_selftest_rejects_bad_arguments():
    import gc
    import warnings
    case = make_case("standin", 1, 2, 4, 1.0)
    with warnings.catch_warnings():  # the half-built components are garbage, not forgotten designs
        warnings.simplefilter("ignore")
        with pytest.raises(SparseFlowError, match="too slow"):
            SelfTest(case.build_engine(), case.x_words(), case.y_words(), act_bits=16, out_bits=26,
                     clk_hz=115200)
        with pytest.raises(SparseFlowError, match="at least one"):
            SelfTest(case.build_engine(), [], case.y_words(), act_bits=16, out_bits=26, clk_hz=12e6)
        gc.collect()


@pytest.mark.parametrize("kwargs, msg", [
    (dict(engine="bogus"), "unknown engine"),
    (dict(density=0.0), "density"),
    (dict(engine="2:4", cols=6), "multiple of 4"),
    (dict(rows=0), "rows"),
])
def test_make_case_errors(kwargs, msg):
    args = dict(engine="eie", size=2, rows=8, cols=8, density=0.5)
    args.update(kwargs)
    with pytest.raises(SparseFlowError, match=msg):
        make_case(**args)


def test_case_expected_is_reference():
    from model.hw.reference import layer
    case = make_case("2:4", 2, 8, 16, 0.6, seed=2, vectors=2)
    for x, y in zip(case.xs, case.expected):
        assert (layer(case.weights, x, case.arith) == y).all()
    g = case.weights.reshape(8, 4, 4)
    assert ((g != 0).sum(axis=2) <= 2).all()  # really 2:4
    words = case.y_words(corrupt=True)
    assert words[0][0] == case.expected[0][0] ^ 1 and words[-1][1]


def test_report_read_when_done_rises_long_before_the_poll():
    """The testbench polls ``done`` every 64 cycles while the UART report starts the cycle it
    rises: here (2:4, 3 lanes, 32x32, the synthesis sweep's UP5K point) done rises 60 cycles
    before the poll sees it, which a receiver started after the poll misread ("UART stop bit
    missing"). The receiver now listens from reset."""
    case = make_case("2:4", 3, 32, 32, 0.25, seed=1)
    r = simulate_selftest(case, CLK_HZ, "icarus")
    assert (r["passed"], r["failed"]) == (1, 0)
    assert r["uart"] == f"P {r['cycles']:08X}\r\n"
