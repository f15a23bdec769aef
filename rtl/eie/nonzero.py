"""Non-zero detection: numbers the input elements by column and passes on only the non-zeros."""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.hw.config import EIEConfig
from model.errors import SparseFlowError
from rtl.common.pair import PairBuffer

from .layouts import col_bits, elem_layout, nz_layout


class NonZeroDetect(wiring.Component):
    """Zero-skipping front end of the array, behind a two-word input queue.

    Ports:
      ``x``      In(stream {data: signed(act_bits), last}): the vector in column order.
      ``nz``     Out(stream {col, data}): the non-zero elements with their column index.
      ``enable`` In(1): take elements from the input queue (the array lowers it between vectors).
      ``cols``   In(col_bits): columns of the loaded matrix; elements at ``col >= cols`` are
                 dropped. Change it only while ``enable`` is low, and keep ``enable`` low in the
                 cycle after (the range check is registered).
      ``accept`` Out(1): an element leaves the input queue this cycle (is numbered).
      ``end``    Out(1): the element accepted this cycle is the vector's last.
      ``waiting`` Out(1): an element is at the input queue's head (a flip-flop).

    Timing: ``x`` writes a two-word :class:`rtl.common.pair.PairBuffer` (timed like a
    ``SyncFIFO`` of depth 2), so ``x.ready`` is a flip-flop (the queue is not full), the
    queue's registers load on a write alone (a late ``enable`` reaches few flip-flops) and an
    element is taken at the earliest one cycle after its transfer on ``x``; at full input speed the queue never runs dry, so the
    elements are taken one per cycle whenever they can go. The queue also stores
    ``data == 0``, computed on the way in. A zero (or dropped) element at the queue head is
    taken at once, whatever ``nz.ready``: zeros never wait for the PEs. A non-zero is taken in
    the cycle it moves on through ``nz``. The column counter restarts at 0 after an element
    with ``last``.
    """

    def __init__(self, cfg: EIEConfig):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        super().__init__({
            "x": In(stream.Signature(elem_layout(cfg))),
            "nz": Out(stream.Signature(nz_layout(cfg))),
            "enable": In(1),
            "cols": In(col_bits(cfg)),
            "accept": Out(1),
            "end": Out(1),
            "waiting": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        a_bits = self.cfg.arith.act_bits
        xq = m.submodules.xq = PairBuffer(width=a_bits + 2)
        m.d.comb += [
            self.x.ready.eq(xq.w_rdy),
            xq.w_en.eq(self.x.valid),
            xq.w_data.eq(Cat(self.x.payload.data, self.x.payload.last, self.x.payload.data == 0)),
        ]
        data, last, zero = xq.r_data[:a_bits].as_signed(), xq.r_data[a_bits], xq.r_data[a_bits + 1]

        col = Signal(col_bits(self.cfg))
        # ``col < cols``, registered: the handshake sees a flip-flop, not a comparator. Its next
        # value is chosen by ``accept`` among compares made in parallel from registers.
        in_range = Signal(init=1)
        nonzero = ~zero & in_range
        more_cols = col != self.cfg.max_cols
        m.d.sync += in_range.eq(Mux(self.accept, Mux(last, self.cols != 0, Mux(more_cols, col + 1 < self.cols,
                                                                              col < self.cols)),
                                    col < self.cols))
        m.d.comb += [
            self.nz.payload.col.eq(col),
            self.nz.payload.data.eq(data),
            self.nz.valid.eq(xq.r_rdy & self.enable & nonzero),
            xq.r_en.eq(self.enable & (~nonzero | self.nz.ready)),
            self.accept.eq(xq.r_rdy & xq.r_en),
            self.end.eq(self.accept & last),
            self.waiting.eq(xq.r_rdy),
        ]
        with m.If(self.accept):
            with m.If(last):
                m.d.sync += col.eq(0)
            with m.Elif(more_cols):  # saturate: extra elements are dropped
                m.d.sync += col.eq(col + 1)
        return m
