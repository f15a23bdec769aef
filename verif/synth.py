"""FPGA flow: board top -> Yosys -> nextpnr -> bitstream, and the numbers it reports.

One function, :func:`synthesize`, does the whole trip for one engine on one target:

1. builds a reproducible random matrix case (``rtl.board.cases``) and the board self-test top
   around the engine (``rtl.board.top``), weights initialised into the engine's memories;
2. optionally simulates that same top with cocotb (``verif.board_tb``): the self-test must light
   PASS, and its cycle counter gives the measured cycles per run (for throughput);
3. asks amaranth-boards for a build plan (``do_build=False``: the ULX3S platform would otherwise
   require openFPGALoader), writes it to the output folder and runs the plan's own commands
   (:func:`plan_commands`) there one step at a time with relative paths (YoWASP tools only see
   the working directory): ``synth_ice40 -dsp`` / ``synth_ecp5`` (multipliers to SB_MAC16 /
   MULT18X18D), nextpnr with ``--report`` and the clock constrained at the goal frequency (both
   through the plan's documented overrides), then icepack / ecppack;
4. reads nextpnr's JSON report (utilization, Fmax, critical path) and Yosys' ``stat -json`` and
   log (flip-flops, which memories became block RAM).

The clock constraint: both boards have slow oscillators (12 MHz iCEBreaker, 25 MHz ULX3S). The
top is constrained at the goal frequency instead (tighter), so nextpnr optimises for and reports
whether the engine could run there behind a PLL; the bitstream itself runs at the board clock
(the UART divisor is computed from the board's real oscillator).

Nothing is cached: every call regenerates every file in its output folder. This is the library
half of ``sparseflow synth`` (``scripts/cmd_synth.py`` is the command line); benchmarks and tests
call :func:`synthesize` and :func:`run_flow` directly.
"""
from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from model.errors import SparseFlowError

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    key: str
    family: str          # "ice40" or "ecp5"
    board: str
    platform: str        # "module:Class" in amaranth_boards
    goal_mhz: float
    pass_led: tuple
    fail_led: tuple
    cell: str            # nextpnr logic cell type
    ff: str | None       # nextpnr flip-flop type (None: count from Yosys, they share the LC)
    bram: str
    dsp: str
    synth_opts: str
    eie_fifo_depth: int  # default EIE queue depth: small FPGAs spend few cells on queues
    # default EIE front-end width: 1 on the UP5K, where the 8-wide scanning front end placed
    # at 36.8 MHz (routing-bound at 70 % of the chip; docs/synthesis.md)
    eie_frontend_width: int = 8

    def platform_class(self):
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)


TARGETS = {
    "ice40-up5k": Target("ice40-up5k", "ice40", "iCEBreaker (iCE40UP5K-SG48)",
                         "amaranth_boards.icebreaker:ICEBreakerPlatform", 50.0,
                         ("led_g", 0), ("led_r", 0), "ICESTORM_LC", None, "ICESTORM_RAM",
                         "ICESTORM_DSP", "-dsp", 2, 1),
    "ecp5-85f": Target("ecp5-85f", "ecp5", "ULX3S 85F (LFE5U-85F-6BG381)",
                       "amaranth_boards.ulx3s:ULX3S_85F_Platform", 100.0,
                       ("led", 0), ("led", 1), "TRELLIS_COMB", "TRELLIS_FF", "DP16KD",
                       "MULT18X18D", "", 8),  # synth_ecp5 maps multipliers to MULT18X18D by default
}

# Yosys cell names counted as flip-flops / LUTs in `stat -json`.
_FF_RE = re.compile(r"^(SB_DFF\w*|TRELLIS_FF|\$_DFF\w*)$")
_LUT_RE = re.compile(r"^(SB_LUT4|LUT4)$")


def progress(msg: str) -> None:
    print(f"synth: {msg}", file=sys.stderr, flush=True)


def get_target(key: str) -> Target:
    if key not in TARGETS:
        raise SparseFlowError(f"unknown target {key!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[key]


def make_platform(target: Target, freq_mhz: float | None):
    """The board platform with its oscillator constrained at ``freq_mhz``; also its real frequency."""
    from amaranth.build import Clock, Resource
    plat = target.platform_class()()
    res = plat.lookup(plat.default_clk)
    board_hz = res.clock.frequency
    if freq_mhz:
        plat.resources[res.name, res.number] = Resource(
            res.name, res.number, *res.ios, Clock(freq_mhz * 1e6), res.attrs)
    return plat, board_hz


def _run(cmd: list[str], cwd: Path, log: Path, step: str, timeout: float | None) -> subprocess.CompletedProcess:
    from verif.tools import tool_env
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SparseFlowError(f"{cmd[0]} not found; run `make setup`")
    except subprocess.TimeoutExpired:
        raise SparseFlowError(f"{step} did not finish within {timeout:.0f} s")
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    progress(f"{step} done in {time.monotonic() - t0:.1f} s")
    return proc


# Checked against Amaranth 0.5.10: each platform build plan carries ``build_<name>.json``, its
# command lines as argument lists, beside the shell and batch scripts.
PLAN_COMMANDS = "build_top.json"


def plan_commands(out_dir: Path) -> dict[str, list[str]]:
    """The command lines of the build plan extracted in ``out_dir``, by step (``yosys``,
    ``nextpnr-ice40``/``nextpnr-ecp5``, ``icepack``/``ecppack``), each program replaced by the
    one :func:`verif.tools.tool_env` names (the variable Amaranth's own script reads)."""
    from verif.tools import tool_env
    path = Path(out_dir) / PLAN_COMMANDS
    try:
        commands = json.loads(path.read_text())["commands"]
    except (OSError, ValueError, KeyError) as exc:
        raise SparseFlowError(f"the Amaranth build plan has no command list {PLAN_COMMANDS} ({exc}); "
                              f"this flow was written for Amaranth 0.5") from None
    env = tool_env()
    out = {}
    for program, *args in commands:
        var = program.upper().replace("-", "_")  # how Amaranth names a tool's variable
        if var not in env:
            raise SparseFlowError(f"the Amaranth build plan runs {program}, which verif.tools does not provide")
        out[program] = [env[var], *args]
    return out


def _not_fit_message(text: str) -> str | None:
    """One line from nextpnr's errors when the design does not fit the device."""
    errors = [ln.strip()[len("ERROR:"):].strip() for ln in text.splitlines() if ln.strip().startswith("ERROR:")]
    for err in errors:
        if re.search(r"(too many|no BELs remaining|Unable to place|does not fit|only has|exceeds|available)", err, re.I):
            return err
    return None


def _utilization_overflow(util: dict) -> list[str]:
    return [f"{k} {v['used']}/{v['available']}" for k, v in util.items() if v.get("used", 0) > v.get("available", 0)]


def parse_memories(yosys_log: str) -> list[dict]:
    """Which memories Yosys mapped to what (``memory_libmap``): block RAM, LUT RAM or flip-flops."""
    mems = {}
    for m in re.finditer(r"mapping memory (\S+) via (\S+)", yosys_log):
        mems[m.group(1)] = m.group(2)
    for m in re.finditer(r"using FF mapping for memory (\S+)", yosys_log):
        mems.setdefault(m.group(1), "FFs/LUTs")  # a ROM this way is folded into logic
    out = []
    for name, how in mems.items():
        kind = "bram" if re.search(r"RAM4K|DP16K|PDPW16K|RAM40|BRAM", how) else (
            "lutram" if re.search(r"DPR16X4|TRELLIS_DPR", how) else "logic")
        out.append({"memory": name.lstrip("\\"), "mapped_to": how.lstrip("\\"), "kind": kind})
    return out


def short_cell(name: str | None) -> str | None:
    """A placed cell's name without the suffixes Yosys/nextpnr add (``_SB_LUT4_O...``, ``$...``)."""
    if not name:
        return name
    short = re.split(r"_SB_|_TRELLIS|_LUT4|_DP16KD|_MULT18|_DFF|_CCU2|\$", name, maxsplit=1)[0]
    return short if short and not short.endswith(".") else name[:80]


def parse_critical_path(report: dict) -> dict | None:
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    best = None
    for p in paths:
        steps = p.get("path") or []
        if not steps:
            continue
        total = sum(float(s.get("delay", 0.0)) for s in steps)
        if best is None or total > best["delay_ns"]:
            logic = [s for s in steps if s.get("type") == "logic"]
            best = {
                "from": short_cell(steps[0].get("from", {}).get("cell")),
                "to": short_cell(steps[-1].get("to", {}).get("cell")),
                "delay_ns": round(total, 3),
                "logic_levels": len(logic),
                "routing_ns": round(sum(float(s.get("delay", 0)) for s in steps if s.get("type") == "routing"), 3),
                "through": list(dict.fromkeys(short_cell(s.get("to", {}).get("cell")) for s in logic))[:20],
            }
    return best


def mark_collision_free(rtlil: str) -> tuple[str, int]:
    """Set ``COLLISION_X_MASK`` on the read ports of memories tagged
    :data:`rtl.common.memory.COLLISION_FREE`; returns the new RTLIL and how many ports changed.

    Amaranth asks every read port for the old data when a write hits its address in the same
    cycle; iCE40/ECP5 block RAMs leave that undefined, so Yosys would add soft logic (a copy of
    the write data and a multiplexer per port) that these memories do not need.

    Amaranth has no public way to say "collision result undefined", so this edits the RTLIL text
    (checked against Amaranth 0.5.10: ``$memrd_v2`` cells with a ``\\MEMID`` and an all-zero
    ``\\COLLISION_X_MASK`` parameter). ``tests/test_synth.py`` fails if that text changes.
    """
    from rtl.common.memory import COLLISION_FREE
    tagged, attrs, module, memid, changed = set(), [], None, None, 0
    out = []
    for line in rtlil.splitlines(keepends=True):
        words = line.split()
        if words[:1] == ["module"]:
            module = words[1]
        elif words[:1] == ["attribute"]:
            attrs.append(words[1])
        elif words[:1] == ["memory"]:
            if "\\" + COLLISION_FREE in attrs:
                tagged.add((module, words[-1]))
        elif words[:2] == ["cell", "$memrd_v2"]:
            memid = ""
        elif memid is not None and words[:2] == ["parameter", "\\MEMID"]:
            memid = words[2].strip('"').replace("\\\\", "\\")
        elif memid is not None and words[:2] == ["parameter", "\\COLLISION_X_MASK"] and (module, memid) in tagged:
            width = int(words[2].split("'")[0])
            if width:
                line = line.replace(words[2], f"{width}'" + "1" * width)
                changed += 1
        elif words[:1] == ["end"]:
            memid = None
        if words[:1] != ["attribute"]:
            attrs = []
        out.append(line)
    return "".join(out), changed


# SB_MAC16 parameters that put registers or the post-adder inside the DSP block; nextpnr models
# every DSP port as a register boundary, so logic moved in there is not timed.
_MAC16_INSIDE = ("A_REG", "B_REG", "C_REG", "D_REG", "TOP_8x8_MULT_REG", "BOT_8x8_MULT_REG",
                 "PIPELINE_16x16_MULT_REG1", "PIPELINE_16x16_MULT_REG2")


def dsp_blocks_with_logic(netlist: dict) -> int:
    """How many iCE40 ``SB_MAC16`` cells of a Yosys JSON netlist hold more than a combinational
    16x16 multiplier (internal registers, or an output other than the multiplier's)."""
    n = 0
    for module in netlist.get("modules", {}).values():
        for cell in module.get("cells", {}).values():
            if cell.get("type") != "SB_MAC16":
                continue
            p = cell.get("parameters", {})
            regs = any(int(str(p.get(k, "0")), 2) for k in _MAC16_INSIDE)
            outs = any(int(str(p.get(k, "11")), 2) != 3 for k in ("TOPOUTPUT_SELECT", "BOTOUTPUT_SELECT"))
            n += regs or outs
    return n


def run_flow(top, target: Target, out_dir: Path, freq_mhz: float, *, seed: int = 1, router: str = "router1",
             timeout: float | None = None, bitstream: bool = True, pnr_timing: str = "default") -> dict:
    """Synthesize, place and route ``top`` (an Elaboratable using platform resources) in ``out_dir``.

    Returns the parsed numbers; raises :class:`SparseFlowError` with one line when the design does
    not fit or a tool fails.
    """
    from model.outputs import claim_dir
    out_dir = Path(out_dir)
    # Only a folder SparseFlow wrote is cleared (nothing stale survives); anything else is refused.
    with claim_dir(out_dir, "synth", clear=True, legacy=_legacy_build):
        return _flow(top, target, out_dir, freq_mhz, seed=seed, timeout=timeout, bitstream=bitstream,
                     router=router, pnr_timing=pnr_timing)


def _legacy_build(folder: Path):
    """A flow folder under this project's build/ written before output markers existed: ours."""
    from model.outputs import listing
    build = (ROOT / "build").resolve()
    return set(listing(folder)) if build in folder.resolve().parents else None


def write_plan(top, target: Target, out_dir: Path, freq_mhz: float, *, seed: int,
               router: str = "router1", pnr_timing: str = "default") -> tuple[dict, float]:
    """Elaborate ``top`` for ``target`` into an Amaranth build plan in ``out_dir`` (Yosys writes
    ``stat.json``, nextpnr a JSON report, placement seed ``seed``) with the collision-free memories
    marked; return the plan's commands by step (:func:`plan_commands`) and the board's clock in Hz."""
    plat, board_hz = make_platform(target, freq_mhz)
    progress(f"elaborating for {target.board}")
    # ecppack_opts: the ULX3S platform would add --compress; the flow writes plain bitstreams.
    plan = plat.build(top, name="top", do_build=False, synth_opts=target.synth_opts,
                      script_after_synth="tee -q -o stat.json stat -json",
                      nextpnr_opts=f"--report report.json --timing-allow-fail --seed {seed}"
                                   + ("" if router == "router1" else f" --router {router}")
                                   + PNR_TIMING[pnr_timing],
                      ecppack_opts="")
    plan.extract(out_dir)
    il = Path(out_dir) / "top.il"
    text, marked = mark_collision_free(il.read_text())
    il.write_text(text)
    if marked:
        progress(f"{marked} block RAM read ports marked collision-free (no soft read-old-data logic)")
    return plan_commands(out_dir), board_hz


def _flow(top, target: Target, out_dir: Path, freq_mhz: float, *, seed: int, timeout: float | None,
          bitstream: bool, router: str = "router1", pnr_timing: str = "default") -> dict:
    commands, board_hz = write_plan(top, target, out_dir, freq_mhz, seed=seed, router=router,
                                    pnr_timing=pnr_timing)
    progress(f"yosys (synth_{target.family} {target.synth_opts}".rstrip() + ")...")
    y = _run(commands["yosys"], out_dir, out_dir / "yosys.log", "yosys", timeout)
    if y.returncode != 0:
        rpt = (out_dir / "top.rpt").read_text(errors="replace") if (out_dir / "top.rpt").exists() else ""
        err = [ln.strip() for ln in (y.stderr + y.stdout + rpt).splitlines() if "ERROR" in ln]
        raise SparseFlowError(f"yosys failed: {err[0] if err else 'exit ' + str(y.returncode)} (log: {out_dir / 'top.rpt'})")
    ylog = (out_dir / "top.rpt").read_text(errors="replace")
    stat = json.loads((out_dir / "stat.json").read_text())
    design = stat.get("design") or next(iter(stat.get("modules", {}).values()), {})
    cells = design.get("num_cells_by_type", {})
    dsp_logic = dsp_blocks_with_logic(json.loads((out_dir / "top.json").read_text())) if target.family == "ice40" else 0
    if dsp_logic:
        progress(f"warning: {dsp_logic} SB_MAC16 blocks hold registers or the post-adder, which nextpnr does not time")

    tool = "nextpnr-" + target.family
    progress(f"{tool} (place and route at {freq_mhz:g} MHz)...")
    n = _run(commands[tool], out_dir, out_dir / "nextpnr.log", tool, timeout)
    # The plan runs nextpnr with --quiet: its full log is top.tim.
    tim = out_dir / "top.tim"
    text = n.stderr + n.stdout + (tim.read_text(errors="replace") if tim.exists() else "")
    report = json.loads((out_dir / "report.json").read_text()) if (out_dir / "report.json").exists() else {}
    util = report.get("utilization", {})
    if n.returncode != 0:
        why = _not_fit_message(text)
        over = _utilization_overflow(util)
        if why or over:
            raise SparseFlowError(f"design does not fit {target.board}: {why or ', '.join(over)}")
        err = [ln for ln in text.splitlines() if "ERROR" in ln]
        raise SparseFlowError(f"{tool} failed: {err[0].strip() if err else 'exit ' + str(n.returncode)} "
                              f"(log: {tim})")
    over = _utilization_overflow(util)
    if over:
        raise SparseFlowError(f"design does not fit {target.board}: {', '.join(over)}")

    fmax = report.get("fmax", {})
    clocks = {k: v for k, v in fmax.items()}
    achieved = min((float(v["achieved"]) for v in clocks.values()), default=0.0)

    def used(kind):
        return int(util.get(kind, {}).get("used", 0))

    def avail(kind):
        return int(util.get(kind, {}).get("available", 0))

    ffs = used(target.ff) if target.ff else sum(v for k, v in cells.items() if _FF_RE.match(k))
    result = {
        "target": target.key, "board": target.board,
        "logic_cells": used(target.cell), "logic_cells_available": avail(target.cell),
        "logic_cell_type": target.cell,
        "lut4": sum(v for k, v in cells.items() if _LUT_RE.match(k)),
        "ffs": ffs,
        "bram": used(target.bram), "bram_available": avail(target.bram), "bram_type": target.bram,
        "dsp": used(target.dsp), "dsp_available": avail(target.dsp), "dsp_type": target.dsp,
        "fmax_mhz": round(achieved, 2), "clock_constraint_mhz": freq_mhz,
        "board_clock_mhz": board_hz / 1e6,
        "fits": True,
        "memories": parse_memories(ylog),
        "critical_path": parse_critical_path(report),
        "yosys_cells": cells,
        "dsp_blocks_with_logic": dsp_logic,
        "out_dir": str(out_dir),
    }
    if bitstream:
        pack = "icepack" if target.family == "ice40" else "ecppack"
        progress(f"{pack}...")
        p = _run(commands[pack], out_dir, out_dir / "pack.log", pack, timeout)
        bit = out_dir / ("top.bin" if target.family == "ice40" else "top.bit")
        if p.returncode != 0 or not bit.exists():
            raise SparseFlowError(f"bitstream packing failed (log: {out_dir / 'pack.log'})")
        result["bitstream"] = str(bit)
        result["bitstream_bytes"] = bit.stat().st_size
    return result


def simulate_selftest(case, clk_hz: float, sim: str = "icarus", corrupt: bool = False,
                      report_stage: bool | None = None) -> dict:
    """Run the board top's self-test in cocotb; return ``{cycles, passed, failed, uart}``."""
    from rtl.board.top import make_selftest
    from verif.runner import simulate
    st = make_selftest(case, clk_hz, corrupt=corrupt, report_stage=report_stage)
    run_dir_case = ROOT / "build" / "board_cases"
    run_dir_case.mkdir(parents=True, exist_ok=True)
    import uuid
    path = run_dir_case / f"case-{uuid.uuid4().hex[:10]}.json"
    path.write_text(json.dumps({"expect": "fail" if corrupt else "pass", "divisor": st.divisor,
                                "max_cycles": st.timeout}))
    name = "board_" + re.sub(r"\W", "", case.engine)
    try:
        run = simulate(st, toplevel=name, test_module="verif.board_tb", sim=sim, case=path)
    except RuntimeError as exc:
        raise SparseFlowError(f"board self-test simulation failed: {exc}")
    finally:
        path.unlink(missing_ok=True)
    return json.loads((run / "board_result.json").read_text())


ROUTERS = ("router1", "router2")  # nextpnr's
# nextpnr timing effort: "high" adds router2's timing-driven rip-up and triples the analytic
# placer's timing weight (default 10): what routes the 64-PE EIE array at 100 MHz on the ECP5.
PNR_TIMING = {"default": "", "high": " --tmg-ripup --placer-heap-timingweight 30"}


def synthesize(engine: str, size: int, target_key: str, *, rows: int = 32, cols: int = 32,
               density: float = 0.25, seed: int = 1, vectors: int = 1, out: Path | None = None,
               freq_mhz: float | None = None, sim: str | None = "icarus", pnr_seed: int = 1,
               timeout: float | None = None, bitstream: bool = True, fifo_depth: int | None = None,
               block: int | None = None, frontend_width: int | None = None, router: str = "router1",
               pnr_timing: str = "default") -> dict:
    """The whole trip for one engine configuration; returns one flat result dictionary.

    ``fifo_depth``: the EIE array's queue depth (default: the target's, 2 on the UP5K where the
    queues' flip-flops are a fifth of the chip, 8 on the ECP5). ``frontend_width``: the EIE
    array's activations per input word (default: the target's, 1 on the UP5K, 8 on the ECP5).
    ``router``: nextpnr's router, ``router1`` (its default) or ``router2`` (faster on designs
    that fill much of the chip). ``pnr_timing``: ``default`` or ``high`` (:data:`PNR_TIMING`,
    router2 only)."""
    if router not in ROUTERS:
        raise SparseFlowError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    if pnr_timing not in PNR_TIMING:
        raise SparseFlowError(f"pnr timing must be one of {', '.join(PNR_TIMING)}, not {pnr_timing!r}")
    if pnr_timing == "high" and router != "router2":
        raise SparseFlowError("high pnr timing needs router2 (its timing-driven rip-up is router2's)")
    from rtl.board.cases import make_case
    from rtl.board.top import BoardTop, make_selftest
    target = get_target(target_key)
    freq = float(freq_mhz or target.goal_mhz)
    if freq <= 0:
        raise SparseFlowError(f"frequency must be positive, not {freq_mhz}")
    if engine == "eie":
        fifo_depth = target.eie_fifo_depth if fifo_depth is None else fifo_depth
        frontend_width = target.eie_frontend_width if frontend_width is None else frontend_width
    elif fifo_depth is not None:
        raise SparseFlowError(f"a queue depth is for the EIE array; the {engine} engine has none")
    elif frontend_width is not None:
        raise SparseFlowError(f"a front-end width is for the EIE array; the {engine} engine has none")
    case = make_case(engine, size, rows, cols, density, seed, vectors, fifo_depth=fifo_depth, block=block,
                     frontend_width=frontend_width)
    _, board_hz = make_platform(target, None)
    result = {"engine": engine, "size": size, "rows": rows, "cols": cols, "density": density,
              "seed": seed, "pnr_seed": pnr_seed, "vectors": vectors, "nnz": int((case.weights != 0).sum()),
              "dense_macs": case.dense_macs, "goal_mhz": target.goal_mhz}
    if engine == "eie":
        result["fifo_depth"] = fifo_depth
        result["frontend_width"] = frontend_width
    if block is not None or engine == "bsr":
        result["block"] = case.cfg.block
        result["multipliers"] = case.cfg.multipliers
    if sim:
        progress(f"simulating the self-test ({sim})...")
        t0 = time.monotonic()
        r = simulate_selftest(case, board_hz, sim)
        progress(f"self-test PASS in {r['cycles']} cycles ({time.monotonic() - t0:.1f} s)")
        result["cycles"] = r["cycles"]
    selftest = make_selftest(case, board_hz)
    top = BoardTop(selftest, target.pass_led, target.fail_led)
    safe = re.sub(r"\W", "", engine)
    if "block" in result:
        safe += f"{case.cfg.block}x{case.cfg.block}"
    out = Path(out) if out else ROOT / "build" / "synth" / f"{target.key}-{safe}-{size}-{rows}x{cols}"
    if router != "router1":
        result["router"] = router
    if pnr_timing != "default":
        result["pnr_timing"] = pnr_timing
    result.update(run_flow(top, target, out, freq, seed=pnr_seed, timeout=timeout, bitstream=bitstream,
                           router=router, pnr_timing=pnr_timing))
    result["meets_goal"] = result["fmax_mhz"] >= target.goal_mhz
    if "cycles" in result:
        # The engine's own cycles: first input word to last result (the self-test adds OVERHEAD).
        from rtl.board.selftest import OVERHEAD
        result["engine_cycles"] = result["cycles"] - OVERHEAD
        macs_per_cycle = case.dense_macs / result["engine_cycles"]
        result["dense_macs_per_cycle"] = round(macs_per_cycle, 4)
        result["throughput_gmacs"] = round(macs_per_cycle * result["fmax_mhz"] / 1e3, 4)
        result["throughput_per_cell"] = round(macs_per_cycle * result["fmax_mhz"] * 1e6 / max(result["logic_cells"], 1), 1)
    return result
