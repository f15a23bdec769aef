"""A minimal 8N1 UART transmitter for the self-test report."""
from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.errors import SparseFlowError


class UARTTx(wiring.Component):
    """8N1 serial transmitter, ``divisor`` clock cycles per bit.

    Ports:
      ``data`` In(stream of unsigned(8)): bytes to send; ``ready`` is high only while the
               transmitter is idle, so a byte is accepted at most every ``10 * divisor`` cycles.
      ``tx``   Out(1): the serial line, idle high; start bit, 8 data bits LSB first, stop bit.
               It changes one cycle after the byte is accepted (registered output).
    """

    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        if not isinstance(divisor, int) or divisor < 2:
            raise SparseFlowError(f"UART divisor must be an integer >= 2, not {divisor!r}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        shreg = Signal(10, init=0x3FF)  # bit 0 is on the line
        bits = Signal(range(11))
        timer = Signal(range(self.divisor))
        m.d.comb += [self.tx.eq(shreg[0]), self.data.ready.eq(bits == 0)]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [shreg.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                         bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], Const(1, 1))), bits.eq(bits - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
