"""Non-zero detection: numbers the input elements by column and passes on only the non-zeros."""
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import EIEConfig
from model.errors import SparseFlowError

from .layouts import col_bits, elem_layout, nz_layout


class NonZeroDetect(wiring.Component):
    """Zero-skipping front end of the array (combinational, no latency).

    Ports:
      ``x``      In(stream {data: signed(act_bits), last}): the vector in column order.
      ``nz``     Out(stream {col, data}): the non-zero elements with their column index.
      ``enable`` In(1): accept elements (the array lowers it while it reads results out).
      ``cols``   In(col_bits): columns of the loaded matrix; elements at ``col >= cols`` are dropped.
      ``accept`` Out(1): an element is accepted this cycle.
      ``end``    Out(1): the element accepted this cycle is the vector's last.

    A zero (or dropped) element is accepted at once, whatever ``nz.ready``: zeros never wait
    for the PEs. A non-zero is accepted in the cycle it moves on through ``nz``. ``x.ready``
    therefore depends on ``x.payload`` and ``enable`` (combinationally; ``x.valid`` never depends
    on ``x.ready``, so there is no loop).
    The column counter restarts at 0 after an element with ``last``.
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
        })

    def elaborate(self, platform):
        m = Module()
        col = Signal(col_bits(self.cfg))
        nonzero = (self.x.payload.data != 0) & (col < self.cols)
        m.d.comb += [
            self.nz.payload.col.eq(col),
            self.nz.payload.data.eq(self.x.payload.data),
            self.nz.valid.eq(self.x.valid & self.enable & nonzero),
            self.x.ready.eq(self.enable & (~nonzero | self.nz.ready)),
            self.accept.eq(self.x.valid & self.x.ready),
            self.end.eq(self.accept & self.x.payload.last),
        ]
        with m.If(self.accept):
            with m.If(self.x.payload.last):
                m.d.sync += col.eq(0)
            with m.Elif(col != self.cfg.max_cols):  # saturate: extra elements are dropped
                m.d.sync += col.eq(col + 1)
        return m
