"""Broadcast of non-zero activations to the PEs that have work for them, one queue per PE."""
from amaranth import Cat, Module, Mux, Signal
from amaranth.hdl import Assert
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

import numpy as np

from rtl.common.memory import collision_free_memory
from rtl.common.pair import PairBuffer
from model.hw.config import EIEConfig, clog2
from model.errors import SparseFlowError

from .layouts import nz_layout


class Broadcast(wiring.Component):
    """Copies each non-zero ``(col, data)`` into the queues (depth ``fifo_depth``) of the PEs
    whose slice of column ``col`` holds entries.

    Ports:
      ``i``       In(stream {col, data}): non-zeros from :class:`NonZeroDetect`.
      ``q``       Out(stream {col, data}) x ``n_pes``: PE ``k``'s queue head.
      ``mask_we``, ``mask_pe``, ``mask_col``, ``mask_bit``: write the column-occupancy bit of PE
                  ``mask_pe`` for column ``mask_col`` (1: the PE has entries in that column).
      ``blocked`` Out(n_pes): bit ``k``: the head word still has to go to queue ``k`` and
                  queue ``k`` is full (the PE holds the broadcast up this cycle).
      ``pending`` Out(1): a word is in the broadcast (in N or in the two-word FIFO).

    Why the mask: a PE whose slice of a column is empty would still spend a cycle reading its
    pointers. With one occupancy bit per (column, PE), read from a ``max_cols x n_pes`` memory
    while the word enters the broadcast register, such a column never enters that PE's queue:
    its queue holds only columns with work, so empty columns cost nothing and the queue depth
    buys more decoupling.

    Timing: a word accepted at an edge waits in register N while its occupancy bits are read;
    from N it moves, with them, into a two-word :class:`rtl.common.pair.PairBuffer` (timed like
    a ``SyncFIFO`` of depth 2, its head in flip-flops) when that is not full. The word at its
    head is written to each queue its mask selects in the first cycle that queue has room, each
    queue on its own; the head leaves in the cycle its last needed queue takes it. Every
    handshake here is a flip-flop function: the memory output goes straight into the buffer,
    ``i.ready`` depends on N and the buffer's level only, and a queue write depends on that
    queue's level alone. At one word per cycle the broadcast writes a word two cycles after
    accepting it. A word written at an edge is at the queue head (``q[k].valid``) in the next
    cycle. The queues and the two-word buffer behave as :class:`amaranth.lib.fifo.SyncFIFO`: a
    full one does not accept a word in the cycle its head is read (``model.hw.cyclemodel`` models
    exactly this). In a wide array (``cfg.wide``) a queue sits beside its PE, far from the
    head, so no handshake crosses the chip in one cycle: the broadcast keeps a credit counter
    per queue (its free places, from ``fifo_depth``; a pop returns its credit through a
    register), writes the head when the credit is not zero, and the word lands in the queue a
    cycle later, from a per-group copy of the head and a per-queue write enable (registers).
    The queue then takes a word two cycles after the pop that freed its place (one cycle
    otherwise), and a word reaches the queue head two cycles after its write decision (one
    otherwise); ``pending`` covers the landing cycle. ``checks``: assert that a landing word
    always finds room.
    """

    def __init__(self, cfg: EIEConfig, mask=None, *, checks: bool = False):
        if not isinstance(cfg, EIEConfig):
            raise SparseFlowError(f"cfg must be an EIEConfig, not {type(cfg).__name__}")
        self.cfg = cfg
        self.checks = checks  # assert that a landing word finds room (wide arrays) every cycle
        # mask: (n_pes, cols) booleans, or None (all zero: no PE gets any column until loaded)
        self._mask_init = []
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            weights = 1 << np.arange(cfg.n_pes, dtype=object)
            self._mask_init = [int(sum(w for w, b in zip(weights, mask[:, j]) if b)) for j in range(mask.shape[1])]
        layout = nz_layout(cfg)
        super().__init__({
            "i": In(stream.Signature(layout)),
            "q": Out(stream.Signature(layout)).array(cfg.n_pes),
            "mask_we": In(1),
            "mask_pe": In(clog2(cfg.n_pes)),
            "mask_col": In(clog2(cfg.max_cols)),
            "mask_bit": In(1),
            "blocked": Out(cfg.n_pes),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.n_pes
        # Written only by loads, which the array takes while no element enters the broadcast.
        mem = m.submodules.colmask = collision_free_memory(shape=n, depth=cfg.max_cols, init=self._mask_init)
        wr = mem.write_port(granularity=1)
        rd = mem.read_port()
        m.d.comb += [wr.addr.eq(self.mask_col), wr.data.eq(Cat(self.mask_bit for _ in range(n)))]
        for k in range(n):
            m.d.comb += wr.en[k].eq(self.mask_we & (self.mask_pe == k))

        wb = nz_layout(cfg).size
        n_valid = Signal()
        n_word = Signal(wb, reset_less=True)  # data: n_valid says when it matters
        staged = m.submodules.staged = PairBuffer(width=wb + n)
        head = staged.r_data[:wb]
        w_rdy = []
        for k in range(n):
            # Two deep, the queue is a PairBuffer (the same timing as a SyncFIFO): its w_rdy and
            # head are flip-flops, which shortens the write decision and the PE's head path.
            fifo = m.submodules[f"queue{k}"] = (PairBuffer(width=wb) if cfg.fifo_depth == 2 else
                                                SyncFIFO(width=wb, depth=cfg.fifo_depth))
            w_rdy.append(fifo.w_rdy)
        # Each queue takes the head word as soon as it has room; the head leaves once every
        # queue it needs has it, so no queue write waits on the fullness of the others.
        # ``pend``: the queues the head word has still to reach, a register beside the buffer's
        # head (loaded with a new head's mask bits), so that the head's departure is a flat
        # function of flip-flops (the queues' w_rdy included).
        pend = Signal(n, reset_less=True)  # read only with the buffer's r_rdy
        want = Signal(n)
        room = Signal(n, init=(1 << n) - 1 if cfg.wide else 0)  # wide: credits left, registered
        write = Signal(n)
        if not cfg.wide:
            m.d.comb += [want.eq(Mux(staged.r_rdy, pend, 0)), room.eq(Cat(*w_rdy)), write.eq(want & room)]
        else:
            m.d.comb += [want.eq(Mux(staged.r_rdy, pend, 0)), write.eq(want & room)]
        pending = n_valid | staged.r_rdy
        if cfg.wide:
            pending = pending | self._credits(m, room, write, head)
        # The head leaves once every queue has it: all(~pend | room), flat from flip-flops.
        every = (~pend | room).all()
        fire = staged.r_rdy & every
        with m.If(staged.head_load):
            m.d.sync += pend.eq(staged.head_next[wb:])
        with m.Else():
            m.d.sync += pend.eq(pend & ~write)
        n_move = n_valid & staged.w_rdy
        take = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~n_valid | staged.w_rdy),
            rd.addr.eq(self.i.payload.col),
            rd.en.eq(self.i.ready),  # the bits stay on the port while the word waits in N
            staged.w_en.eq(n_valid),
            staged.w_data.eq(Cat(n_word, rd.data)),
            staged.r_en.eq(fire),
            self.blocked.eq(want & ~room),
            self.pending.eq(pending),
        ]
        # N's word (and its mask bits) load whenever N is free or moving on, valid or not: only
        # n_valid waits for the handshake, not the whole register's enable.
        with m.If(self.i.ready):
            m.d.sync += n_word.eq(self.i.payload)
        with m.If(take):
            m.d.sync += n_valid.eq(1)
        with m.Elif(n_move):
            m.d.sync += n_valid.eq(0)
        for k in range(n):
            fifo = m.submodules[f"queue{k}"]
            if not cfg.wide:  # (wide: from the landing registers, _credits)
                m.d.comb += [fifo.w_data.eq(head), fifo.w_en.eq(write[k])]
            m.d.comb += [
                self.q[k].valid.eq(fifo.r_rdy),
                self.q[k].payload.eq(fifo.r_data),
                fifo.r_en.eq(self.q[k].ready),
            ]
        return m

    def _credits(self, m, room, write, head):
        """Wide arrays: per queue a credit counter (``room``: it is not zero, a register), the
        head copied per group and the write enables registered (the word lands a cycle after
        ``write``), each pop returned through a register. Returns "a word is landing"."""
        cfg, n = self.cfg, self.cfg.n_pes
        depth = cfg.fifo_depth
        for g, group in enumerate(pe_groups(n)):
            # Loaded only for writes into its group: distinct enables keep the copies apart.
            head_g = Signal.like(head, reset_less=True, name=f"head_g{g}")
            with m.If(Cat(*(write[k] for k in group)).any()):
                m.d.sync += head_g.eq(head)
            for k in group:
                fifo = m.submodules[f"queue{k}"]
                credit = Signal(range(depth + 1), init=depth, name=f"credit{k}")
                popped = Signal(name=f"popped{k}")  # queue k's head was read in the cycle before
                land = Signal(name=f"land{k}")
                nxt = credit - write[k] + popped
                m.d.sync += [popped.eq(self.q[k].ready & fifo.r_rdy), land.eq(write[k]),
                             credit.eq(nxt), room[k].eq(nxt != 0)]
                m.d.comb += [fifo.w_data.eq(head_g), fifo.w_en.eq(land)]
                if self.checks:
                    m.d.comb += Assert(~land | fifo.w_rdy, "a landing word finds room")
        landing = Signal()
        m.d.sync += landing.eq(write.any())
        return landing


GROUP = 8  # PEs per group of a wide array's register copies


def pe_groups(n: int) -> list[range]:
    """The PEs ``0 .. n-1`` in groups of :data:`GROUP` (the last one shorter)."""
    return [range(g0, min(n, g0 + GROUP)) for g0 in range(0, n, GROUP)]

