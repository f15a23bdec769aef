"""Sparse weight formats: one protocol (:class:`Format`), one registry (:data:`FORMATS`).

Each module implements a format (``csc``: CSC and CSR, ``bsr``, ``eie``: interleaved CSC,
``nm``: 2:4 compressed) and registers it here under the name a memory image's manifest uses.
``model.hw.images`` looks a format up (:func:`get`, :func:`format_of`) instead of branching on
its name: what an image stores, how it is read back and checked is the format's own code.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from model.hw.config import Arith
from model.errors import SparseFlowError


class Format(Protocol):
    """What ``model.hw.images`` needs of a weight format.

    ``encode(weights, cfg, **options)`` -> the format's matrix object (options: ``block`` for
    bsr, ``codebook`` for eie); ``decode(m)`` -> the dense int64 matrix; ``check(m, cfg)``
    raises unless ``m`` is canonical (what ``encode`` produces) and fits ``cfg``;
    ``memories(m, cfg)`` -> ``{file: (words, width, signed)}``, the image's hex files;
    ``summary(m, cfg)`` -> the manifest fields beyond the files; ``load(rd, cfg, rows, cols)``
    -> the matrix read back through ``rd`` (``model.hw.images``' manifest reader, which names the
    file in every error); ``check_compatible(m, have, expect)`` raises unless a matrix encoded
    for ``have`` runs as is on ``expect`` (beyond the weight width, which the caller checks).
    """

    name: str
    config_type: type  # Arith, EIEConfig or Sparse24Config: the configuration an image carries

    def owns(self, m) -> bool: ...
    def encode(self, weights, cfg, **options): ...
    def decode(self, m) -> np.ndarray: ...
    def check(self, m, cfg) -> None: ...
    def memories(self, m, cfg) -> dict[str, tuple[np.ndarray, int, bool]]: ...
    def summary(self, m, cfg) -> dict: ...
    def load(self, rd, cfg, rows: int, cols: int): ...
    def check_compatible(self, m, have, expect) -> None: ...


def arith_of(cfg) -> Arith:
    """The arithmetic of any configuration object (an ``Arith`` is its own)."""
    return cfg if isinstance(cfg, Arith) else cfg.arith


def to_signed(words: np.ndarray, width: int) -> np.ndarray:
    """``width``-bit two's complement words as signed int64."""
    words = np.asarray(words, dtype=np.int64)
    return np.where(words >= 1 << (width - 1), words - (1 << width), words)


def wrap(fn, *args, where: str | None = None):
    """``fn(*args)``; a :class:`SparseFlowError` it raises is prefixed with ``where`` (a file name)."""
    try:
        return fn(*args)
    except SparseFlowError as exc:
        raise SparseFlowError(f"{where}: {exc}" if where else str(exc)) from None


def compressed_memories(m, weight_bits: int) -> dict[str, tuple[np.ndarray, int, bool]]:
    """The three files of CSC, CSR and BSR: ``data``, ``indices``, ``indptr``."""
    wd = m.widths(weight_bits)
    data = np.asarray(m.data, dtype=np.int64).reshape(-1)
    return {"data.hex": (data, wd["data"], True),
            "indices.hex": (np.asarray(m.indices), wd["indices"], False),
            "indptr.hex": (np.asarray(m.indptr), wd["indptr"], False)}


COMPRESSED_FILES = frozenset({"data.hex", "indices.hex", "indptr.hex"})

FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def get(name: str) -> Format:
    """The format called ``name`` (a manifest's ``format``)."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise SparseFlowError(f"unknown format {name!r} (expected one of {', '.join(FORMATS)})") from None


def format_of(matrix) -> Format:
    """The format whose encoder produced ``matrix``."""
    for fmt in FORMATS.values():
        if fmt.owns(matrix):
            return fmt
    raise SparseFlowError(f"cannot write a {type(matrix).__name__} as an image")


# The formats register themselves on import (they use the helpers above).
from model.hw.formats import bsr, csc, eie, nm  # noqa: E402

for _f in (csc.CSC, csc.CSR, bsr.BSR, eie.EIE, nm.NM24):
    register(_f)
NAMES = tuple(FORMATS)  # ("csc", "csr", "bsr", "eie", "2:4")
