"""A two-word FIFO whose registers are enabled by the write side alone."""
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class PairBuffer(wiring.Component):
    """Two-word FIFO, cycle for cycle the same as ``SyncFIFO(width, depth=2)``, built so that a
    late read (``r_en``) reaches only a few flip-flops: the two data slots load on a write
    alone, ``r_data`` is the slot a read pointer selects (one 2:1 multiplexer, no memory), and
    ``w_rdy`` and ``r_rdy`` are flip-flops. Used where a handshake crosses the chip (a queue
    between a central producer and a distant consumer) without losing throughput.

    Ports (as :class:`amaranth.lib.fifo.SyncFIFO`):
      ``w_data`` In(width), ``w_en`` In(1), ``w_rdy`` Out(1): a word is written at the edge
                 when ``w_en & w_rdy``; ``w_rdy`` is low while two words are held, even in a
                 cycle the head is read.
      ``r_data`` Out(width), ``r_en`` In(1), ``r_rdy`` Out(1): the head; it is consumed at the
                 edge when ``r_en & r_rdy``. A word written at an edge can be read in the next
                 cycle.
      ``head_load`` Out(1), ``head_next`` Out(width): the head changes to ``head_next`` at this
                 edge (for a user that keeps per-head state beside the buffer).
    """

    def __init__(self, width: int):
        self.width = width
        # The write and read pointers, created here so the formal proof (verif/formal/fifo.py)
        # can state its invariant on them.
        # Named as the Verilog always had them (the write pointer anonymous): an unchanged
        # netlist keeps nextpnr's placement, and the measured Fmax, as they were.
        self._w_ptr, self._r_ptr = Signal(), Signal(name="r_ptr")
        super().__init__({
            "w_data": In(width), "w_en": In(1), "w_rdy": Out(1, init=1),
            "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
            "head_load": Out(1), "head_next": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        slots = [Signal(self.width, name=f"slot{i}", reset_less=True) for i in range(2)]  # data only
        w_ptr, r_ptr = self._w_ptr, self._r_ptr
        push = self.w_en & self.w_rdy
        pop = self.r_en & self.r_rdy
        full = ~self.w_rdy
        with m.If(push & ~w_ptr):
            m.d.sync += slots[0].eq(self.w_data)
        with m.If(push & w_ptr):
            m.d.sync += slots[1].eq(self.w_data)
        # The pointers and flags are written every cycle (no enable built from the handshake).
        m.d.sync += [w_ptr.eq(w_ptr ^ push), r_ptr.eq(r_ptr ^ pop)]
        # level' = level + push - pop, kept as the two flags (level 2: w_rdy low).
        m.d.sync += [self.r_rdy.eq(push | full | (self.r_rdy & ~pop)),
                     self.w_rdy.eq(~((full & ~pop) | (push & self.r_rdy & ~pop)))]
        m.d.comb += [
            self.r_data.eq(Mux(r_ptr, slots[1], slots[0])),
            self.head_load.eq((pop & (full | push)) | (push & ~self.r_rdy)),
            self.head_next.eq(Mux(full, Mux(r_ptr, slots[0], slots[1]), self.w_data)),
        ]
        return m
