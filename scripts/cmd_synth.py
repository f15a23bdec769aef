"""``sparseflow synth``: one engine through Yosys + nextpnr to a bitstream, with its resources and Fmax."""
from __future__ import annotations

HELP = "synthesize an engine with its board self-test for iCE40 UP5K or ECP5 85F (Yosys + nextpnr)"

TARGETS = ("ice40-up5k", "ecp5-85f")


def add_arguments(p) -> None:
    from model.hw.engines import NAMES
    from rtl.board.cases import STANDIN
    p.add_argument("--engine", required=True, choices=NAMES + (STANDIN,), metavar="{" + ",".join(NAMES) + "}",
                   help="which engine to build")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--pes", type=int, help="EIE processing elements (default 4)")
    size.add_argument("--lanes", type=int, help="2:4 / dense / bsr lanes, 2 multipliers each (default 4)")
    p.add_argument("--block", type=int, choices=(2, 4), help="bsr: block size, 2x2 or 4x4 (default 4)")
    p.add_argument("--fifo-depth", type=int, help="EIE queue depth per PE (default: 2 on ice40-up5k, 8 on ecp5-85f)")
    p.add_argument("--frontend-width", type=int, metavar="K",
                   help="EIE activations per input word, scanned for non-zeros (default: 1 on ice40-up5k, "
                        "8 on ecp5-85f; 1: one element)")
    p.add_argument("--target", required=True, choices=TARGETS, help="FPGA and board")
    p.add_argument("--rows", type=int, default=32, help="matrix rows (default 32)")
    p.add_argument("--cols", type=int, default=32, help="matrix columns (default 32)")
    p.add_argument("--density", type=float, default=0.25,
                   help="fraction of non-zero weights (bsr: of non-zero blocks; default 0.25)")
    p.add_argument("--seed", type=int, default=1, help="random matrix seed (default 1)")
    p.add_argument("--pnr-seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--router", choices=("router1", "router2"), default="router1",
                   help="nextpnr router (default router1; router2 is faster on designs that fill much of the chip)")
    p.add_argument("--pnr-timing", choices=("default", "high"), default="default",
                   help="nextpnr timing effort: high adds timing-driven rip-up and a 3x placer timing weight "
                        "(needs --router router2; routes the 64-PE EIE array at 100 MHz on the ECP5)")
    p.add_argument("--vectors", type=int, default=1, help="input vectors in the self-test (default 1)")
    p.add_argument("--freq", type=float, help="clock constraint in MHz (default: the goal, 50 iCE40 / 100 ECP5)")
    p.add_argument("--sim", choices=("icarus", "verilator", "none"), default="icarus",
                   help="simulate the self-test first to verify it and measure cycles (default icarus)")
    p.add_argument("--out", help="output folder: new, empty or one SparseFlow wrote, which is cleared "
                   "(default build/synth/<target>-<engine>-<size>-<rows>x<cols>)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from model.hw.engines import EIE
    from model.errors import SparseFlowError
    from rtl.board.cases import STANDIN
    from scripts.cli import print_json
    from verif.synth import synthesize

    is_eie = args.engine == EIE.name
    if is_eie and args.lanes is not None:
        raise SparseFlowError("--lanes is for the 2:4 and dense engines; the EIE array takes --pes")
    if not is_eie and args.pes is not None:
        raise SparseFlowError(f"--pes is for the EIE array; the {args.engine} engine takes --lanes")
    size = args.pes if args.pes is not None else args.lanes if args.lanes is not None else 4
    if args.engine == STANDIN:
        size = 1
    if size < 1:
        raise SparseFlowError(f"{'--pes' if is_eie else '--lanes'} must be >= 1, not {size}")
    if args.fifo_depth is not None and not is_eie:
        raise SparseFlowError(f"--fifo-depth is for the EIE array; the {args.engine} engine has no queues")
    if args.frontend_width is not None and not is_eie:
        raise SparseFlowError(f"--frontend-width is for the EIE array; the {args.engine} engine has one input per word")
    if args.pnr_timing == "high" and args.router != "router2":
        raise SparseFlowError("--pnr-timing high needs --router router2 (its timing-driven rip-up is router2's)")
    if args.freq is not None and not args.freq > 0:
        raise SparseFlowError(f"--freq must be positive, not {args.freq}")
    if args.out is not None:  # before the (long) simulation: never replace a folder SparseFlow did not write
        from model.outputs import check_dir
        check_dir(args.out)
    try:
        r = synthesize(args.engine, size, args.target, rows=args.rows, cols=args.cols, density=args.density,
                       seed=args.seed, vectors=args.vectors, out=args.out, freq_mhz=args.freq,
                       sim=None if args.sim == "none" else args.sim, fifo_depth=args.fifo_depth,
                       frontend_width=args.frontend_width,
                       pnr_seed=args.pnr_seed, block=args.block, router=args.router,
                       pnr_timing=args.pnr_timing)
    except SparseFlowError as exc:  # name the option the user typed, not the configuration field
        from scripts.cli import in_option_terms
        raise in_option_terms(exc, {"rows": "--rows", "cols": "--cols", "density": "--density",
                                    "vectors": "--vectors", "seed": "--seed"}) from None
    if args.json:
        print_json(r)
        return 0
    depth = f", queue depth {r['fifo_depth']}, front end {r['frontend_width']} wide" if "fifo_depth" in r else ""
    print(f"{r['engine']} x{r['size']} on {r['board']}: {r['rows']}x{r['cols']} matrix, {r['nnz']} non-zeros{depth}")
    print(f"  logic cells  {r['logic_cells']:>6} / {r['logic_cells_available']} {r['logic_cell_type']}"
          f"  ({r['lut4']} LUT4)")
    print(f"  flip-flops   {r['ffs']:>6}")
    print(f"  block RAM    {r['bram']:>6} / {r['bram_available']} {r['bram_type']}")
    print(f"  DSP          {r['dsp']:>6} / {r['dsp_available']} {r['dsp_type']}")
    goal = "meets" if r["meets_goal"] else "MISSES"
    print(f"  Fmax         {r['fmax_mhz']:>6.1f} MHz ({goal} the {r['goal_mhz']:g} MHz goal; "
          f"constrained at {r['clock_constraint_mhz']:g})")
    if "cycles" in r:
        print(f"  self-test    PASS; engine {r['engine_cycles']} cycles: {r['dense_macs_per_cycle']} dense MAC/cycle, "
              f"{r['throughput_gmacs']} GMAC/s at Fmax")
    for mem in r["memories"]:
        print(f"  memory       {mem['memory']}: {mem['kind']} ({mem['mapped_to']})")
    cp = r.get("critical_path")
    if cp:
        print(f"  critical     {cp['from']} -> {cp['to']}: {cp['delay_ns']} ns, {cp['logic_levels']} logic levels")
    if "bitstream" in r:
        print(f"  bitstream    {r['bitstream']} ({r['bitstream_bytes']} bytes)")
    return 0
