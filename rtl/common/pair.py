"""A two-word FIFO whose head sits in flip-flops (a skid buffer)."""
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class PairBuffer(wiring.Component):
    """Two-word FIFO, cycle for cycle the same as ``SyncFIFO(width, depth=2)``, but ``r_data``
    is a register (no read multiplexer behind a pointer) and both ``w_rdy`` and ``r_rdy`` are
    flip-flops. Used where a handshake has to be cut without losing throughput.

    Ports (as :class:`amaranth.lib.fifo.SyncFIFO`):
      ``w_data`` In(width), ``w_en`` In(1), ``w_rdy`` Out(1): a word is written at the edge
                 when ``w_en & w_rdy``; ``w_rdy`` is low while two words are held, even in a
                 cycle the head is read.
      ``r_data`` Out(width), ``r_en`` In(1), ``r_rdy`` Out(1): the head; it is consumed at the
                 edge when ``r_en & r_rdy``. A word written at an edge can be read in the next
                 cycle.
      ``head_load`` Out(1), ``head_next`` Out(width): ``r_data`` takes ``head_next`` at this
                 edge (for a user that keeps per-head state beside the buffer).
    """

    def __init__(self, width: int):
        self.width = width
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "head_load": Out(1), "head_next": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        second = Signal(self.width)
        second_valid = Signal()
        m.d.comb += self.w_rdy.eq(~second_valid)
        push = self.w_en & ~second_valid
        pop = self.r_en & self.r_rdy
        # r_data loads one value whenever it loads (the second word if held, else the incoming
        # one): only the enable depends on ``pop``, which comes late in the cycle.
        m.d.comb += [self.head_load.eq((pop & (second_valid | push)) | (push & ~self.r_rdy)),
                     self.head_next.eq(Mux(second_valid, second, self.w_data))]
        with m.If(self.head_load):
            m.d.sync += self.r_data.eq(self.head_next)
        with m.If(pop):
            with m.If(second_valid):
                m.d.sync += second_valid.eq(0)
            with m.Elif(~push):
                m.d.sync += self.r_rdy.eq(0)
        with m.Elif(push):
            with m.If(self.r_rdy):
                m.d.sync += [second.eq(self.w_data), second_valid.eq(1)]
            with m.Else():
                m.d.sync += self.r_rdy.eq(1)
        return m
