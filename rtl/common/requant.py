"""Output stage shared by every engine: optional bias, ReLU, rounding right shift, saturation.

Implements ``model.hw.reference.requantize`` (see ``model.hw.config`` for the rule). ``shift`` and
``relu`` are run-time inputs so that one compiled design serves every layer of a network;
engines hold them in registers written through their load port, reset to the configuration's
``Requant`` values.
"""
from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.hw.config import Arith

SHIFT_BITS = 5  # shifts 0..31, the range model.hw.config.Requant accepts


class Requantizer(wiring.Component):
    """Combinational output stage (zero latency).

    Ports:
      ``acc``   In(signed(acc_bits)): the accumulator.
      ``bias``  In(signed(bias_bits)): only when ``arith.bias_bits`` is set: added to ``acc``
                first (``acc_bits`` holds the sum, see ``model.hw.config``); without it the
                component is exactly the bias-free one.
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
        } | ({"bias": In(signed(arith.bias_bits))} if arith.bias_bits is not None else {}))

    def elaborate(self, platform):
        m = Module()
        a = self.arith
        acc = self.acc
        if a.bias_bits is not None:  # the sum fits acc_bits by the configuration's sizing rule
            acc = Signal(signed(a.acc_bits), name="biased")
            m.d.comb += acc.eq(self.acc + self.bias)
        if a.requant is None:
            m.d.comb += self.out.eq(acc)
            return m
        y = Mux(self.relu & acc[-1], 0, acc)
        half = (Const(1, unsigned(a.acc_bits + 1)) << self.shift) >> 1  # 2**(shift-1), 0 for shift 0
        rounded = (y + half) >> self.shift  # signed: arithmetic shift
        lo, hi = a.act_range
        m.d.comb += self.out.eq(Mux(rounded < lo, lo, Mux(rounded > hi, hi, rounded)))
        return m
