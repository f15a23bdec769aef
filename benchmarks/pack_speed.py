"""Host-side packing speed: the ``load`` programs of a 1024 x 1024 layer for every engine.

Times :func:`verif.spmv_eie.load_words` (EIE, 8 PEs, 10 % density) and
``load_program`` of the 2:4 and dense engines (4 lanes), with a bias and requantization, all
packed by :func:`rtl.common.packing.pack` from the ``load`` payload layout; best of
``--repeats`` runs. Prints one line per engine (no result file: a check that packing stays
cheap next to a simulation, not a tracked result).

    .venv/bin/python -m benchmarks.pack_speed [--size 1024] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from model.hw.config import Arith, EIEConfig, Requant, Sparse24Config
from model.hw.formats import nm
from model.hw.formats.eie import encode
from rtl.common.config import build_config
from rtl.dense.engine import DenseEngine
from rtl.sparse24.engine import Sparse24Engine
from verif.spmv_eie import load_words


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pack_speed", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*UnusedElaboratable.*")
    n = args.size
    rng = np.random.default_rng(0)
    w = rng.integers(-100, 100, size=(n, n)) * (rng.random((n, n)) < 0.1)
    bias = rng.integers(-1000, 1000, size=n)
    arith = Arith(max_cols=n, requant=Requant(), bias_bits=24)
    ecfg = EIEConfig(n_pes=8, max_rows=n, max_entries=2 * n, arith=arith)
    m = encode(w, ecfg)
    g = rng.integers(-100, 100, size=(n, n // 4, 4))
    np.put_along_axis(g, np.argsort(np.abs(g), axis=2)[:, :, :2], 0, axis=2)
    lcfg = build_config(Sparse24Config(lanes=4, max_rows=n, arith=arith))
    s24, dense, nmm = Sparse24Engine(lcfg), DenseEngine(lcfg), nm.encode(g.reshape(n, n), 8)
    for name, fn in ((f"EIE load_words {n}x{n} (10% dense, 8 PEs)", lambda: load_words(m, ecfg, Requant(2), bias)),
                     (f"2:4 load_program {n}x{n}", lambda: s24.load_program(nmm, Requant(2), bias)),
                     (f"dense load_program {n}x{n}", lambda: dense.load_program(w, Requant(2), bias))):
        best, words = float("inf"), 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            words = len(fn())
            best = min(best, time.perf_counter() - t0)
        print(f"{name}: {best * 1000:.1f} ms for {words} words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
