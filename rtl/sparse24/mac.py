"""The 2:4 sparse multiply-accumulate unit: two multipliers fed from a group of four activations."""
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from model.hw.config import Arith
from model.errors import SparseFlowError

GROUP = 4  # activations per group (the "4" of 2:4)
KEPT = 2   # kept weights per group (the "2")
POS_BITS = 2

LATENCY = 3  # cycles from a group with ``last`` to ``result_valid``


class Sparse24MAC(wiring.Component):
    """One 2:4 lane: ``sum over groups of w0 * act[p0] + w1 * act[p1]``, one group per cycle.

    A dot product is a run of groups, the first marked ``first`` and the final one ``last``
    (a one-group dot product has both). The unit never stalls: a group presented with ``valid``
    high is taken at that clock edge; ``valid`` low is a bubble that changes nothing.

    Ports (all inputs sampled at the rising edge where ``valid`` is high):
      ``valid``  In(1): a group is presented this cycle.
      ``first``  In(1): this group starts a dot product (the accumulator restarts from 0).
      ``last``   In(1): this group ends a dot product.
      ``act``    In(ArrayLayout(signed(act_bits), 4)): the four dense activations of the group.
      ``weight`` In(ArrayLayout(signed(weight_bits), 2)): the two kept weights.
      ``pos``    In(ArrayLayout(unsigned(2), 2)): their positions in the group.
      ``result_valid`` Out(1): high for exactly one cycle, ``LATENCY`` = 3 cycles after the edge
                 that took a ``last`` group.
      ``result`` Out(signed(acc_bits)): the dot product while ``result_valid`` is high (it holds
                 the running sum otherwise).

    Pipeline: stage 1 selects ``act[pos[k]]`` and registers the two selected activations with
    their weights; stage 2 registers both products; stage 3 adds them to the accumulator, kept in
    carry-save form (two registers; ``result`` is their sum, a carry chain after the registers). (The
    select mux and the multiplier are in different cycles, so neither sets the clock.) ``acc_bits`` (from :class:`Arith`) guarantees no overflow for dot products
    of at most ``max_cols`` columns.

    Metadata semantics (valid or not): each kept weight multiplies the activation at its *own*
    stated position and both products are summed. For valid metadata (``p0 < p1``) that is the
    dot product with the decompressed group (``model.hw.formats.nm.decode``). Two equal positions
    ``p0 == p1 == p`` give ``(w0 + w1) * act[p]``; descending positions give the same result as
    the swapped, ascending pair. Nothing is flagged: the encoder never emits such metadata.
    """

    def __init__(self, arith: Arith):
        if not isinstance(arith, Arith):
            raise SparseFlowError(f"Sparse24MAC needs an Arith, not {arith!r}")
        self._arith = arith
        # Internal state, created here so the formal harness (verif/formal) can observe it.
        self._acc = Signal(signed(arith.acc_bits), name="acc")
        self._sel_act = [Signal(signed(arith.act_bits), name=f"sel_act{k}") for k in range(KEPT)]
        self._sel_weight = [Signal(signed(arith.weight_bits), name=f"sel_weight{k}") for k in range(KEPT)]
        self._prods = [Signal(signed(arith.weight_bits + arith.act_bits), name=f"prod{k}") for k in range(KEPT)]
        # (valid, first, last) of the group in stage 1 (selected) and stage 2 (products).
        self._flags = [[Signal(name=f"s{st}_{f}") for f in ("valid", "first", "last")] for st in (1, 2)]
        super().__init__({
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "act": In(data.ArrayLayout(signed(arith.act_bits), GROUP)),
            "weight": In(data.ArrayLayout(signed(arith.weight_bits), KEPT)),
            "pos": In(data.ArrayLayout(unsigned(POS_BITS), KEPT)),
            "result_valid": Out(1),
            "result": Out(signed(arith.acc_bits)),
        })

    @property
    def arith(self) -> Arith:
        return self._arith

    def elaborate(self, platform):
        m = Module()

        (s1_valid, s1_first, s1_last), (s2_valid, s2_first, s2_last) = self._flags

        # Stage 1: select the two activations (registered with their weights).
        sel_act, sel_weight = self._sel_act, self._sel_weight
        m.d.sync += [s1_valid.eq(self.valid), s1_first.eq(self.first), s1_last.eq(self.last)]
        with m.If(self.valid):
            for k in range(KEPT):
                m.d.sync += [sel_act[k].eq(self.act[self.pos[k]]), sel_weight[k].eq(self.weight[k])]

        # Stage 2: multiply.
        prods = self._prods
        m.d.sync += [s2_valid.eq(s1_valid), s2_first.eq(s1_first), s2_last.eq(s1_last)]
        with m.If(s1_valid):
            for k in range(KEPT):
                m.d.sync += prods[k].eq(sel_weight[k] * sel_act[k])

        # Stage 3: accumulate, in carry-save form: two registers ``acc_s`` and ``acc_c`` whose sum
        # (modulo 2**acc_bits, which never overflows) is the accumulator ``acc``. Each group adds
        # its two products through two carry-save levels (one LUT per bit each, the ``first`` mask
        # folded into the first), with no carry chain in the loop; the chain that resolves
        # ``acc = acc_s + acc_c`` sits after the registers, on the way to the result queue.
        n = self._arith.acc_bits
        acc_s = Signal(n, name="acc_s")
        acc_c = Signal(n - 1, name="acc_c")  # carries, weight 2: the accumulator is acc_s + 2*acc_c
        p0, p1 = Signal(n, name="csa_p0"), Signal(n, name="csa_p1")
        m.d.comb += [p0.eq(prods[0]), p1.eq(prods[1])]  # sign-extended
        s_in, c_in = Signal(n, name="csa_s"), Signal(n, name="csa_c")
        m.d.comb += [s_in.eq(Mux(s2_first, 0, acc_s)), c_in.eq(Mux(s2_first, 0, acc_c << 1))]
        x, y = Signal(n, name="csa_x"), Signal(n, name="csa_y")  # y: carries, weight 2
        m.d.comb += [x.eq(s_in ^ c_in ^ p0), y.eq((s_in & c_in) | (s_in & p0) | (c_in & p0))]
        y2 = Signal(n, name="csa_y2")
        m.d.comb += y2.eq(y << 1)
        with m.If(s2_valid):
            m.d.sync += [acc_s.eq(x ^ y2 ^ p1), acc_c.eq((x & y2) | (x & p1) | (y2 & p1))]
        acc = self._acc
        m.d.comb += acc.eq(acc_s + (acc_c << 1))
        m.d.sync += self.result_valid.eq(s2_valid & s2_last)
        m.d.comb += self.result.eq(acc)
        return m
