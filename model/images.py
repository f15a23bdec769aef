"""Memory images: encoded matrices as ``$readmemh`` hex files plus ``manifest.json``.

An image is a folder. Every memory is one ``.hex`` file: one word per line, lower-case hex,
zero-padded to ``ceil(width / 4)`` digits, two's complement for signed fields, ``\\n`` line
ends, nothing else (no comments, no ``@`` addresses), so Verilog's ``$readmemh``, Amaranth's
``Memory(init=...)`` and :func:`read_hex` all read it the same way. ``manifest.json`` names the
format, the shape, the full configuration object and every file with its word count, width
and sha256. The layouts (see ``docs/formats.md``):

* ``eie``: per PE ``k`` ``pe{k}_entries.hex`` (``entry_bits``: ``z << value_bits | value``,
  :meth:`EIEMatrix.words`) and ``pe{k}_ptr.hex`` (``ptr_bits``, ``cols + 1`` pointers); in
  codebook mode ``codebook.hex`` (``weight_bits``, ``2**codebook_bits`` weights).
* ``2:4``: ``values.hex`` (one word per row-group, ``2 * weight_bits``: ``v1 << weight_bits |
  v0``) and ``meta.hex`` (one 4-bit word per row-group, ``pos1 << 2 | pos0``); row-major, group
  ``g`` of row ``r`` at address ``r * cols / 4 + g``.
* ``csc``/``csr``: ``data.hex``, ``indices.hex``, ``indptr.hex``; ``bsr`` the same, ``data``
  holding each block row-major.
* any format, when written with a bias (the configuration's ``arith.bias_bits`` set):
  ``bias.hex``, one signed ``bias_bits`` word per row, listed with its checksum like the rest;
  :attr:`Image.bias` gives it back (``None`` for an image without one).

:func:`write_image` writes into a temporary sibling folder and renames it into place, so an
image is never partial. :func:`load_image` checks everything (files, line counts, hex digits,
widths, checksums, manifest consistency, the configuration the caller expects) and returns
the very objects the encoders return (:class:`EIEMatrix`, :class:`NMMatrix`, ...); every
problem is a one-line :class:`SparseFlowError` naming the file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Arith, EIEConfig, Requant, Sparse24Config, clog2
from .errors import SparseFlowError
from .formats import bsr, csc, eie, nm
from .formats.bsr import BSRMatrix
from .formats.csc import CSMatrix
from .formats.eie import EIEMatrix
from .formats.nm import NMMatrix
from .reference import as_int_array, check_bias

VERSION = 1
MANIFEST = "manifest.json"
BIAS_FILE = "bias.hex"
FORMATS = ("csc", "csr", "bsr", "eie", "2:4")

# ----------------------------------------------------------------------------------------------
# Configuration objects <-> JSON

_CONFIG_TYPES = {c.__name__: c for c in (Arith, Requant, EIEConfig, Sparse24Config)}
_NESTED = {"arith": Arith, "requant": Requant}


def config_to_dict(cfg) -> dict:
    """A configuration object (``Arith``, ``EIEConfig``, ``Sparse24Config``) as plain JSON data."""
    if type(cfg).__name__ not in _CONFIG_TYPES:
        raise SparseFlowError(f"not a configuration object: {type(cfg).__name__}")
    out = {"type": type(cfg).__name__}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = config_to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def config_from_dict(d, _want=None):
    """Inverse of :func:`config_to_dict`; a missing field takes its default, an unknown one is an error."""
    if not isinstance(d, dict) or d.get("type") not in _CONFIG_TYPES:
        raise SparseFlowError(f"config must be an object with a type in {sorted(_CONFIG_TYPES)}")
    cls = _CONFIG_TYPES[d["type"]]
    if _want is not None and cls is not _want:
        raise SparseFlowError(f"config field must be a {_want.__name__}, not {cls.__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in d.items():
        if k == "type":
            continue
        if k not in names:
            raise SparseFlowError(f"unknown {cls.__name__} field {k!r}")
        if k in _NESTED and v is not None:
            v = config_from_dict(v, _NESTED[k])
        elif names[k].type in ("bool", bool) and not isinstance(v, bool):
            raise SparseFlowError(f"{cls.__name__}.{k} must be true or false, not {v!r}")
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except TypeError as exc:  # e.g. a list where a number belongs
        raise SparseFlowError(f"bad {cls.__name__}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# Hex files

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UNHEX = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _UNHEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _UNHEX[_c] = 10 + _i


def hex_digits(width: int) -> int:
    return -(-width // 4)


def hex_bytes(words, width: int) -> bytes:
    """Words (signed or not) as ``$readmemh`` text: two's complement, ``width`` bits, one a line."""
    if not 1 <= width <= 62:
        raise SparseFlowError(f"word width must be in 1..62 bits, not {width}")
    w = np.asarray(words, dtype=np.int64).reshape(-1) & ((1 << width) - 1)
    nd = hex_digits(width)
    shifts = 4 * np.arange(nd - 1, -1, -1, dtype=np.int64)
    table = np.empty((len(w), nd + 1), dtype=np.uint8)
    table[:, :nd] = _HEX[(w[:, None] >> shifts) & 0xF]
    table[:, nd] = ord("\n")
    return table.tobytes()


def parse_hex(data: bytes, width: int, count: int, name: str) -> np.ndarray:
    """Parse exactly ``count`` words of ``width`` bits (unsigned int64); errors name ``name``."""
    nd = hex_digits(width)
    if len(data) != count * (nd + 1):
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if len(lines) != count:
            what = "truncated" if len(lines) < count else "extra lines"
            raise SparseFlowError(f"{name}: {len(lines)} lines, the manifest says {count} ({what})")
        for i, line in enumerate(lines):
            if len(line) != nd:
                raise SparseFlowError(
                    f"{name}: line {i + 1} has {len(line)} characters, expected {nd} hex digits")
        raise SparseFlowError(f"{name}: the last line has no line end")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    table = np.frombuffer(data, dtype=np.uint8).reshape(count, nd + 1)
    bad_end = np.flatnonzero(table[:, nd] != ord("\n"))
    if bad_end.size:
        raise SparseFlowError(f"{name}: line {bad_end[0] + 1} is not {nd} hex digits")
    digits = _UNHEX[table[:, :nd]]
    if (digits < 0).any():
        i = int(np.argwhere(digits < 0)[0][0])
        raise SparseFlowError(f"{name}: line {i + 1} is not hex: {table[i, :nd].tobytes().decode('latin-1')!r}")
    words = np.zeros(count, dtype=np.int64)
    for j in range(nd):
        words = (words << 4) | digits[:, j]
    over = np.flatnonzero(words >> width)
    if over.size:
        i = int(over[0])
        raise SparseFlowError(f"{name}: line {i + 1} = {int(words[i]):x} is wider than {width} bits")
    return words


def to_signed(words: np.ndarray, width: int) -> np.ndarray:
    words = np.asarray(words, dtype=np.int64)
    return np.where(words >= 1 << (width - 1), words - (1 << width), words)


def write_hex(path, words, width: int) -> str:
    """Write one hex file; return its sha256."""
    data = hex_bytes(words, width)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_hex(path, width: int, count: int, signed: bool = False) -> np.ndarray:
    """Read one hex file of exactly ``count`` words (no checksum: see :func:`load_image`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SparseFlowError(f"{path.name}: cannot read ({exc.strerror})") from None
    words = parse_hex(data, width, count, path.name)
    return to_signed(words, width) if signed else words


# ----------------------------------------------------------------------------------------------
# What each format stores: (file name -> (words, width, signed)) for a matrix and its config

def _format_of(matrix) -> str:
    if isinstance(matrix, EIEMatrix):
        return "eie"
    if isinstance(matrix, NMMatrix):
        return "2:4"
    if isinstance(matrix, CSMatrix):
        return matrix.kind
    if isinstance(matrix, BSRMatrix):
        return "bsr"
    raise SparseFlowError(f"cannot write a {type(matrix).__name__} as an image")


_CFG_OF = {"eie": EIEConfig, "2:4": Sparse24Config, "csc": Arith, "csr": Arith, "bsr": Arith}


def _weight_bits(cfg) -> int:
    return cfg.weight_bits if isinstance(cfg, Arith) else cfg.arith.weight_bits


def _arith(cfg) -> Arith:
    return cfg if isinstance(cfg, Arith) else cfg.arith


def _check_matrix(fmt: str, m, cfg) -> None:
    """Raise unless ``m`` is canonical (what the encoder produces) and fits ``cfg``."""
    wb = _weight_bits(cfg)
    if fmt in ("csc", "csr"):
        csc.validate(m, wb)
    elif fmt == "bsr":
        bsr.validate(m)
        if len(m.data):
            as_int_array(np.asarray(m.data).reshape(-1), "bsr values", wb, ndim=(1,))
    elif fmt == "eie":
        _check_eie(m, cfg)
    else:
        rows, cols = m.shape
        if rows > cfg.max_rows or cols > cfg.max_cols:
            raise SparseFlowError(
                f"2:4 matrix is {rows}x{cols}; the engine holds at most {cfg.max_rows}x{cfg.max_cols}")
        if np.shape(m.values) != (rows, cols // 2) or np.shape(m.positions) != (rows, cols // 2):
            raise SparseFlowError(f"2:4 values/positions must have shape {(rows, cols // 2)}")
        dense = nm.decode(m)
        again = nm.encode(dense, wb)
        if not (np.array_equal(again.values, m.values) and np.array_equal(again.positions, m.positions)):
            raise SparseFlowError("2:4 matrix is not canonical: a zero value is kept at a position "
                                  "other than the lowest free one")


def _check_eie(m: EIEMatrix, cfg: EIEConfig) -> None:
    rows, cols = m.shape
    if m.n_pes != cfg.n_pes:
        raise SparseFlowError(f"matrix is encoded for {m.n_pes} PEs, the configuration has {cfg.n_pes}")
    ptr = np.asarray(m.ptr, dtype=np.int64)
    if ptr.shape != (m.n_pes, cols + 1) or len(m.values) != m.n_pes or len(m.zs) != m.n_pes:
        raise SparseFlowError(f"EIE pointers must be {m.n_pes} x {cols + 1}")
    for k in range(m.n_pes):
        p = ptr[k]
        if p[0] != 0 or np.any(np.diff(p) < 0):
            raise SparseFlowError(f"PE {k}: column pointers must start at 0 and never decrease")
        if len(m.values[k]) != p[-1] or len(m.zs[k]) != p[-1]:
            raise SparseFlowError(f"PE {k}: pointers end at {int(p[-1])} but it holds {len(m.values[k])} entries")
        z = np.asarray(m.zs[k])
        if z.size and (z.min() < 0 or z.max() > cfg.max_gap):
            raise SparseFlowError(f"PE {k}: a relative index is outside 0..{cfg.max_gap}")
        v = np.asarray(m.values[k])
        lo, hi = (0, (1 << cfg.codebook_bits) - 1) if cfg.codebook else cfg.arith.weight_range
        if v.size and (v.min() < lo or v.max() > hi):
            raise SparseFlowError(f"PE {k}: a value is outside {lo}..{hi}")
    if cfg.codebook != (m.codebook is not None):
        raise SparseFlowError("codebook mode of the matrix and of the configuration differ")
    eie.check_fits(m, cfg)
    again = eie.encode(eie.decode(m), cfg, m.codebook)
    for k in range(m.n_pes):
        if not (np.array_equal(again.values[k], m.values[k]) and np.array_equal(again.zs[k], m.zs[k])):
            raise SparseFlowError(f"PE {k}: entries are not canonical (padding only where a gap needs it)")


def _memories(fmt: str, m, cfg) -> dict[str, tuple[np.ndarray, int, bool]]:
    """The files of an image: name -> (words, width, signed)."""
    wb = _weight_bits(cfg)
    if fmt in ("csc", "csr", "bsr"):
        wd = m.widths(wb)
        data = np.asarray(m.data, dtype=np.int64).reshape(-1)
        return {"data.hex": (data, wd["data"], True),
                "indices.hex": (np.asarray(m.indices), wd["indices"], False),
                "indptr.hex": (np.asarray(m.indptr), wd["indptr"], False)}
    if fmt == "eie":
        files = {}
        for k in range(m.n_pes):
            files[f"pe{k}_entries.hex"] = (m.words(cfg, k), cfg.entry_bits, False)
            files[f"pe{k}_ptr.hex"] = (np.asarray(m.ptr[k]), cfg.ptr_bits, False)
        if cfg.codebook:
            files["codebook.hex"] = (np.asarray(m.codebook), wb, True)
        return files
    v = np.asarray(m.values, dtype=np.int64).reshape(-1, 2)
    mask = (1 << wb) - 1
    packed = (v[:, 0] & mask) | ((v[:, 1] & mask) << wb)
    return {"values.hex": (packed, 2 * wb, False),
            "meta.hex": (pack_meta_words(m), 4, False)}


def pack_meta_words(m: NMMatrix) -> np.ndarray:
    """2:4 metadata words, one per row-group: ``pos1 << 2 | pos0`` (row-major)."""
    return nm.pack_meta(np.asarray(m.positions).reshape(m.shape[0], m.shape[1] // 2)).reshape(-1)


def _summary(fmt: str, m, cfg) -> dict:
    """Manifest fields beyond the files: nnz, format specifics, derived widths."""
    s = {}
    if fmt in ("csc", "csr"):
        s["nnz"] = m.nnz
        s["widths"] = m.widths(_weight_bits(cfg))
    elif fmt == "bsr":
        s["nnz"] = m.nnz
        s["block"] = list(m.block)
        s["blocks"] = m.nblocks
        s["widths"] = m.widths(_weight_bits(cfg))
    elif fmt == "eie":
        s["nnz"] = int(sum(int(np.count_nonzero(v)) for v in m.values))
        s["n_pes"] = m.n_pes
        s["entries_per_pe"] = [int(x) for x in m.entries_per_pe]
        s["padding_entries"] = m.padding_entries
        s["codebook"] = None if m.codebook is None else [int(x) for x in m.codebook]
        s["widths"] = {"entry": cfg.entry_bits, "value": cfg.value_bits, "index": cfg.index_bits,
                       "ptr": cfg.ptr_bits}
    else:
        s["nnz"] = int(np.count_nonzero(m.values))
        s["widths"] = {"values": 2 * _weight_bits(cfg), "value": _weight_bits(cfg), "meta": 4}
    return s


# ----------------------------------------------------------------------------------------------
# Writing

def _prepare_out(out: Path) -> None:
    """Refuse to replace anything but an image or an empty folder (never delete user data)."""
    if not out.parent.is_dir():
        raise SparseFlowError(f"{out.parent}: the output's parent folder does not exist")
    if out.exists():
        if not out.is_dir():
            raise SparseFlowError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise SparseFlowError(f"{out} exists and is not a SparseFlow image; not replacing it")


def write_image(out, matrix, cfg, bias=None) -> dict:
    """Write ``matrix`` (an encoder's output for ``cfg``) as an image folder ``out``; return the manifest.

    ``cfg``: ``EIEConfig`` for :class:`EIEMatrix`, ``Sparse24Config`` for :class:`NMMatrix`,
    ``Arith`` for CSC/CSR/BSR. ``bias``: ``None`` or one signed ``bias_bits`` integer per row
    (the configuration must set ``bias_bits``), written as ``bias.hex``. An existing image (or
    empty folder) at ``out`` is replaced atomically; anything else there is an error.
    """
    out = Path(out)
    fmt = _format_of(matrix)
    if not isinstance(cfg, _CFG_OF[fmt]):
        raise SparseFlowError(f"a {fmt} image needs a {_CFG_OF[fmt].__name__}, not {type(cfg).__name__}")
    _check_matrix(fmt, matrix, cfg)
    bias = check_bias(bias, int(matrix.shape[0]), _arith(cfg))
    _prepare_out(out)
    manifest = {"sparseflow_image": VERSION, "format": fmt, "shape": [int(s) for s in matrix.shape],
                "config": config_to_dict(cfg)}
    manifest.update(_summary(fmt, matrix, cfg))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        files = {}
        mems = _memories(fmt, matrix, cfg)
        if bias is not None:
            mems[BIAS_FILE] = (bias, _arith(cfg).bias_bits, True)
        for name, (words, width, _signed) in mems.items():
            digest = write_hex(tmp / name, words, width)
            files[name] = {"words": int(len(words)), "width": int(width), "sha256": digest}
        manifest["files"] = files
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "img")
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old / "img", out)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


# ----------------------------------------------------------------------------------------------
# Loading

@dataclass
class Image:
    """A loaded image: ``matrix`` is what the format's encoder returns for ``config``;
    ``bias`` the per-row bias (int64) when the image has ``bias.hex``, else ``None``."""

    path: Path
    format: str
    config: Arith | EIEConfig | Sparse24Config
    matrix: CSMatrix | BSRMatrix | EIEMatrix | NMMatrix
    manifest: dict
    bias: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def dense(self) -> np.ndarray:
        """The dense matrix given to the encoder (codebook indices for an EIE codebook image)."""
        return decode_matrix(self.matrix)


def decode_matrix(m) -> np.ndarray:
    fmt = _format_of(m)
    if fmt == "eie":
        return eie.decode(m)
    if fmt == "2:4":
        return nm.decode(m)
    if fmt == "bsr":
        return bsr.decode(m)
    return csc.decode(m)


def _field(man: dict, key: str, kind, what: str):
    if key not in man or not isinstance(man[key], kind) or isinstance(man[key], bool) and kind is not bool:
        raise SparseFlowError(f"{MANIFEST}: field {key!r} is missing or not {what}")
    return man[key]


def _int_list(man: dict, key: str, n: int | None = None) -> list[int]:
    v = _field(man, key, list, "a list")
    if (n is not None and len(v) != n) or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                                  for x in v):
        need = f"{n} " if n is not None else ""
        raise SparseFlowError(f"{MANIFEST}: field {key!r} must be a list of {need}non-negative integers")
    return v


def _read_manifest(path: Path) -> dict:
    mp = path / MANIFEST
    if not path.is_dir():
        raise SparseFlowError(f"{path}: no such image folder")
    try:
        man = json.loads(mp.read_text())
    except FileNotFoundError:
        raise SparseFlowError(f"{MANIFEST}: missing in {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SparseFlowError(f"{MANIFEST}: unreadable ({str(exc).splitlines()[0]})") from None
    if not isinstance(man, dict):
        raise SparseFlowError(f"{MANIFEST}: must hold a JSON object")
    if man.get("sparseflow_image") != VERSION:
        raise SparseFlowError(f"{MANIFEST}: image version {man.get('sparseflow_image')!r}, this reader knows {VERSION}")
    return man


def _expect_same(name: str, got, want, source: str = "the configuration") -> None:
    if got != want:
        raise SparseFlowError(f"{MANIFEST}: {name} is {got!r} but {source} gives {want!r}")


class _Reader:
    """Reads the image's files one by one against the manifest; errors name the file."""

    def __init__(self, path: Path, man: dict, expected: set[str]):
        self.path, self.files = path, _field(man, "files", dict, "an object")
        listed = set(self.files)
        if listed - expected:
            raise SparseFlowError(f"{MANIFEST}: unexpected file {sorted(listed - expected)[0]} for this format")
        if expected - listed:
            raise SparseFlowError(f"{MANIFEST}: file {sorted(expected - listed)[0]} is not listed")

    def read(self, name: str, width: int, count: int | None = None, signed: bool = False) -> np.ndarray:
        info = self.files[name]
        if not isinstance(info, dict):
            raise SparseFlowError(f"{MANIFEST}: entry for {name} must be an object")
        words = info.get("words")
        if not isinstance(words, int) or isinstance(words, bool) or words < 0:
            raise SparseFlowError(f"{MANIFEST}: {name} needs a non-negative word count")
        if info.get("width") != width:
            raise SparseFlowError(f"{name}: the manifest says {info.get('width')!r} bits wide, the configuration gives {width}")
        if count is not None and words != count:
            raise SparseFlowError(f"{name}: the manifest says {words} words, the image's layout needs {count}")
        fp = self.path / name
        try:
            data = fp.read_bytes()
        except FileNotFoundError:
            raise SparseFlowError(f"{name}: missing from {self.path}") from None
        except OSError as exc:
            raise SparseFlowError(f"{name}: cannot read ({exc.strerror})") from None
        w = parse_hex(data, width, words, name)
        if hashlib.sha256(data).hexdigest() != info.get("sha256"):
            raise SparseFlowError(f"{name}: sha256 checksum mismatch (the file was changed after writing)")
        return to_signed(w, width) if signed else w


def load_image(path, expect=None, format: str | None = None) -> Image:
    """Load and fully check an image folder.

    ``expect``: the configuration the caller will use (e.g. the hardware's ``EIEConfig``); the
    image must have been encoded compatibly (same PE count, index and value widths, codebook
    mode...) and must fit its memories. ``format``: the format the caller wants, if any.
    """
    path = Path(path)
    man = _read_manifest(path)
    fmt = man.get("format")
    if fmt not in FORMATS:
        raise SparseFlowError(f"{MANIFEST}: unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if format is not None and fmt != format:
        raise SparseFlowError(f"{path}: holds a {fmt} image, expected {format}")
    try:
        cfg = config_from_dict(man.get("config"))
    except SparseFlowError as exc:
        raise SparseFlowError(f"{MANIFEST}: config: {exc}") from None
    if not isinstance(cfg, _CFG_OF[fmt]):
        raise SparseFlowError(f"{MANIFEST}: a {fmt} image needs a {_CFG_OF[fmt].__name__} config")
    rows, cols = _int_list(man, "shape", 2)
    wb = _weight_bits(cfg)
    full = man
    files = man.get("files")
    has_bias = isinstance(files, dict) and BIAS_FILE in files
    if has_bias:  # the format's readers see the matrix files only
        if _arith(cfg).bias_bits is None:
            raise SparseFlowError(f"{MANIFEST}: {BIAS_FILE} is listed but the configuration has no bias_bits")
        man = dict(man, files={k: v for k, v in files.items() if k != BIAS_FILE})

    if fmt in ("csc", "csr"):
        nnz = _field(man, "nnz", int, "an integer")
        major, minor = (cols, rows) if fmt == "csc" else (rows, cols)
        rd = _Reader(path, man, {"data.hex", "indices.hex", "indptr.hex"})
        if nnz < 0:
            raise SparseFlowError(f"{MANIFEST}: nnz must not be negative")
        wd = {"data": wb, "indices": clog2(minor), "indptr": clog2(nnz + 1)}
        _expect_same("widths", man.get("widths"), wd)
        indptr = rd.read("indptr.hex", wd["indptr"], major + 1)
        m = CSMatrix((rows, cols), fmt, rd.read("data.hex", wd["data"], nnz, signed=True),
                     rd.read("indices.hex", wd["indices"], nnz), indptr)
        _wrap(csc.validate, m, wb)
    elif fmt == "bsr":
        br, bc = _int_list(man, "block", 2)
        _wrap(bsr.check_block, (br, bc))
        nb = _field(man, "blocks", int, "an integer")
        if nb < 0:
            raise SparseFlowError(f"{MANIFEST}: blocks must not be negative")
        gr, gc = -(-rows // br), -(-cols // bc)
        wd = {"data": wb, "indices": clog2(gc), "indptr": clog2(nb + 1)}
        _expect_same("widths", man.get("widths"), wd)
        rd = _Reader(path, man, {"data.hex", "indices.hex", "indptr.hex"})
        indptr = rd.read("indptr.hex", wd["indptr"], gr + 1)
        data = rd.read("data.hex", wb, nb * br * bc, signed=True).reshape(nb, br, bc)
        m = BSRMatrix((rows, cols), (br, bc), data, rd.read("indices.hex", wd["indices"], nb), indptr)
        _wrap(bsr.validate, m)
        _expect_same("nnz", man.get("nnz"), m.nnz, "the data")
    elif fmt == "eie":
        m = _load_eie(path, man, cfg, rows, cols)
    else:
        if cols % 4:
            raise SparseFlowError(f"{MANIFEST}: a 2:4 image needs a multiple of 4 columns, not {cols}")
        _expect_same("widths", man.get("widths"), {"values": 2 * wb, "value": wb, "meta": 4})
        rd = _Reader(path, man, {"values.hex", "meta.hex"})
        groups = rows * (cols // 4)
        packed = rd.read("values.hex", 2 * wb, groups)
        meta = rd.read("meta.hex", 4, groups)
        vals = np.stack([to_signed(packed & ((1 << wb) - 1), wb), to_signed(packed >> wb, wb)], axis=1)
        pos = nm.unpack_meta(meta.reshape(rows, cols // 4))
        m = NMMatrix((rows, cols), vals.reshape(rows, cols // 2), pos.reshape(rows, cols // 2))
        _wrap(_check_matrix, fmt, m, cfg, where="meta.hex")
        _expect_same("nnz", man.get("nnz"), int(np.count_nonzero(m.values)), "the data")
    if fmt in ("csc", "csr"):
        _expect_same("nnz", nnz, m.nnz, "the data")
    bias = None
    if has_bias:
        bb = _arith(cfg).bias_bits
        bias = _Reader(path, {"files": {BIAS_FILE: files[BIAS_FILE]}}, {BIAS_FILE}).read(BIAS_FILE, bb, rows, signed=True)
    if expect is not None:
        check_compatible(fmt, m, cfg, expect)
        if bias is not None:
            _wrap(check_bias, bias, rows, _arith(expect), where=BIAS_FILE)
    return Image(path, fmt, cfg, m, full, bias)


def _wrap(fn, *args, where: str | None = None):
    try:
        return fn(*args)
    except SparseFlowError as exc:
        raise SparseFlowError(f"{where}: {exc}" if where else str(exc)) from None


def _load_eie(path: Path, man: dict, cfg: EIEConfig, rows: int, cols: int) -> EIEMatrix:
    n = cfg.n_pes
    _expect_same("n_pes", man.get("n_pes"), n)
    if rows > cfg.max_rows or cols > cfg.max_cols:  # before sizing any array by the shape
        raise SparseFlowError(f"{MANIFEST}: shape {rows}x{cols} exceeds the configuration's "
                              f"{cfg.max_rows}x{cfg.max_cols}")
    _expect_same("widths", man.get("widths"), {"entry": cfg.entry_bits, "value": cfg.value_bits,
                                               "index": cfg.index_bits, "ptr": cfg.ptr_bits})
    names = {f"pe{k}_{s}.hex" for k in range(n) for s in ("entries", "ptr")}
    if cfg.codebook:
        names.add("codebook.hex")
    rd = _Reader(path, man, names)
    codebook = None
    if cfg.codebook:
        codebook = rd.read("codebook.hex", cfg.arith.weight_bits, 1 << cfg.codebook_bits, signed=True)
        _expect_same("codebook", man.get("codebook"), [int(x) for x in codebook], "the data")
    elif man.get("codebook") is not None:
        raise SparseFlowError(f"{MANIFEST}: a codebook is listed but the configuration has codebook=false")
    ptr = np.zeros((n, cols + 1), dtype=np.int64)
    values, zs = [], []
    for k in range(n):
        ptr[k] = rd.read(f"pe{k}_ptr.hex", cfg.ptr_bits, cols + 1)
        if ptr[k, 0] != 0 or np.any(np.diff(ptr[k]) < 0):
            raise SparseFlowError(f"pe{k}_ptr.hex: column pointers must start at 0 and never decrease")
        v, z = EIEMatrix.unpack(rd.read(f"pe{k}_entries.hex", cfg.entry_bits, int(ptr[k, -1])), cfg)
        values.append(v)
        zs.append(z)
    m = EIEMatrix((rows, cols), n, values, zs, ptr, codebook)
    try:
        _check_eie(m, cfg)
    except SparseFlowError as exc:
        pe = re.match(r"PE (\d+):", str(exc))  # name the PE's entry file when the error is local
        raise SparseFlowError(f"{f'pe{pe.group(1)}_entries.hex' if pe else MANIFEST}: {exc}") from None
    _expect_same("entries_per_pe", man.get("entries_per_pe"), [int(x) for x in m.entries_per_pe], "the data")
    _expect_same("padding_entries", man.get("padding_entries"), m.padding_entries, "the data")
    _expect_same("nnz", man.get("nnz"), int(sum(int(np.count_nonzero(v)) for v in values)), "the data")
    return m


def check_compatible(fmt: str, m, have, expect) -> None:
    """Raise unless an image encoded with ``have`` can be used as is by ``expect``."""
    if not isinstance(expect, _CFG_OF[fmt]):
        raise SparseFlowError(f"a {fmt} image needs a {_CFG_OF[fmt].__name__}, not {type(expect).__name__}")
    if fmt == "eie":
        keys = ["n_pes", "index_bits", "codebook"] + (["codebook_bits"] if have.codebook else [])
        for k in keys:
            if getattr(have, k) != getattr(expect, k):
                raise SparseFlowError(
                    f"image was encoded with {k}={getattr(have, k)}, the expected configuration has {getattr(expect, k)}")
        pairs = [("weight_bits", have.arith.weight_bits, expect.arith.weight_bits)]
        eie.check_fits(m, expect)
    elif fmt == "2:4":
        pairs = [("weight_bits", have.arith.weight_bits, expect.arith.weight_bits)]
        rows, cols = m.shape
        if rows > expect.max_rows or cols > expect.max_cols:
            raise SparseFlowError(f"2:4 matrix is {rows}x{cols}; the engine holds at most "
                                  f"{expect.max_rows}x{expect.max_cols}")
    else:
        pairs = [("weight_bits", have.weight_bits, expect.weight_bits)]
    for k, a, b in pairs:
        if a != b:
            raise SparseFlowError(f"image was encoded with {k}={a}, the expected configuration has {b}")


def load_eie(path, cfg: EIEConfig | None = None) -> tuple[EIEMatrix, EIEConfig]:
    """An EIE image as ``(EIEMatrix, the image's EIEConfig)``; with ``cfg``, checked against it."""
    img = load_image(path, cfg, format="eie")
    return img.matrix, img.config


def load_nm(path, cfg: Sparse24Config | None = None) -> tuple[NMMatrix, Sparse24Config]:
    """A 2:4 image as ``(NMMatrix, the image's Sparse24Config)``; with ``cfg``, checked against it."""
    img = load_image(path, cfg, format="2:4")
    return img.matrix, img.config


def decode_image(path) -> np.ndarray:
    """The dense matrix an image was emitted from."""
    return load_image(path).dense()


def memory_bytes(manifest: dict) -> dict[str, int]:
    """Bytes of each memory (``ceil(words * width / 8)``), by file name."""
    return {name: -(-f["words"] * f["width"] // 8) for name, f in manifest["files"].items()}
