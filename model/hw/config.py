"""The one source of truth for every width, size and format parameter.

The encoder (``model.hw.formats``), the integer reference (``model.hw.reference``), the cycle
model, the RTL constructors (``rtl/``), the testbenches (``verif/``) and the reports all take
one of these frozen objects. Nothing else declares a width.

Arithmetic (the contract the RTL must meet bit for bit, see ``model.hw.reference``):

* weights are signed ``weight_bits`` integers (two's complement); activations are signed
  ``act_bits`` integers;
* products are exact and are summed in a signed ``acc_bits`` accumulator. ``acc_bits`` must be
  at least ``weight_bits + act_bits + ceil(log2(max_cols))`` so that no sum over a row can
  overflow: the accumulator never wraps and never saturates, whatever the summation order;
* the output stage, when ``requant`` is set, applies ReLU (optional), then an arithmetic right
  shift by ``shift`` that rounds half up (``(acc + 2**(shift-1)) >> shift``), then saturates to
  the signed ``act_bits`` range: that is the activation the next layer consumes. Without
  ``requant`` the raw accumulator is the result;
* optional per-row bias (``bias_bits`` set; ``None``, the default, builds no bias hardware and
  changes nothing): row ``i``'s signed ``bias_bits`` bias ``b_i`` is added to its sum in the
  output stage, before ReLU and the shift: ``y_i = requant(sum_j W_ij x_j + b_i)``. Sizing
  rule: a ``p``-bit plus a ``q``-bit signed value fits ``max(p, q) + 1`` bits, so with a bias
  ``acc_bits`` must be at least ``max(weight_bits + act_bits + ceil(log2(max_cols)),
  bias_bits) + 1`` (one bit more than without, for any bias up to the products' sum width),
  and ``W @ x + b`` never wraps either. The engines keep the biases in a ``max_rows``-word
  memory written through their ``load`` port (a bias word kind) and read it beside each
  result; a job without a bias loads zeros.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
import math

from model.errors import SparseFlowError


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SparseFlowError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise SparseFlowError(f"{name} must be {rng}, not {value}")


def clog2(n: int) -> int:
    """Bits to index ``n`` items (at least 1)."""
    return max(1, math.ceil(math.log2(max(n, 1))))


def pow2_ceil(n: int) -> int:
    """The smallest power of two >= ``n`` (1 for n <= 1): memory sizes that let similar layers share a build."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


@dataclass(frozen=True)
class Requant:
    """Output stage between layers: optional ReLU, rounding right shift, saturation."""

    shift: int = 0
    relu: bool = True

    def __post_init__(self):
        _check_int("shift", self.shift, 0, 31)


@dataclass(frozen=True)
class Arith:
    """Fixed-point widths shared by every engine."""

    weight_bits: int = 8
    act_bits: int = 16
    acc_bits: int | None = None  # None: the smallest width that cannot overflow
    max_cols: int = 1024
    requant: Requant | None = None
    bias_bits: int | None = None  # None: no bias; else signed per-row bias width (see above)

    def __post_init__(self):
        _check_int("weight_bits", self.weight_bits, 2, 16)
        _check_int("act_bits", self.act_bits, 2, 32)
        _check_int("max_cols", self.max_cols, 1)
        need = self.sum_bits
        if self.bias_bits is not None:
            _check_int("bias_bits", self.bias_bits, 2, 63)
            need = max(need, self.bias_bits) + 1
        if self.acc_bits is None:
            object.__setattr__(self, "acc_bits", need)
        _check_int("acc_bits", self.acc_bits, need, 64)

    @property
    def sum_bits(self) -> int:
        """Width that holds any sum of ``max_cols`` products (``acc_bits`` without a bias)."""
        return self.weight_bits + self.act_bits + clog2(self.max_cols)

    @property
    def bias_range(self) -> tuple[int, int]:
        if self.bias_bits is None:
            raise SparseFlowError("the configuration has no bias (Arith.bias_bits is None)")
        return -(1 << (self.bias_bits - 1)), (1 << (self.bias_bits - 1)) - 1

    @property
    def weight_range(self) -> tuple[int, int]:
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1

    @property
    def act_range(self) -> tuple[int, int]:
        return -(1 << (self.act_bits - 1)), (1 << (self.act_bits - 1)) - 1

    @property
    def acc_range(self) -> tuple[int, int]:
        return -(1 << (self.acc_bits - 1)), (1 << (self.acc_bits - 1)) - 1

    @property
    def out_bits(self) -> int:
        """Width of a result word: the activation width after requantization, else the accumulator."""
        return self.act_bits if self.requant is not None else self.acc_bits


# The front end the CLI (spmv, compile, demo, synth) builds unless told otherwise: 8
# activations per input word (``EIEConfig.frontend_width``; 1 is the one-element front end).
DEFAULT_FRONTEND_WIDTH = 8
# Arrays of more PEs than this are built for timing (``EIEConfig.wide``): 32- or 64-way trees
# (the read-out multiplexer with the requantizer, the broadcast's "every queue has it", the
# drain check) do not fit one 100 MHz ECP5 cycle.
WIDE_ARRAY_PES = 16


@dataclass(frozen=True)
class EIEConfig:
    """An EIE-like PE array.

    Rows of the weight matrix are interleaved over ``n_pes`` PEs (row ``i`` lives on PE
    ``i % n_pes`` at local row ``i // n_pes``). Each PE stores its entries as
    ``(value, relative index)`` words of ``entry_bits`` bits, at most ``max_entries`` of them,
    and ``max_cols + 1`` column pointers. ``fifo_depth`` is the depth of each PE's activation
    queue. With ``codebook`` the value field is a ``codebook_bits`` index into a shared table of
    ``2**codebook_bits`` weights whose entry 0 is the zero weight (used by padding entries).
    ``frontend_width`` (a power of two) is the number of activations the input port takes per
    word (``rtl.eie.nonzero``): 1 is the one-element front end (a vector costs at least its
    column count), ``K > 1`` the scanning front end that sends one non-zero per cycle and skips
    zeros ``K`` at a time (a vector costs at least its non-zero count, or ``cols / K``).
    """

    n_pes: int = 4
    arith: Arith = field(default_factory=Arith)
    index_bits: int = 4
    fifo_depth: int = 8
    max_rows: int = 256
    max_entries: int = 1024
    codebook: bool = False
    codebook_bits: int = 4
    frontend_width: int = 1
    wide_timing: bool | None = None  # None: for arrays of more than WIDE_ARRAY_PES PEs

    def __post_init__(self):
        _check_int("n_pes", self.n_pes, 1, 256)
        if self.wide_timing not in (None, False, True):
            raise SparseFlowError(f"wide_timing must be None, False or True, not {self.wide_timing!r}")
        _check_int("frontend_width", self.frontend_width, 1, 64)
        if self.frontend_width & (self.frontend_width - 1):
            raise SparseFlowError(f"frontend_width must be a power of two, not {self.frontend_width}")
        _check_int("index_bits", self.index_bits, 1, 16)
        _check_int("fifo_depth", self.fifo_depth, 1, 1024)
        _check_int("max_rows", self.max_rows, 1)
        _check_int("max_entries", self.max_entries, 1)
        _check_int("codebook_bits", self.codebook_bits, 1, 8)

    # Derived sizes: the RTL, the encoder and the image writer all read them from here.
    @property
    def max_cols(self) -> int:
        return self.arith.max_cols

    @property
    def rows_per_pe(self) -> int:
        return -(-self.max_rows // self.n_pes)

    @property
    def value_bits(self) -> int:
        return self.codebook_bits if self.codebook else self.arith.weight_bits

    @property
    def entry_bits(self) -> int:
        """Entry word: relative index in the high ``index_bits``, value (or code) in the low bits."""
        return self.index_bits + self.value_bits

    @property
    def wide(self) -> bool:
        """The array is built for timing at many PEs (``wide_timing``; by default above
        :data:`WIDE_ARRAY_PES` PEs): every net between the centre and all PEs starts or ends
        at a register: a credit-based broadcast whose words land a cycle later, a registered
        drain tree, a pipelined read-out into a result FIFO (``docs/eie.md``, wide arrays;
        ``model.hw.cyclemodel`` counts the extra cycles)."""
        if self.wide_timing is not None:
            return self.wide_timing
        return self.n_pes > WIDE_ARRAY_PES

    @property
    def max_gap(self) -> int:
        """Largest run of zeros a relative index can express before padding is needed."""
        return (1 << self.index_bits) - 1

    @property
    def ptr_bits(self) -> int:
        """Column pointers count entries 0..max_entries inclusive."""
        return clog2(self.max_entries + 1)

    def with_(self, **changes) -> "EIEConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class LaneConfig:
    """An engine of ``lanes`` MAC lanes of 2 multipliers each (``rtl.common.lanes``): the dense
    baseline's configuration (:data:`DenseConfig`) and the base of :class:`Sparse24Config`.

    The weight matrix is ``max_rows x max_cols`` at most; ``lanes`` rows are computed in
    parallel, row ``r`` on lane ``r % lanes``.
    """

    lanes: int = 4
    arith: Arith = field(default_factory=Arith)
    max_rows: int = 256

    def __post_init__(self):
        _check_int("lanes", self.lanes, 1, 256)
        _check_int("max_rows", self.max_rows, 1)

    @property
    def max_cols(self) -> int:
        return self.arith.max_cols

    @property
    def multipliers(self) -> int:
        return self.lanes * 2

    def with_(self, **changes):
        return replace(self, **changes)


DenseConfig = LaneConfig  # the dense baseline needs nothing beyond the lanes


@dataclass(frozen=True)
class Sparse24Config(LaneConfig):
    """A 2:4 structured-sparse engine (the dense baseline also accepts one, see :class:`LaneConfig`).

    The weight matrix is ``max_rows x max_cols`` at most, ``max_cols`` a multiple of 4. Each row
    is stored as ``max_cols/4`` groups of two kept values plus two 2-bit positions. ``lanes``
    rows are computed in parallel, one 2:4 MAC unit (2 multipliers) per lane.
    """

    n: int = 2
    m: int = 4

    def __post_init__(self):
        super().__post_init__()
        if (self.n, self.m) != (2, 4):
            raise SparseFlowError(f"only 2:4 is built in hardware, not {self.n}:{self.m}")
        if self.arith.max_cols % self.m:
            raise SparseFlowError(f"max_cols must be a multiple of {self.m}, not {self.arith.max_cols}")

    @property
    def pos_bits(self) -> int:
        return clog2(self.m)

    @property
    def groups_per_row(self) -> int:
        return self.max_cols // self.m

    @property
    def multipliers(self) -> int:
        return self.lanes * self.n


@dataclass(frozen=True)
class BSRConfig(LaneConfig):
    """The block-sparse engine (``rtl.bsr.engine.BSREngine``): BSR weights of square
    ``block x block`` blocks (2 or 4), ``2 * lanes`` multipliers (the dense lane engine's count
    for the same ``lanes``), at most ``max_words`` memory words per matrix.

    The multipliers form ``units`` block slices of ``block`` rows x ``slice_cols`` columns:
    ``slice_cols = min(block, 2*lanes/block)`` and ``units = 2*lanes / (block*slice_cols)``.
    One memory word holds ``units`` slices of one block row's non-zero blocks (see
    ``docs/bsr.md``); the engine runs one word per cycle.
    """

    block: int = 4
    max_words: int = 1024

    def __post_init__(self):
        super().__post_init__()
        if self.block not in (2, 4):
            raise SparseFlowError(f"block must be 2 or 4, not {self.block}")
        _check_int("max_words", self.max_words, 1)
        m, q = 2 * self.lanes, 2 * self.lanes // self.block  # q: multipliers per block row
        if m % self.block or (self.block % q if q <= self.block else q % self.block):
            raise SparseFlowError(f"{m} multipliers ({self.lanes} lanes) do not tile {self.block}x{self.block} "
                                  f"blocks: try lanes {self.block // 2}, {self.block} or {2 * self.block}")

    @property
    def slice_cols(self) -> int:
        """Columns of a block one unit multiplies per cycle (1, 2 or 4)."""
        return min(self.block, 2 * self.lanes // self.block)

    @property
    def units(self) -> int:
        """Block slices per memory word (multiplied in parallel)."""
        return 2 * self.lanes // (self.block * self.slice_cols)

    @property
    def slices_per_block(self) -> int:
        return self.block // self.slice_cols

    @property
    def groups_per_vector(self) -> int:
        """Input-buffer words (``slice_cols`` activations each) per vector: ``max_cols`` padded to blocks."""
        return -(-self.max_cols // self.block) * self.slices_per_block


# ----------------------------------------------------------------------------------------------
# Configuration objects <-> JSON data: image manifests, compiled folders and reports all use these.

_CONFIG_TYPES = {c.__name__: c for c in (Arith, Requant, EIEConfig, LaneConfig, Sparse24Config, BSRConfig)}
_NESTED = {"arith": Arith, "requant": Requant}


def config_to_dict(cfg) -> dict:
    """A configuration object (``Arith``, ``EIEConfig``, ``LaneConfig``, ``Sparse24Config``) as plain JSON data."""
    if type(cfg).__name__ not in _CONFIG_TYPES:
        raise SparseFlowError(f"not a configuration object: {type(cfg).__name__}")
    out = {"type": type(cfg).__name__}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = config_to_dict(v) if is_dataclass(v) else v
    return out


def config_from_dict(d, _want=None):
    """Inverse of :func:`config_to_dict`; a missing field takes its default, an unknown one is an error."""
    if not isinstance(d, dict) or d.get("type") not in _CONFIG_TYPES:
        raise SparseFlowError(f"config must be an object with a type in {sorted(_CONFIG_TYPES)}")
    cls = _CONFIG_TYPES[d["type"]]
    if _want is not None and cls is not _want:
        raise SparseFlowError(f"config field must be a {_want.__name__}, not {cls.__name__}")
    names = {f.name: f for f in fields(cls)}
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
