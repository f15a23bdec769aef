"""A small stand-in engine with the engines' port convention, for the board flow's own tests.

It is the simplest correct dense matrix-vector unit: one multiplier, one product per cycle. The
board top and the synthesis flow are tested with it so that they do not depend on the state of
the real engines (``rtl/eie``, ``rtl/sparse24``, ``rtl/dense``).
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model.hw.config import Arith
from model.hw.reference import as_int_array
from rtl.common.protocol import sample_layout
from rtl.common.requant import Requantizer


class StandInEngine(wiring.Component):
    """Dense ``y = requant(W @ x)`` with one multiplier; ``W`` fixed at elaboration.

    Ports:
      ``x``      In(stream of {data: signed(act_bits), last}): the ``cols`` inputs in column order;
                 accepted one per cycle while loading; ``last`` (or the ``cols``-th word) ends a vector.
      ``y``      Out(stream of {data: signed(out_bits), last}): the ``rows`` results in row order,
                 ``last`` on the final row. A row takes ``cols + 1`` cycles after the vector is in.
      ``cycles`` Out(32): clock cycles spent busy (loading, computing or waiting on ``y``).
    """

    def __init__(self, arith: Arith, weights):
        w = as_int_array(weights, "weights", arith.weight_bits, ndim=(2,))
        self.arith = arith
        self.weights = w
        self.rows, self.cols = w.shape
        super().__init__({
            "x": In(stream.Signature(sample_layout(arith.act_bits))),
            "y": Out(stream.Signature(sample_layout(arith.out_bits))),
            "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        a, rows, cols = self.arith, self.rows, self.cols
        m.submodules.w = wmem = memory.Memory(shape=signed(a.weight_bits), depth=rows * cols,
                                              init=[int(v) for v in self.weights.reshape(-1)])
        m.submodules.xbuf = xmem = memory.Memory(shape=signed(a.act_bits), depth=cols, init=[])
        w_rd, x_rd, x_wr = wmem.read_port(), xmem.read_port(), xmem.write_port()
        m.submodules.rq = rq = Requantizer(a)

        r = Signal(range(rows))
        c = Signal(range(cols))
        k = Signal(range(rows * cols))
        acc = Signal(signed(a.acc_bits))
        mac, first = Signal(), Signal()  # a product is on the read ports this cycle
        m.d.sync += [mac.eq(0), first.eq(0)]
        m.d.comb += [w_rd.addr.eq(k), x_rd.addr.eq(c), x_wr.addr.eq(c), x_wr.data.eq(self.x.payload.data),
                     rq.acc.eq(acc), self.y.payload.data.eq(rq.out),
                     self.y.payload.last.eq(r == rows - 1)]
        if a.requant is not None:
            m.d.comb += [rq.shift.eq(a.requant.shift), rq.relu.eq(a.requant.relu)]
        with m.If(mac):
            m.d.sync += acc.eq(Mux(first, 0, acc) + w_rd.data * x_rd.data)
        with m.FSM() as fsm:
            with m.State("LOAD"):
                m.d.comb += self.x.ready.eq(1)
                with m.If(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
                    m.d.sync += c.eq(c + 1)
                    with m.If(self.x.payload.last | (c == cols - 1)):
                        m.d.sync += [c.eq(0), k.eq(0), r.eq(0)]
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += [mac.eq(1), first.eq(c == 0), k.eq(k + 1), c.eq(c + 1)]
                with m.If(c == cols - 1):
                    m.d.sync += c.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += self.y.valid.eq(1)
                with m.If(self.y.ready):
                    m.d.sync += r.eq(r + 1)
                    with m.If(r == rows - 1):
                        m.d.sync += r.eq(0)
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "RUN"
        m.d.sync += self.cycles.eq(self.cycles + (self.x.valid | ~fsm.ongoing("LOAD")))
        return m
