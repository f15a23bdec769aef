"""Non-zero detection: numbers the input elements by column and passes on only the non-zeros."""
from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.hw.config import EIEConfig, clog2
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


class NonZeroScan(wiring.Component):
    """Zero-skipping front end for ``K = cfg.frontend_width`` activations per input word: a
    leading-non-zero detector (as EIE's LNZD) that passes on one non-zero per cycle with its
    column index and spends no cycle on a zero, except one per all-zero word.

    Ports: as :class:`NonZeroDetect`, with ``x`` In(stream {data: K x signed(act_bits), last}):
    the vector in words of ``K`` elements, element ``i`` of word ``w`` being column ``w*K + i``
    (the last word padded with zeros, ``last`` on it). ``accept`` is high in every cycle the
    detector works on the word at the input queue's head (sends a non-zero on ``nz``, or drops
    an all-zero word), ``end`` when the vector's last word leaves the queue.

    Timing: ``x`` writes a two-word :class:`rtl.common.pair.PairBuffer` (``x.ready`` a
    flip-flop), which also stores the ``K`` flags ``data[i] == 0``. Beside its head, a register
    ``rem`` holds the lanes still to send (non-zero and at a column ``< cols``), with two flags
    (``rem != 0``, ``rem`` has at most one bit) also kept as flip-flops, so the handshake
    (``nz.valid``, the queue's read) is a function of flip-flops and ``nz.ready`` only. The
    lowest lane of ``rem`` goes out on ``nz`` (its column is ``Cat(lane, word number)``: no
    adder); the word leaves the queue in the cycle its last non-zero goes, or at once when it
    has none. So a word costs ``max(1, its non-zeros)`` cycles at full speed, a vector
    ``max(non-zeros, ceil(cols/K))`` at best; the queue keeps up with one word per cycle. The
    range ``< cols`` comes from a down counter of the columns left (compares with constants
    only); while ``enable`` is low (only between vectors) it and ``rem`` are reloaded from
    ``cols`` each cycle, so a ``cols`` written between vectors applies to a first word already
    waiting. ``cols_init``: the value ``cols`` has at reset.
    """

    def __init__(self, cfg: EIEConfig, cols_init: int | None = None):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        if cfg.frontend_width < 2:
            raise SparseFlowError("NonZeroScan needs frontend_width >= 2 (1: NonZeroDetect)")
        self.cfg = cfg
        self.cols_init = cfg.max_cols if cols_init is None else cols_init
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
        cfg, a_bits, k = self.cfg, self.cfg.arith.act_bits, self.cfg.frontend_width
        lk = clog2(k)
        cb = col_bits(cfg)
        xq = m.submodules.xq = PairBuffer(width=k * a_bits + 1 + k)
        lanes_in = [self.x.payload.data[i] for i in range(k)]
        m.d.comb += [
            self.x.ready.eq(xq.w_rdy),
            xq.w_en.eq(self.x.valid),
            xq.w_data.eq(Cat(*lanes_in, self.x.payload.last, *(v == 0 for v in lanes_in))),
        ]
        head = xq.r_data
        last = head[k * a_bits]

        def nonzero(word):  # the K "not zero" flags of a stored word
            return ~word[k * a_bits + 1:]

        def below(v, c):  # the K flags "v > c + i": lane i is at a column < cols
            return Cat(*(v > c + i for i in range(k)))

        rem = Signal(k)          # lanes of the head word still to send
        has = Signal()           # == rem != 0
        single = Signal()        # == rem has at most one bit set
        left = Signal(cb, init=self.cols_init)  # columns < cols from the head word's first lane on
        word = Signal(max(1, cb - lk))  # the head word's number in the vector
        first = Signal(k)
        m.d.comb += first.eq(rem & -rem)  # the lowest lane to send (one-hot)
        lane = Signal(max(1, lk))
        for i in range(k):
            with m.If(first[i]):
                m.d.comb += lane.eq(i)
        value = Signal(signed(a_bits))
        # one-hot select of the lane's data: an OR of ANDs, no priority chain
        sel = 0
        for i in range(k):
            sel = sel | Mux(first[i], head[i * a_bits:(i + 1) * a_bits], 0)
        m.d.comb += value.eq(sel)

        send = Signal()
        pop = Signal()
        m.d.comb += [
            self.nz.payload.col.eq(Cat(lane, word)),
            self.nz.payload.data.eq(value),
            self.nz.valid.eq(xq.r_rdy & self.enable & has),
            send.eq(self.nz.valid & self.nz.ready),
            pop.eq(self.enable & (~has | (self.nz.ready & single))),
            xq.r_en.eq(pop),
            self.accept.eq(xq.r_rdy & self.enable & (~has | self.nz.ready)),
            self.end.eq(xq.r_rdy & pop & last),
            self.waiting.eq(xq.r_rdy),
        ]
        popped = xq.r_rdy & pop
        # Columns left after this cycle, and the new head's in-range lanes, chosen among
        # compares with constants made in parallel.
        left_next = Signal(cb)
        ok_next = Signal(k)
        with m.If(~self.enable):  # between vectors: a first word, against the current cols
            m.d.comb += [left_next.eq(self.cols), ok_next.eq(below(self.cols, 0))]
        with m.Elif(popped & last):
            m.d.comb += [left_next.eq(self.cols), ok_next.eq(below(self.cols, 0))]
        with m.Elif(popped):
            m.d.comb += [left_next.eq(Mux(left > k, left - k, 0)), ok_next.eq(below(left, k))]
        with m.Else():
            m.d.comb += [left_next.eq(left), ok_next.eq(below(left, 0))]
        m.d.sync += left.eq(left_next)
        with m.If(popped):
            m.d.sync += word.eq(Mux(last, 0, word + 1))
        rem_next = Signal(k)
        with m.If(xq.head_load):
            m.d.comb += rem_next.eq(nonzero(xq.head_next) & ok_next)
        with m.Elif(~self.enable):
            m.d.comb += rem_next.eq(nonzero(head) & ok_next)
        with m.Elif(send):
            m.d.comb += rem_next.eq(rem & ~first)
        with m.Else():
            m.d.comb += rem_next.eq(rem)
        m.d.sync += [rem.eq(rem_next), has.eq(rem_next != 0), single.eq((rem_next & (rem_next - 1)) == 0)]
        return m
