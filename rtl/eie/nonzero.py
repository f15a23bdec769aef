"""Non-zero detection: numbers the input elements by column and passes on only the non-zeros."""
from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.hw.config import EIEConfig, clog2
from model.errors import SparseFlowError
from rtl.common.pair import PairBuffer

from .layouts import col_bits, elem_layout, nz_layout


def _front_end_ports(cfg: EIEConfig) -> dict:
    """The signature both front ends share (``x`` holds one element or ``frontend_width``)."""
    if not isinstance(cfg, EIEConfig):
        raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
    ports = {
        "x": In(stream.Signature(elem_layout(cfg))),
        "nz": Out(stream.Signature(nz_layout(cfg))),
        "enable": In(1),
        "cols": In(col_bits(cfg)),
        "accept": Out(1),
        "end": Out(1),
        "waiting": Out(1),
    }
    if cfg.frontend_width > 1:
        ports["pending"] = Out(1)
    return ports


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
        super().__init__(_front_end_ports(cfg))
        self.cfg = cfg

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
    detector works on the word at the input queue's head (passes a non-zero on, or drops an
    all-zero word), ``end`` when the vector's last word leaves the queue. ``pending`` Out(1):
    a non-zero waits in the output register.

    Timing: ``x`` writes a two-word :class:`rtl.common.pair.PairBuffer` (``x.ready`` a
    flip-flop), which also stores, computed on the way in, the ``K`` flags ``data[i] != 0``
    and whether the word has any non-zero and at most one. Beside its head, a register ``rem``
    holds the non-zero lanes not yet passed on, with "any" and "at most one" as flip-flops
    (loaded from the stored flags with a new head, updated from ``rem`` alone after each
    non-zero). Each step moves the lowest lane of ``rem`` (its column ``Cat(lane, word
    number)``: no adder) into an output register O, which drives ``nz`` (``nz.valid`` a
    flip-flop) and takes a step whenever it is empty or moving on; so the handshake (the
    queue's read) is a function of flip-flops and ``nz.ready`` only, and the lane choice ends
    in O. The word leaves the queue in the cycle its last non-zero goes, or at once when it
    has none. So a word costs ``max(1, its non-zeros)`` cycles at full speed, a vector
    ``max(non-zeros, ceil(cols / K))`` at best, plus O's one cycle of latency; the queue keeps
    up with one word per cycle. A non-zero at a column ``>= cols`` (input past the matrix: the
    host pads the last word with zeros) takes its step but leaves O empty: it is dropped.
    Which lanes of the head word are at columns ``< cols`` is a registered mask from a down
    counter of the columns left (compares with constants only); while ``enable`` is low (only
    between vectors) both are reloaded from ``cols`` every cycle, so a ``cols`` written between
    vectors applies to the vector's words already waiting. ``cols_init``: the value ``cols``
    has at reset.
    """

    def __init__(self, cfg: EIEConfig, cols_init: int | None = None):
        super().__init__(_front_end_ports(cfg))
        if cfg.frontend_width < 2:
            raise SparseFlowError("NonZeroScan needs frontend_width >= 2 (1: NonZeroDetect)")
        self.cfg = cfg
        self.cols_init = cfg.max_cols if cols_init is None else cols_init

    def elaborate(self, platform):
        m = Module()
        cfg, a_bits, k = self.cfg, self.cfg.arith.act_bits, self.cfg.frontend_width
        lk = clog2(k)
        cb = col_bits(cfg)

        def at_most_one(v):  # v has at most one bit set
            return (v & (v - 1)) == 0

        # Stored word: K elements, last, K non-zero flags, "any non-zero", "at most one".
        xq = m.submodules.xq = PairBuffer(width=k * a_bits + 1 + k + 2)
        lanes_in = [self.x.payload.data[i] for i in range(k)]
        nz_in = Signal(k)
        m.d.comb += [
            nz_in.eq(Cat(*(v != 0 for v in lanes_in))),
            self.x.ready.eq(xq.w_rdy),
            xq.w_en.eq(self.x.valid),
            xq.w_data.eq(Cat(*lanes_in, self.x.payload.last, nz_in, nz_in != 0, at_most_one(nz_in))),
        ]
        head = xq.r_data
        last = head[k * a_bits]
        f0 = k * a_bits + 1  # first flag bit
        nxt = xq.head_next

        rem = Signal(k)      # non-zero lanes of the head word not yet passed on
        has = Signal()       # == rem != 0
        single = Signal()    # == rem has at most one bit set
        # lanes of the head word at columns < cols (at reset: of a first word, for cols_init)
        ok = Signal(k, init=sum(1 << i for i in range(k) if self.cols_init > i))
        left = Signal(cb, init=self.cols_init)  # columns < cols from the head word's first lane on
        word = Signal(max(1, cb - lk))  # the head word's number in the vector
        first = Signal(k)
        m.d.comb += first.eq(rem & -rem)  # the lowest lane to pass on (one-hot)
        lane = Signal(max(1, lk))
        for i in range(k):
            with m.If(first[i]):
                m.d.comb += lane.eq(i)
        sel = 0  # one-hot select of the lane's data: an OR of ANDs, no priority chain
        for i in range(k):
            sel = sel | Mux(first[i], head[i * a_bits:(i + 1) * a_bits], 0)
        value = Signal(signed(a_bits))
        m.d.comb += value.eq(sel)

        # Output register O between the detector and ``nz``: the lane choice (``rem & -rem``, the
        # range check, the value multiplexer) ends in flip-flops, and ``nz.valid`` is one. O
        # takes a step's non-zero when it is empty or moving on (full throughput).
        o_valid = Signal()
        o_ready = Signal()
        o_col = Signal.like(self.nz.payload.col, reset_less=True)
        o_data = Signal(signed(a_bits), reset_less=True)
        step = Signal()  # the head's lowest remaining non-zero goes (or is dropped) this cycle
        pop = Signal()
        m.d.comb += [
            o_ready.eq(~o_valid | self.nz.ready),
            self.nz.valid.eq(o_valid),
            self.nz.payload.col.eq(o_col),
            self.nz.payload.data.eq(o_data),
            step.eq(xq.r_rdy & self.enable & has & o_ready),
            pop.eq(self.enable & (~has | (o_ready & single))),
            xq.r_en.eq(pop),
            self.accept.eq(xq.r_rdy & self.enable & (~has | o_ready)),
            self.end.eq(xq.r_rdy & pop & last),
            self.waiting.eq(xq.r_rdy),
            self.pending.eq(o_valid),
        ]
        with m.If(o_ready):  # data: loaded whenever O is free or moving on
            m.d.sync += [o_col.eq(Cat(lane, word)), o_data.eq(value)]
        # a lane at a column >= cols is dropped here: its step leaves O empty
        m.d.sync += o_valid.eq(Mux(o_ready, step & (first & ok).any(), o_valid))
        popped = xq.r_rdy & pop

        def below(v, c):  # the K flags "v > c + i": lane i is at a column < cols
            return Cat(*(v > c + i for i in range(k)))

        # The columns left and the in-range mask for the head word after this cycle, chosen
        # among compares with constants made in parallel.
        with m.If(~self.enable | (popped & last)):  # a vector's first word: the current cols
            m.d.sync += [left.eq(self.cols), ok.eq(below(self.cols, 0))]
        with m.Elif(popped):
            m.d.sync += [left.eq(Mux(left > k, left - k, 0)), ok.eq(below(left, k))]
        with m.If(popped):
            m.d.sync += word.eq(Mux(last, 0, word + 1))
        # rem and its two flags: from the stored flags with a new head, from rem after a step
        # (a step needs has: rest is non-empty unless rem had one bit; it has at most one bit
        # when rem had at most two, a function of rem alone).
        rest = rem & ~first
        at_most_two = Signal()
        m.d.comb += at_most_two.eq(sum(rem[i] for i in range(k)) <= 2)
        with m.If(xq.head_load):
            m.d.sync += [rem.eq(nxt[f0:f0 + k]), has.eq(nxt[f0 + k]), single.eq(nxt[f0 + k + 1])]
        with m.Elif(step):
            m.d.sync += [rem.eq(rest), has.eq(~single), single.eq(at_most_two)]
        return m
