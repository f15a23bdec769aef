"""Host side of the block-sparse engine: ``run_spmv`` (validate, encode to BSR, build, simulate,
score against ``model.hw.reference`` and the cycle model ``model.hw.bsrcycles``).

The engine has the lane engines' ports and stream protocol, so it runs on their testbench
(``verif.sparse24_tb``) and native harness through :func:`verif.spmv_sparse24.simulate_engine`.
One compiled simulation per build configuration serves every matrix: weights, word count and
the shift/ReLU registers travel through ``load``.
"""
from __future__ import annotations

import numpy as np

from model.errors import SparseFlowError
from model.hw.config import BSRConfig
from model.hw.engines import BSR
from model.hw.formats import bsr
from model.hw.reference import check_bias, check_spmv_operands, layer

TOPLEVEL = "bsr_engine"


def make_engine(cfg: BSRConfig):
    """The engine ``run_spmv`` simulates, elaborated from the normalised build configuration."""
    from rtl.bsr.engine import BSREngine
    from rtl.common.config import build_config
    return BSREngine(build_config(cfg))


def encode(weights, cfg: BSRConfig) -> bsr.BSRMatrix:
    return bsr.encode(weights, cfg.arith.weight_bits, (cfg.block, cfg.block))


def size_config(weights, *, lanes: int, block: int, arith) -> BSRConfig:
    """The smallest build (powers of two) that runs ``weights``."""
    from model.hw.config import pow2_ceil
    from dataclasses import replace
    rows, cols = np.shape(weights)
    cfg = BSRConfig(lanes=lanes, block=block, max_rows=pow2_ceil(rows),
                    arith=replace(arith, max_cols=max(block, pow2_ceil(cols))))
    from model.hw.bsrcycles import words_per_block_row
    n = int(words_per_block_row(encode(weights, cfg), cfg).sum())
    return cfg.with_(max_words=max(16, pow2_ceil(n)))


def run_spmv(weights, x, cfg: BSRConfig, sim: str = "verilator", pacing: float = 1.0, waves: bool | None = None,
             seed: int = 0, bias=None, backend: str = "cocotb", out_pacing: float | None = None) -> dict:
    """Run ``requant(W @ x + bias)`` on the block-sparse engine in ``sim`` (``weights``: a dense
    integer matrix or a :class:`model.hw.formats.bsr.BSRMatrix`, e.g. a loaded image) (as
    :func:`verif.spmv_sparse24.run_spmv`; same arguments and results). Also returns
    ``predicted`` (the cycle model's ``cycles`` of each vector, exact at full speed) and
    ``words`` (issue cycles per vector). ``RuntimeError`` on a result or ``busy`` mismatch."""
    from model.hw.bsrcycles import simulate_batch
    from verif.spmv_sparse24 import check_result, check_run_options, simulate_engine
    check_run_options(sim, backend, pacing, out_pacing)
    if not isinstance(cfg, BSRConfig):
        raise SparseFlowError(f"expected a BSRConfig, not {type(cfg).__name__}")
    matrix = None
    if isinstance(weights, bsr.BSRMatrix):  # a BSR image, loaded as it is
        matrix, weights = weights, bsr.decode(weights)
    w, a = check_spmv_operands(weights, x, cfg.arith)
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise SparseFlowError(f"weights must have at least one row and one column, got shape {w.shape}")
    if a.ndim == 1:
        a = a[:, None]
    if a.shape[1] == 0:
        raise SparseFlowError("the input batch is empty")
    rows = w.shape[0]
    b = check_bias(bias, rows, cfg.arith)
    engine = make_engine(cfg)
    matrix = encode(w, cfg) if matrix is None else matrix
    program = engine.load_program(matrix, cfg.arith.requant, b)
    golden = layer(w, a, cfg.arith) if b is None else layer(w, a, cfg.arith, b)
    result = simulate_engine(engine, program, a, rows, sim=sim, pacing=pacing, waves=waves, seed=seed,
                             toplevel=TOPLEVEL, backend=backend, out_pacing=out_pacing)
    y = result["y"]
    check_result(result, golden, BSR.name, sim)
    n = engine.words(matrix)
    if result["busy"] != n * a.shape[1]:
        raise RuntimeError(f"busy counter {result['busy']}, expected {n} words x {a.shape[1]} vectors")
    return {
        "y": y, "golden": golden, "cycles": result["cycles"], "total_cycles": result["total_cycles"],
        "busy": result["busy"], "engine": BSR.name, "sim": sim, "multipliers": cfg.multipliers,
        "predicted": simulate_batch(matrix, a.shape[1], cfg)["cycles"], "words": n,
        "run_dir": result["run_dir"], "backend": backend,
        "sim_cycles": result.get("sim_cycles"), "sim_seconds": result.get("sim_seconds"),
    }
