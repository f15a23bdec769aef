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


def sample_layout(bits: int) -> data.StructLayout:
    """Payload of the ``x`` and ``y`` streams: one signed element of a vector, ``last`` on the
    vector's final one."""
    return data.StructLayout({"data": signed(bits), "last": 1})


def packed_inputs(x, act_bits: int):
    """The ``x`` stream words of a (C, B) batch, ``(B, C)``: vector by vector, ``last`` on each
    vector's final element (:func:`sample_layout`). Every engine's input port takes these."""
    import numpy as np
    from rtl.common.packing import pack
    x = np.asarray(x, dtype=np.int64).T
    return pack(sample_layout(bits=act_bits), data=x, last=np.arange(x.shape[1]) == x.shape[1] - 1)


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
