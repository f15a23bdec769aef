"""What every engine's ports share: the run-time register file behind ``load`` and the counters.

Both the EIE array and the lane engines (2:4, dense) have the same four run-time registers,
written by a ``load`` word of their register kind with the address in ``addr``; host code
(load programs, testbenches, the native harness) takes the addresses and widths from here.
"""
from amaranth import signed
from amaranth.lib import data, enum

# Width of every cycle/vector counter port (``cycles``, ``busy``, ...). The native harness
# gets it as ``SF_COUNTER_BITS`` (``verif.native``).
COUNTER_BITS = 32


def sample_layout(bits: int, width: int = 1) -> data.StructLayout:
    """Payload of the ``x`` and ``y`` streams: one signed element of a vector, ``last`` on the
    vector's final one. ``width > 1`` (the EIE array's wide input, ``EIEConfig.frontend_width``):
    ``data`` holds ``width`` elements, element ``i`` in bits ``i * bits ...``."""
    elem = signed(bits) if width == 1 else data.ArrayLayout(signed(bits), width)
    return data.StructLayout({"data": elem, "last": 1})


def packed_inputs(x, act_bits: int, width: int = 1):
    """The ``x`` stream words of a (C, B) batch, ``(B, ceil(C / width))``: vector by vector,
    ``width`` elements per word (the last word of a vector padded with zeros), ``last`` on each
    vector's final word (:func:`sample_layout`). Every engine's input port takes these (width 1;
    the EIE array its ``frontend_width``). Words wider than 63 bits are Python ints."""
    import numpy as np
    from rtl.common.packing import pack
    x = np.asarray(x, dtype=np.int64).T
    if width == 1:
        return pack(sample_layout(bits=act_bits), data=x, last=np.arange(x.shape[1]) == x.shape[1] - 1)
    n_words = -(-x.shape[1] // width)
    lanes = np.zeros((x.shape[0], n_words * width), dtype=np.int64)
    lanes[:, :x.shape[1]] = x
    lanes = (lanes & ((1 << act_bits) - 1)).reshape(x.shape[0], n_words, width).astype(object)
    words = sum(lanes[:, :, i] << (i * act_bits) for i in range(width))
    words[:, -1] += 1 << (width * act_bits)  # last
    if width * act_bits + 1 <= 63:
        return words.astype(np.int64)
    return words


class Reg(enum.IntEnum, shape=2):
    """Run-time register addresses (``addr`` of a register write). ``SHIFT``/``RELU`` feed the
    requantizer (:class:`rtl.common.requant.Requantizer`), so they matter only with ``requant``."""
    ROWS = 0
    COLS = 1
    SHIFT = 2
    RELU = 3


def register_writes(rows: int, cols: int, requant=None) -> list[tuple[Reg, int]]:
    """``(address, value)`` of the register writes that end a load program: rows, cols and,
    when ``requant`` (a :class:`model.hw.config.Requant`) is given, shift and ReLU."""
    regs = [(Reg.ROWS, int(rows)), (Reg.COLS, int(cols))]
    if requant is not None:
        regs += [(Reg.SHIFT, int(requant.shift)), (Reg.RELU, int(requant.relu))]
    return regs


def bias_values(bias, rows: int, arith):
    """The per-row bias words of a load program: ``bias`` checked against ``arith``
    (:func:`model.hw.reference.check_bias`), zeros when None (so no earlier job's bias stays);
    None when the configuration has no bias (and then ``bias`` must be None)."""
    import numpy as np
    from model.hw.reference import check_bias
    b = check_bias(bias, rows, arith)
    if arith.bias_bits is None:
        return None
    return np.zeros(rows, dtype=np.int64) if b is None else np.asarray(b, dtype=np.int64)
