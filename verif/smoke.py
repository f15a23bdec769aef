"""A tiny stream adder that proves the toolchain on a fresh machine (tests/test_toolchain.py)."""
from amaranth import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out


def pair_layout(width: int) -> data.StructLayout:
    """The input payload ``{a, b}`` (the testbench packs it from this too)."""
    return data.StructLayout({"a": signed(width), "b": signed(width)})


class SmokeAdder(wiring.Component):
    """``o.payload = i.payload.a + i.payload.b``, one register stage.

    Ports: ``i`` (stream in, struct ``{a, b}`` of signed ``width``), ``o`` (stream out, signed
    ``width + 1``). Latency 1 cycle; ``i.ready`` is high whenever the output register is empty
    or being read.
    """

    def __init__(self, width: int = 8):
        self.width = width
        super().__init__({"i": In(stream.Signature(pair_layout(width))), "o": Out(stream.Signature(signed(width + 1)))})

    def elaborate(self, platform):
        m = Module()
        take = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(take)
        with m.If(take):
            m.d.sync += [self.o.valid.eq(self.i.valid),
                         self.o.payload.eq(self.i.payload.a + self.i.payload.b)]
        return m
