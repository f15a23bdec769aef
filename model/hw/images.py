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
image is never partial; it replaces only a folder SparseFlow wrote (``model.outputs``). The
manifest carries its own checksum (``manifest_sha256``). :func:`load_image` checks everything (files, line counts, hex digits,
widths, checksums, manifest consistency, the configuration the caller expects) and returns
the very objects the encoders return (:class:`EIEMatrix`, :class:`NMMatrix`, ...); every
problem is a one-line :class:`SparseFlowError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.hw.config import Arith, EIEConfig, Sparse24Config, config_from_dict, config_to_dict
from model.hw import formats
from model import outputs
from model.errors import SparseFlowError
from model.hw.formats import arith_of, to_signed
from model.hw.formats.bsr import BSRMatrix
from model.hw.formats.csc import CSMatrix
from model.hw.formats.eie import EIEMatrix
from model.hw.formats.nm import NMMatrix
from model.hw.reference import check_bias

VERSION = 1
MANIFEST = "manifest.json"
BIAS_FILE = "bias.hex"
MAX_DENSE = 1 << 30  # elements of a matrix an image may hold (8 GiB decoded as int64)
FORMATS = formats.NAMES  # ("csc", "csr", "bsr", "eie", "2:4"): the registry in model.hw.formats

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
# Writing

def _legacy_image(folder: Path) -> set[str] | None:
    """An image folder written before output markers existed: its manifest lists every file."""
    try:
        man = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(man, dict) or "sparseflow_image" not in man or not isinstance(man.get("files"), dict):
        return None
    return {str(n) for n in man["files"]} | {MANIFEST}


def manifest_checksum(manifest: dict) -> str:
    """The manifest's own sha256: of its canonical JSON without the ``manifest_sha256`` field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal_manifest(manifest: dict) -> dict:
    """Set ``manifest_sha256`` (any edit of the manifest is then detected by :func:`load_image`)."""
    manifest["manifest_sha256"] = manifest_checksum(manifest)
    return manifest


def check_out(out) -> None:
    """Raise unless ``out`` may be written as an image (new, empty, or SparseFlow's own output)."""
    outputs.check_dir(out, legacy=_legacy_image)


def write_image(out, matrix, cfg, bias=None, command: str = "emit") -> dict:
    """Write ``matrix`` (an encoder's output for ``cfg``) as an image folder ``out``; return the manifest.

    ``cfg``: ``EIEConfig`` for :class:`EIEMatrix`, ``Sparse24Config`` for :class:`NMMatrix`,
    ``Arith`` for CSC/CSR/BSR. ``bias``: ``None`` or one signed ``bias_bits`` integer per row
    (the configuration must set ``bias_bits``), written as ``bias.hex``. A new or empty folder,
    or one SparseFlow wrote (see :mod:`model.outputs`), is replaced atomically; anything else
    there is an error.
    """
    out = Path(out)
    fmt = formats.format_of(matrix)
    _check_config(fmt, cfg)
    fmt.check(matrix, cfg)
    bias = check_bias(bias, int(matrix.shape[0]), arith_of(cfg))
    manifest = {"sparseflow_image": VERSION, "format": fmt.name, "shape": [int(s) for s in matrix.shape],
                "config": config_to_dict(cfg)}
    manifest.update(fmt.summary(matrix, cfg))
    with outputs.new_dir(out, command, legacy=_legacy_image) as tmp:
        files = {}
        mems = fmt.memories(matrix, cfg)
        if bias is not None:
            mems[BIAS_FILE] = (bias, arith_of(cfg).bias_bits, True)
        for name, (words, width, _signed) in mems.items():
            try:
                digest = write_hex(tmp / name, words, width)
            except OSError as exc:
                raise outputs.os_error(out, exc) from None
            files[name] = {"words": int(len(words)), "width": int(width), "sha256": digest}
        manifest["files"] = files
        seal_manifest(manifest)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


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
    fmt = formats.format_of(m)
    rows, cols = m.shape
    if rows * cols > MAX_DENSE:
        raise SparseFlowError(f"a {rows}x{cols} matrix is too large to decode to a dense array "
                              f"(at most {MAX_DENSE} elements)")
    return fmt.decode(m)


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
    if "manifest_sha256" not in man:
        raise SparseFlowError(f"{MANIFEST}: no manifest_sha256 (written by an older SparseFlow, or edited); "
                              f"emit the image again")
    if man["manifest_sha256"] != manifest_checksum(man):
        raise SparseFlowError(f"{MANIFEST}: manifest_sha256 checksum mismatch (the manifest was changed after writing)")
    return man


def _expect_same(name: str, got, want, source: str = "the configuration") -> None:
    if got != want:
        raise SparseFlowError(f"{MANIFEST}: {name} is {got!r} but {source} gives {want!r}")


class _Reader:
    """A format's view of the image while it loads (``Format.load``): the manifest's fields and
    the files, each read and checked against the manifest; every error names the file."""

    def __init__(self, path: Path, man: dict):
        self.path, self.man, self.files = path, man, {}

    def fail(self, msg: str) -> SparseFlowError:
        """An error about the manifest (the caller raises it)."""
        return SparseFlowError(f"{MANIFEST}: {msg}")

    def field(self, key: str, kind, what: str):
        return _field(self.man, key, kind, what)

    def int_list(self, key: str, n: int | None = None) -> list[int]:
        return _int_list(self.man, key, n)

    def expect(self, key: str, want, source: str = "the configuration") -> None:
        """Raise unless the manifest's ``key`` equals ``want`` (what ``source`` gives)."""
        _expect_same(key, self.man.get(key), want, source)

    def expect_files(self, expected) -> None:
        """Raise unless the manifest lists exactly the files ``expected``."""
        self.files = _field(self.man, "files", dict, "an object")
        listed = set(self.files)
        if listed - expected:
            raise self.fail(f"unexpected file {sorted(listed - expected)[0]} for this format")
        if expected - listed:
            raise self.fail(f"file {sorted(expected - listed)[0]} is not listed")

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
    fmt = formats.get(fmt)
    if not isinstance(cfg, fmt.config_type):
        raise SparseFlowError(f"{MANIFEST}: a {fmt.name} image needs a {fmt.config_type.__name__} config")
    rows, cols = _int_list(man, "shape", 2)
    if rows * cols > MAX_DENSE:  # before sizing any array by the shape
        raise SparseFlowError(f"{MANIFEST}: shape {rows}x{cols} is too large (at most {MAX_DENSE} elements)")
    full = man
    files = man.get("files")
    has_bias = isinstance(files, dict) and BIAS_FILE in files
    if has_bias:  # the format's readers see the matrix files only
        if arith_of(cfg).bias_bits is None:
            raise SparseFlowError(f"{MANIFEST}: {BIAS_FILE} is listed but the configuration has no bias_bits")
        man = dict(man, files={k: v for k, v in files.items() if k != BIAS_FILE})
    m = fmt.load(_Reader(path, man), cfg, rows, cols)
    bias = None
    if has_bias:
        rd = _Reader(path, {"files": {BIAS_FILE: files[BIAS_FILE]}})
        rd.expect_files({BIAS_FILE})
        bias = rd.read(BIAS_FILE, arith_of(cfg).bias_bits, rows, signed=True)
    if expect is not None:
        check_compatible(fmt.name, m, cfg, expect)
        if bias is not None:
            formats.wrap(check_bias, bias, rows, arith_of(expect), where=BIAS_FILE)
    return Image(path, fmt.name, cfg, m, full, bias)


def _check_config(fmt, cfg) -> None:
    if not isinstance(cfg, fmt.config_type):
        raise SparseFlowError(f"a {fmt.name} image needs a {fmt.config_type.__name__}, not {type(cfg).__name__}")


def check_compatible(fmt: str, m, have, expect) -> None:
    """Raise unless an image encoded with ``have`` can be used as is by ``expect``."""
    fmt = formats.get(fmt)
    _check_config(fmt, expect)
    fmt.check_compatible(m, have, expect)
    a, b = arith_of(have).weight_bits, arith_of(expect).weight_bits
    if a != b:
        raise SparseFlowError(f"image was encoded with weight_bits={a}, the expected configuration has {b}")


def load_eie(path, cfg: EIEConfig | None = None) -> tuple[EIEMatrix, EIEConfig]:
    """An EIE image as ``(EIEMatrix, the image's EIEConfig)``; with ``cfg``, checked against it."""
    img = load_image(path, cfg, format=formats.eie.EIE.name)
    return img.matrix, img.config


def load_nm(path, cfg: Sparse24Config | None = None) -> tuple[NMMatrix, Sparse24Config]:
    """A 2:4 image as ``(NMMatrix, the image's Sparse24Config)``; with ``cfg``, checked against it."""
    img = load_image(path, cfg, format=formats.nm.NM24.name)
    return img.matrix, img.config


def decode_image(path) -> np.ndarray:
    """The dense matrix an image was emitted from."""
    return load_image(path).dense()


def memory_bytes(manifest: dict) -> dict[str, int]:
    """Bytes of each memory (``ceil(words * width / 8)``), by file name."""
    return {name: -(-f["words"] * f["width"] // 8) for name, f in manifest["files"].items()}
