"""Simulation speed: the native Verilator harness against the cocotb testbench, side by side.

Two workloads (issue: fast RTL simulation):

* the EIE array, 8 PEs, on a 256 x 1024 layer at 10 % weight density, 1,000 input vectors
  (60 % non-zero activations);
* the 2:4 engine, 4 lanes, on a 256 x 256 layer, a batch of vectors.

Each workload runs on both backends in this one process, on the same build configuration
and the same pacing (full speed), and the results and counters are compared: they must be
identical on the vectors both ran. cocotb runs a subset of the vectors (``--cocotb-vectors``):
its rate does not depend on how many (it is per cycle), and the full 1,000 would take minutes.
Reported per backend: simulated cycles, seconds in the simulation loop, cycles per second,
wall seconds of the whole call (encoding, file I/O, process start) and the build time; the
speed-up is the ratio of loop rates. Builds go into a fresh temporary build folder so that
build times are real (``--cached`` reuses ``build/sim``).

    .venv/bin/python -m benchmarks.sim_speed [--vectors 1000] [--cocotb-vectors 50] [--out docs/results]

Writes ``sim_speed.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 1


def _build_time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def eie_workload(vectors: int, cocotb_vectors: int) -> dict:
    from model.hw.config import Arith, Requant
    from rtl.common.config import build_config
    from rtl.eie.array import EIEArray
    from verif import native
    from verif.runner import build
    from verif.spmv_eie import TOPLEVEL, run_jobs, size_config

    rng = np.random.default_rng(SEED)
    rows, cols = 256, 1024
    w = rng.integers(-128, 128, (rows, cols)) * (rng.random((rows, cols)) < 0.10)
    x = rng.integers(-2000, 2000, (cols, vectors)) * (rng.random((cols, vectors)) < 0.6)
    cfg = size_config(w, n_pes=8, fifo_depth=8, index_bits=4, arith=Arith(requant=Requant(8, True)))
    bcfg = build_config(cfg)
    t_native_build = _build_time(lambda: native.build(EIEArray(bcfg), toplevel=TOPLEVEL, eie=True, n_pes=8))
    t_cocotb_build = _build_time(lambda: build(EIEArray(bcfg), toplevel=TOPLEVEL, sim="verilator"))
    res = {}
    for label, backend, n, procs in (("native", "native", vectors, 1), ("native x2", "native", vectors, 2),
                                     ("cocotb", "cocotb", cocotb_vectors, None)):
        print(f"  EIE 8 PEs {rows}x{cols}: {n} vectors on {label} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        r = run_jobs([(w, x[:, :n])], cfg, sim="verilator", backend=backend, processes=procs)[0]
        res[label] = dict(r, wall=time.perf_counter() - t, vectors=n)
    nat, coc = res["native"], res["cocotb"]
    same_split = all(nat[k] == res["native x2"][k] for k in ("cycles", "total_cycles", "busy", "stall"))
    threads = threads_point(lambda: EIEArray(bcfg), w, x, cfg)
    k = cocotb_vectors
    same = (np.array_equal(nat["y"][:, :k], coc["y"])
            and nat["cycles"][:k] == coc["cycles"] and nat["busy"][:k] == coc["busy"]
            and nat["stall"][:k] == coc["stall"] and nat["total_cycles"][:k] == coc["total_cycles"])
    out = _summary("EIE array, 8 PEs, 256x1024 at 10 % density", res, same and same_split,
                   {"native": t_native_build, "native x2": t_native_build, "cocotb": t_cocotb_build},
                   f"{int((w != 0).sum())} non-zeros")
    out["verilator_threads"] = threads
    return out


def threads_point(make_dut, w, x, cfg) -> dict:
    """The same native run built with Verilator ``--threads 2``: loop rate against 1 thread."""
    from verif import native
    from rtl.common.protocol import packed_inputs
    from verif.spmv_eie import TOPLEVEL, load_words
    from model.hw.formats.eie import encode
    print("  EIE 8 PEs: Verilator --threads 2 build and run ...", file=sys.stderr, flush=True)
    rq = cfg.arith.requant
    job = {"load": load_words(encode(w, cfg), cfg, rq), "x": packed_inputs(x, cfg.arith.act_bits), "rows": w.shape[0]}
    out = {}
    for t in (1, 2):
        t0 = time.perf_counter()
        exe = native.build(make_dut(), toplevel=TOPLEVEL, eie=True, n_pes=cfg.n_pes, threads=t)
        build = time.perf_counter() - t0
        (r,), facts = native.run(exe, [job], out_bits=cfg.arith.out_bits, eie=True, n_pes=cfg.n_pes)
        out[f"threads_{t}"] = {"cycles_per_second": facts["sim_cycles"] / facts["sim_seconds"],
                               "build_seconds": round(build, 1)}
    out["threads_2_over_1"] = out["threads_2"]["cycles_per_second"] / out["threads_1"]["cycles_per_second"]
    return out


def lanes_workload(vectors: int, cocotb_vectors: int) -> dict:
    from model.hw.config import Arith, Requant, Sparse24Config
    from verif import native
    from verif.runner import build
    from verif.spmv_sparse24 import make_engine, run_spmv

    rng = np.random.default_rng(SEED)
    rows, cols = 256, 256
    w = rng.integers(-128, 128, (rows, cols // 4, 4))
    drop = np.argsort(rng.random((rows, cols // 4, 4)), axis=2)[:, :, :2]
    np.put_along_axis(w, drop, 0, axis=2)
    w = w.reshape(rows, cols)
    x = rng.integers(-2000, 2000, (cols, vectors))
    cfg = Sparse24Config(lanes=4, max_rows=rows, arith=Arith(max_cols=cols, requant=Requant(8, True)))
    t_native_build = _build_time(lambda: native.build(make_engine(cfg), toplevel="sparse24_engine", eie=False))
    t_cocotb_build = _build_time(lambda: build(make_engine(cfg), toplevel="sparse24_engine", sim="verilator"))
    res = {}
    for backend, n in (("native", vectors), ("cocotb", cocotb_vectors)):
        print(f"  2:4 4 lanes {rows}x{cols}: {n} vectors on {backend} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        r = run_spmv(w, x[:, :n], cfg, sim="verilator", backend=backend)
        res[backend] = dict(r, wall=time.perf_counter() - t, vectors=n)
    nat, coc = res["native"], res["cocotb"]
    k = cocotb_vectors
    same = np.array_equal(nat["y"][:, :k], coc["y"]) and nat["cycles"][:k] == coc["cycles"]
    return _summary("2:4 engine, 4 lanes, 256x256", res, same,
                    {"native": t_native_build, "cocotb": t_cocotb_build}, "2:4")


def _summary(name, res, same, builds, note) -> dict:
    out = {"workload": name, "note": note, "identical_on_common_vectors": bool(same)}
    for backend, r in res.items():
        out[backend] = {"vectors": r["vectors"], "sim_cycles": r["sim_cycles"],
                        "loop_seconds": round(r["sim_seconds"], 4),
                        "cycles_per_second": r["sim_cycles"] / r["sim_seconds"],
                        "wall_seconds": round(r["wall"], 3),
                        "wall_cycles_per_second": r["sim_cycles"] / r["wall"],
                        "build_seconds": round(builds[backend], 1)}
    for label in [b for b in res if b != "cocotb"]:
        suffix = label.replace("native", "").replace(" ", "_")
        out[f"speedup_loop{suffix}"] = out[label]["cycles_per_second"] / out["cocotb"]["cycles_per_second"]
        out[f"speedup_wall{suffix}"] = out[label]["wall_cycles_per_second"] / out["cocotb"]["wall_cycles_per_second"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", type=int, default=1000)
    ap.add_argument("--cocotb-vectors", type=int, default=50)
    ap.add_argument("--cached", action="store_true", help="reuse build/sim instead of fresh builds")
    ap.add_argument("--out", default="docs/results")
    args = ap.parse_args(argv)
    tmp = None
    if not args.cached:  # must be set before verif.runner is imported
        tmp = tempfile.TemporaryDirectory(prefix="sim_speed-")
        os.environ["SPARSEFLOW_BUILD"] = tmp.name
    print(f"seed {SEED}", file=sys.stderr)
    rows = [eie_workload(args.vectors, args.cocotb_vectors), lanes_workload(args.vectors, args.cocotb_vectors)]
    print(f"{'workload':44s} {'backend':8s} {'vectors':>7s} {'cycles':>10s} {'loop s':>8s} "
          f"{'cycles/s':>11s} {'wall s':>8s} {'build s':>8s}")
    for r in rows:
        for b in [k for k in ("native", "native x2", "cocotb") if k in r]:
            d = r[b]
            print(f"{r['workload']:44s} {b:8s} {d['vectors']:7d} {d['sim_cycles']:10d} {d['loop_seconds']:8.3f} "
                  f"{d['cycles_per_second']:11,.0f} {d['wall_seconds']:8.2f} {d['build_seconds']:8.1f}")
        print(f"  native / cocotb: {r['speedup_loop']:.0f}x (loop), {r['speedup_wall']:.0f}x (wall)"
              + (f"; two processes: {r['speedup_loop_x2']:.0f}x (loop), {r['speedup_wall_x2']:.0f}x (wall)"
                 if "speedup_loop_x2" in r else "")
              + f"; identical results and counters: {r['identical_on_common_vectors']}")
        if "verilator_threads" in r:
            t = r["verilator_threads"]
            print(f"  Verilator --threads 2 / 1: {t['threads_2_over_1']:.2f}x "
                  f"({t['threads_2']['cycles_per_second']:,.0f} vs {t['threads_1']['cycles_per_second']:,.0f} cycles/s)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim_speed.json").write_text(json.dumps({"seed": SEED, "workloads": rows}, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0 if all(r["identical_on_common_vectors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
