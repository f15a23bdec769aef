"""Broadcast of non-zero activations to every PE through one queue per PE."""
from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from model.config import EIEConfig
from model.errors import SparseFlowError

from .layouts import nz_layout


class Broadcast(wiring.Component):
    """Copies each non-zero ``(col, data)`` into ``n_pes`` queues of depth ``fifo_depth``.

    Ports:
      ``i``    In(stream {col, data}): non-zeros from :class:`NonZeroDetect`.
      ``q``    Out(stream {col, data}) x ``n_pes``: PE ``k``'s queue head.
      ``full`` Out(n_pes): bit ``k`` is set while queue ``k`` cannot take a word.

    Timing: ``i.ready`` is high when every queue has room (a word goes to all queues in the same
    cycle, so one full queue stalls the broadcast; that is the only stall). A word written at an
    edge is at the queue head (``q[k].valid``) in the next cycle. The queues are
    :class:`amaranth.lib.fifo.SyncFIFO`: a full queue does not accept a word in the cycle its
    head is read (``model.cyclemodel`` models exactly this).
    """

    def __init__(self, cfg: EIEConfig):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        layout = nz_layout(cfg)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "q": Out(stream.Signature(layout)).array(cfg.n_pes),
            "full": Out(cfg.n_pes),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        width = nz_layout(cfg).size
        w_rdy = []
        for k in range(cfg.n_pes):
            fifo = m.submodules[f"queue{k}"] = SyncFIFO(width=width, depth=cfg.fifo_depth)
            w_rdy.append(fifo.w_rdy)
            m.d.comb += [
                fifo.w_data.eq(self.i.payload),
                fifo.w_en.eq(self.i.valid & self.i.ready),
                self.q[k].valid.eq(fifo.r_rdy),
                self.q[k].payload.eq(fifo.r_data),
                fifo.r_en.eq(self.q[k].ready),
            ]
        all_rdy = Signal()
        m.d.comb += [
            all_rdy.eq(Cat(*w_rdy).all()),
            self.i.ready.eq(all_rdy),
            self.full.eq(~Cat(*w_rdy)),
        ]
        return m
