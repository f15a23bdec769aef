"""Output stage shared by every engine: ReLU, rounding right shift, saturation.

Implements ``model.reference.requantize`` (see ``model.config`` for the rule). ``shift`` and
``relu`` are run-time inputs so that one compiled design serves every layer of a network;
engines hold them in registers written through their load port, reset to the configuration's
``Requant`` values.
"""
from amaranth import Cat, Const, Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.config import Arith

SHIFT_BITS = 5  # shifts 0..31, the range model.config.Requant accepts


class Requantizer(wiring.Component):
    """Combinational output stage (zero latency).

    Ports:
      ``acc``   In(signed(acc_bits)): the accumulator.
      ``shift`` In(unsigned(5)): right shift, rounds half up (ignored without requant).
      ``relu``  In(1): clamp negatives to zero first (ignored without requant).
      ``out``   Out(signed(arith.out_bits)): ``act_bits`` saturated when ``arith.requant`` is set,
                else ``acc`` unchanged.
    """

    def __init__(self, arith: Arith):
        self.arith = arith
        super().__init__({
            "acc": In(signed(arith.acc_bits)),
            "shift": In(unsigned(SHIFT_BITS)),
            "relu": In(1),
            "out": Out(signed(arith.out_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        a = self.arith
        if a.requant is None:
            m.d.comb += self.out.eq(self.acc)
            return m
        y = Mux(self.relu & self.acc[-1], 0, self.acc)
        half = (Const(1, unsigned(a.acc_bits + 1)) << self.shift) >> 1  # 2**(shift-1), 0 for shift 0
        rounded = (y + half) >> self.shift  # signed: arithmetic shift
        lo, hi = a.act_range
        m.d.comb += self.out.eq(Mux(rounded < lo, lo, Mux(rounded > hi, hi, rounded)))
        return m
