"""FPGA flow: one small synthesis + place-and-route per target, the not-fit error, CLI bad input."""
import json
import subprocess
import sys

import pytest
from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import io

from model.hw.engines import NAMES, get
from model.errors import SparseFlowError
from scripts import cli
from scripts.synth import format_table
from verif.synth import (TARGETS, parse_critical_path, parse_memories, run_flow,
                         short_cell, synthesize, write_plan)
from verif.tools import tool_env


@pytest.mark.parametrize("target", list(TARGETS))
def test_small_design_synthesizes(target, tmp_path):
    r = synthesize("standin", 1, target, rows=4, cols=8, density=0.5, out=tmp_path / "b", sim=None)
    assert r["fits"] and r["logic_cells"] > 0 and r["ffs"] > 0 and r["fmax_mhz"] > 0
    assert 0 < r["logic_cells"] <= r["logic_cells_available"]
    assert r["dsp"] >= 1  # the multiplier went to a DSP block
    assert r["bitstream_bytes"] > 1000
    assert r["critical_path"]["delay_ns"] > 0
    assert "engine.xbuf" in " ".join(m["memory"] for m in r["memories"])
    assert "Fmax" in format_table([r])


class _DSPHog(Elaboratable):
    """Nine registered 16x16 multipliers feeding an LED: one more than the UP5K's 8 DSP blocks.
    (A design too big in block RAM would do too, but Yosys takes minutes over a large ROM.)"""

    def elaborate(self, platform):
        m = Module()
        lfsr = Signal(32, init=1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[6] ^ lfsr[7]))
        acc = Signal(32)
        prods = []
        for i in range(9):
            a, b, p = Signal(16), Signal(16), Signal(32)
            m.d.sync += [a.eq(lfsr[:16] + i), b.eq(lfsr[16:] ^ (i * 0x1111)), p.eq(a * b)]
            prods.append(p)
        x = prods[0]
        for p in prods[1:]:
            x = x ^ p
        m.d.sync += acc.eq(x)
        m.submodules.led = led = io.Buffer("o", platform.request("led_g", 0, dir="-"))
        m.d.comb += led.o.eq(acc.xor())
        return m


class _Blink(Elaboratable):
    """A counter on the target's PASS LED: the smallest design with a platform resource."""

    def __init__(self, led):
        self.led = led

    def elaborate(self, platform):
        m = Module()
        count = Signal(8)
        m.d.sync += count.eq(count + 1)
        m.submodules.led = led = io.Buffer("o", platform.request(*self.led, dir="-"))
        m.d.comb += led.o.eq(count[-1])
        return m


@pytest.mark.parametrize("key", list(TARGETS))
def test_build_plan_gives_the_flow_its_commands(key, tmp_path):
    # The flow runs the command lines of Amaranth's build plan (build_top.json, Amaranth 0.5.10)
    # with its overrides; this fails loudly if the plan stops carrying them.
    target = TARGETS[key]
    commands, board_hz = write_plan(_Blink(target.pass_led), target, tmp_path, 77.0, seed=7)
    pnr, pack = f"nextpnr-{target.family}", "icepack" if target.family == "ice40" else "ecppack"
    assert list(commands) == ["yosys", pnr, pack]
    env = tool_env()
    assert [c[0] for c in commands.values()] == [env["YOSYS"], env[pnr.upper().replace("-", "_")], env[pack.upper()]]
    args = " ".join(commands[pnr])
    assert "--seed 7" in args and "--report report.json" in args and "--timing-allow-fail" in args
    assert "--router" not in args  # nextpnr's default router unless asked
    commands, _ = write_plan(_Blink(target.pass_led), target, tmp_path / "r2", 77.0, seed=7, router="router2")
    assert "--router router2" in " ".join(commands[pnr]) and "--tmg-ripup" not in " ".join(commands[pnr])
    commands, _ = write_plan(_Blink(target.pass_led), target, tmp_path / "t2", 77.0, seed=7, router="router2",
                             pnr_timing="high")
    assert "--router router2 --tmg-ripup --placer-heap-timingweight 30" in " ".join(commands[pnr])
    assert ("--up5k --package sg48" if key == "ice40-up5k" else "--85k --package CABGA381 --speed 6") in args
    assert "--compress" not in commands[pack]  # plain bitstreams on both boards
    assert "synth_" + target.family in (tmp_path / "top.ys").read_text()
    assert board_hz == (12e6 if key == "ice40-up5k" else 25e6)
    assert "77" in (tmp_path / ("top.pcf" if target.family == "ice40" else "top.lpf")).read_text()


def test_design_too_big_for_up5k(tmp_path):
    with pytest.raises(SparseFlowError, match=r"^design does not fit iCEBreaker.*ICESTORM_DSP"):
        run_flow(_DSPHog(), TARGETS["ice40-up5k"], tmp_path / "hog", 50.0, bitstream=False)


@pytest.mark.slow
def test_cli_not_fit_is_one_line(tmp_path, capsys):
    rc = cli.main(["synth", "--engine", "eie", "--pes", "16", "--target", "ice40-up5k", "--sim", "none",
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("sparseflow: error: design does not fit")


def test_report_parsers():
    log = ("mapping memory top.a.w via $__ICE40_RAM4K_\nusing FF mapping for memory top.b\n"
           "mapping memory top.c via $__TRELLIS_DPR16X4_\n")
    kinds = {m["memory"]: m["kind"] for m in parse_memories(log)}
    assert kinds == {"top.a.w": "bram", "top.b": "logic", "top.c": "lutram"}
    rep = {"critical_paths": [{"path": [
        {"type": "clk-to-q", "delay": 1.0, "from": {"cell": "a.q_SB_DFF"}, "to": {"cell": "b_SB_LUT4_O"}},
        {"type": "routing", "delay": 2.0, "from": {"cell": "b"}, "to": {"cell": "c"}},
        {"type": "logic", "delay": 0.5, "from": {"cell": "c"}, "to": {"cell": "d.acc_SB_DFF_Q"}}]}]}
    cp = parse_critical_path(rep)
    assert cp["from"] == "a.q" and cp["to"] == "d.acc" and cp["delay_ns"] == 3.5 and cp["logic_levels"] == 1
    assert short_cell("x.y$abc") == "x.y"


def test_collision_free_marks_only_tagged_memories():
    from amaranth.back import rtlil
    from amaranth.lib.memory import Memory
    from rtl.common.memory import collision_free_memory
    from verif.synth import mark_collision_free

    class Two(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            for name, mem in (("free", collision_free_memory(shape=8, depth=16, init=[])),
                              ("plain", Memory(shape=8, depth=16, init=[]))):
                m.submodules[name] = mem
                w, r = mem.write_port(), mem.read_port()
                addr = Signal(4, name=f"{name}_addr")
                m.d.comb += [w.addr.eq(addr), r.addr.eq(addr), w.en.eq(1), w.data.eq(addr)]
                m.d.sync += Signal(8, name=f"{name}_q").eq(r.data)
            return m

    text = rtlil.convert(Two(), ports=[])
    out, n = mark_collision_free(text)
    assert n == 1
    masks = [ln.split()[-1] for ln in out.splitlines() if "COLLISION_X_MASK" in ln]
    assert sorted(masks) == ["1'0", "1'1"]  # the tagged port only
    assert mark_collision_free(out)[0] == out  # idempotent


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "scripts.cli", "synth", *argv], capture_output=True, text=True)


@pytest.mark.parametrize("argv, msg", [
    (["--engine", "eie", "--target", "ice40-up5k", "--lanes", "2"], "--lanes is for"),
    (["--engine", "2:4", "--target", "ice40-up5k", "--pes", "2"], "--pes is for"),
    (["--engine", "eie", "--target", "ice40-up5k", "--pes", "0"], "must be >= 1"),
    (["--engine", "dense", "--target", "ecp5-85f", "--cols", "6"], "multiple of 4"),
    (["--engine", "eie", "--target", "ice40-up5k", "--density", "2"], "density"),
    (["--engine", "eie", "--target", "ice40-up5k", "--freq", "-5"], "--freq must be positive"),
    (["--engine", "eie", "--target", "virtex"], "invalid choice"),
    (["--engine", "2:4", "--target", "ice40-up5k", "--fifo-depth", "2"], "--fifo-depth is for the EIE"),
    (["--engine", "eie", "--target", "ice40-up5k", "--fifo-depth", "0"], "--fifo-depth must be in 1..1024"),
    (["--engine", "eie", "--target", "ecp5-85f", "--pnr-timing", "high"], "--pnr-timing high needs --router router2"),
])
def test_cli_bad_input(argv, msg):
    out = _cli(*argv)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in out.stderr, out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("engine, size", [(e, 4) for e in NAMES])
def test_engines_synthesize_ice40_json(engine, size, tmp_path, capsys):
    flag = "--" + get(engine).size_option
    rc = cli.main(["synth", "--engine", engine, flag, str(size), "--target", "ice40-up5k",
                   "--out", str(tmp_path / "o"), "--json"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0 and r["fits"] and r["engine_cycles"] > 0 and r["fmax_mhz"] > 0
    assert r["dsp_blocks_with_logic"] == 0  # only multipliers in the DSPs: the Fmax times the rest


def test_dsp_blocks_with_logic_counts_packed_registers_and_adders():
    from verif.synth import dsp_blocks_with_logic

    def mac(**params):
        base = {"A_REG": "0", "B_REG": "0", "PIPELINE_16x16_MULT_REG1": "0", "TOPOUTPUT_SELECT": "11",
                "BOTOUTPUT_SELECT": "11"}
        base.update(params)
        return {"type": "SB_MAC16", "parameters": base}
    netlist = {"modules": {"top": {"cells": {
        "plain": mac(), "lut": {"type": "SB_LUT4", "parameters": {}},
        "a_reg": mac(A_REG="1"), "pipe": mac(PIPELINE_16x16_MULT_REG1="00000000000000000000000000000001"),
        "adder": mac(TOPOUTPUT_SELECT="01")}}}}
    assert dsp_blocks_with_logic(netlist) == 3
    assert dsp_blocks_with_logic({"modules": {"top": {"cells": {"plain": mac()}}}}) == 0
