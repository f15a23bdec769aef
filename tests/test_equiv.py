"""verif.equiv: the netlist comparison proves renamed-but-equal designs and catches a change."""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from verif.equiv import equivalent, ports
from verif.runner import to_verilog


class Acc(wiring.Component):
    """``total`` adds ``inc`` (times ``step``) every cycle ``en`` is high; ``wide`` flags bit 3."""

    def __init__(self, step: int = 1, name: str = "acc", extra_reg: bool = False):
        self.step, self.name, self.extra_reg = step, name, extra_reg
        super().__init__({"en": In(1), "inc": In(4), "total": Out(8), "wide": Out(1)})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(8, name=self.name)
        with m.If(self.en):
            m.d.sync += acc.eq(acc + self.inc * self.step)
        m.d.comb += self.total.eq(acc)
        if self.extra_reg:  # the same flag, computed through a differently named register
            flag = Signal(name="flag_copy")
            m.d.comb += flag.eq(acc[3])
            m.d.comb += self.wide.eq(flag)
        else:
            m.d.comb += self.wide.eq(acc[3])
        return m


def test_equal_designs_with_renamed_signals_are_proven():
    gold = to_verilog(Acc(), "top")
    gate = to_verilog(Acc(name="renamed_acc", extra_reg=True), "top")
    assert gold != gate
    r = equivalent(gold, gate, depth=5)
    assert r.equivalent and r.method == "induction", r.log[-2000:]
    assert equivalent(gold, gold).method == "identical"


def test_a_changed_design_is_caught():
    gold = to_verilog(Acc(), "top")
    r = equivalent(gold, to_verilog(Acc(step=3), "top"), depth=5)
    assert not r.equivalent and r.method == "bounded", r.log[-2000:]
    # (also when the changed register is renamed, so no pair of names covers it)
    r = equivalent(gold, to_verilog(Acc(step=3, name="other"), "top"), depth=5)
    assert not r.equivalent


def test_different_ports_are_not_equivalent():
    class Wider(Acc):
        def __init__(self):
            wiring.Component.__init__(self, {"en": In(1), "inc": In(5), "total": Out(8), "wide": Out(1)})
            self.step, self.name, self.extra_reg = 1, "acc", False
    gold, gate = to_verilog(Acc(), "top"), to_verilog(Wider(), "top")
    assert ports(gold) != ports(gate)
    assert equivalent(gold, gate).method == "ports"
