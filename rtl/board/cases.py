"""What a board self-test runs: a random matrix of a given shape and density, its input vector(s),
the expected results from ``model.hw.reference``, and the engine built around it.

One :class:`Case` holds the configuration object that both the encoder (``model.hw.formats``) and the
engine constructor receive, so the ROM images and the RTL can never disagree on a width.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from model.hw.config import Arith, BSRConfig, EIEConfig, Sparse24Config
from model.hw.formats import nm
from model.hw.engines import BSR, DENSE, EIE, NAMES, SPARSE24, get as get_engine
from model.errors import SparseFlowError
from model.hw.reference import layer

STANDIN = "standin"  # the synthesis stand-in (rtl.board.standin): a board case, not an engine of the registry
ENGINES = NAMES + (STANDIN,)
# The RTL class of each engine of the registry (model.hw.engines), imported when a case is built.
RTL_CLASSES = {EIE.name: ("rtl.eie.array", "EIEArray"),
               SPARSE24.name: ("rtl.sparse24.engine", "Sparse24Engine"),
               DENSE.name: ("rtl.dense.engine", "DenseEngine"),
               BSR.name: ("rtl.bsr.engine", "BSREngine")}
MIN_ENTRIES = 256


@dataclass
class Case:
    engine: str
    size: int            # PEs (eie) or lanes (2:4, dense, bsr); 1 for the stand-in
    weights: np.ndarray  # the dense integer matrix the engine computes with
    xs: np.ndarray       # (vectors, cols) inputs
    expected: np.ndarray  # (vectors, rows) results, model.hw.reference.layer
    arith: Arith
    cfg: object          # EIEConfig / Sparse24Config / Arith (stand-in)
    init: object         # what the engine constructor takes as init

    @property
    def shape(self) -> tuple[int, int]:
        return self.weights.shape

    @property
    def dense_macs(self) -> int:
        """MACs of the equivalent dense products (rows x cols per vector)."""
        r, c = self.weights.shape
        return r * c * len(self.xs)

    def x_words(self):
        """``(data, last)`` per ``x`` word; ``data`` a list of ``K`` elements (zero-padded) for
        an EIE array with ``frontend_width`` K > 1."""
        k = getattr(self.cfg, "frontend_width", 1)
        if k == 1:
            return [(int(v), j == len(x) - 1) for x in self.xs for j, v in enumerate(x)]
        n = -(-self.xs.shape[1] // k)
        return [([int(v) for v in x[w * k:(w + 1) * k]] + [0] * max(0, (w + 1) * k - len(x)), w == n - 1)
                for x in self.xs for w in range(n)]

    def y_words(self, corrupt: bool = False):
        words = [(int(v), i == len(y) - 1) for y in self.expected for i, v in enumerate(y)]
        if corrupt:  # flip the low bit of the first result: the self-test must notice
            words[0] = (words[0][0] ^ 1, words[0][1])
        return words

    def build_engine(self):
        """Elaborate-ready engine with the matrix initialised into its memories."""
        if self.engine == STANDIN:
            from .standin import StandInEngine
            return StandInEngine(self.arith, self.weights)
        modname, clsname = RTL_CLASSES[self.engine]
        try:
            cls = getattr(importlib.import_module(modname), clsname)
        except (ImportError, AttributeError) as exc:
            raise SparseFlowError(f"engine {self.engine!r} is not available ({modname}.{clsname}: {exc})")
        return cls(self.cfg, self.init)


def _random_matrix(rng, rows, cols, density, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    vals = rng.integers(lo, hi + 1, size=(rows, cols))
    vals[vals == 0] = 1
    return np.where(rng.random((rows, cols)) < density, vals, 0).astype(np.int64)


def make_case(engine: str, size: int, rows: int, cols: int, density: float, seed: int = 1,
              vectors: int = 1, arith: Arith | None = None, fifo_depth: int | None = None,
              block: int | None = None, frontend_width: int | None = None) -> Case:
    """A reproducible random case; raises :class:`SparseFlowError` on bad parameters. For the
    BSR engine (``block``: 2 or 4, default 4) ``density`` is the fraction of non-zero blocks."""
    if engine not in ENGINES:
        raise SparseFlowError(f"unknown engine {engine!r}; choose one of {', '.join(NAMES)}")
    for name, v, lo in (("rows", rows, 1), ("cols", cols, 1), ("vectors", vectors, 1), ("size", size, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise SparseFlowError(f"{name} must be an integer >= {lo}, not {v!r}")
    if not (isinstance(density, (int, float)) and 0.0 < density <= 1.0):
        raise SparseFlowError(f"density must be in (0, 1], not {density!r}")
    lanes = engine in NAMES and get_engine(engine).lanes  # the 2:4 and dense engines group inputs
    if lanes and cols % get_engine(engine).col_group:
        raise SparseFlowError(f"the {engine} engine needs a multiple of {get_engine(engine).col_group} columns, "
                              f"not {cols}")
    arith = arith or Arith(max_cols=cols)
    if cols > arith.max_cols:
        raise SparseFlowError(f"{cols} columns exceed the configuration's max_cols {arith.max_cols}")
    if block is not None and engine != BSR.name:
        raise SparseFlowError(f"a block size is for the {BSR.name} engine, not {engine}")
    rng = np.random.default_rng(seed)
    if engine == BSR.name:
        block = 4 if block is None else block
        cfg = BSRConfig(lanes=size, block=block, arith=arith, max_rows=rows)  # checks lanes and block
        from model.hw.formats.bsr import random_blocks
        w = random_blocks(rng, rows, cols, block, density, arith.weight_bits)
    else:
        w = _random_matrix(rng, rows, cols, density, arith.weight_bits)
    if lanes and engine != BSR.name:
        w = nm.keep_largest_24(w)  # the dense baseline runs the same (2:4-pruned) matrix, densely
    lo, hi = arith.act_range
    xs = rng.integers(lo, hi + 1, size=(vectors, cols)).astype(np.int64)
    expected = np.stack([layer(w, x, arith) for x in xs])

    if engine == EIE.name:
        from model.hw.formats import eie
        cfg = EIEConfig(n_pes=size, arith=arith, max_rows=rows)
        if fifo_depth is not None:
            cfg = cfg.with_(fifo_depth=fifo_depth)
        if frontend_width is not None:
            cfg = cfg.with_(frontend_width=frontend_width)
        enc = eie.encode(w, cfg)
        worst = int(enc.entries_per_pe.max(initial=0))
        # Entry memories sized like a real layer's (a power of two, at least 256 words: one
        # iCE40 4 kbit / ECP5 18 kbit block RAM), not shrunk to this small test matrix, so that
        # they synthesize as they would in use (Yosys folds tiny ROMs into logic).
        cfg = cfg.with_(max_entries=max(MIN_ENTRIES, 1 << (max(worst, 1) - 1).bit_length()))
        eie.check_fits(enc, cfg)
        init = enc
    elif engine == SPARSE24.name:
        cfg = Sparse24Config(lanes=size, arith=arith, max_rows=rows)
        init = nm.encode(w, arith.weight_bits)
    elif engine == DENSE.name:
        cfg = Sparse24Config(lanes=size, arith=arith, max_rows=rows)
        init = w
    elif engine == BSR.name:
        from model.hw.formats import bsr
        init = bsr.encode(w, arith.weight_bits, (block, block))
        from model.hw.bsrcycles import words_per_block_row
        # Memories sized like a real layer's (at least 256 words), as the EIE entries below.
        need = int(words_per_block_row(init, cfg).sum())
        cfg = cfg.with_(max_words=max(MIN_ENTRIES, 1 << (max(need, 1) - 1).bit_length()))
    else:
        cfg, init = arith, w
    return Case(engine, size, w, xs, expected, arith, cfg, init)
