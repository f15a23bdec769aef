"""The board top: a :class:`~rtl.board.selftest.SelfTest` wired to a board's LEDs and FTDI UART."""
from __future__ import annotations

from amaranth import Elaboratable, Module
from amaranth.lib import io

from .cases import Case
from .selftest import SelfTest


class BoardTop(Elaboratable):
    """``selftest`` on a board: ``pass_led``/``fail_led`` are ``(resource name, number)`` pairs;
    the UART report goes to ``uart`` 0's ``tx`` (both iCEBreaker and ULX3S wire it to the FTDI chip);
    user button 0 is the engine's load enable (see :class:`SelfTest`: do not press it).
    Without a platform (simulation) it is just the self-test."""

    def __init__(self, selftest: SelfTest, pass_led=("led", 0), fail_led=("led", 1)):
        self.selftest = selftest
        self.pass_led, self.fail_led = pass_led, fail_led

    def elaborate(self, platform):
        m = Module()
        m.submodules.selftest = st = self.selftest
        if platform is not None:
            bufs = {"ok": ("o", self.pass_led), "bad": ("o", self.fail_led), "button": ("i", ("button", 0))}
            b = {}
            for key, (direction, (name, number)) in bufs.items():
                b[key] = m.submodules[f"{key}_buf"] = io.Buffer(direction, platform.request(name, number, dir="-"))
            tx = m.submodules.tx_buf = io.Buffer("o", platform.request("uart", 0, dir="-").tx)
            m.d.comb += [b["ok"].o.eq(st.led_pass), b["bad"].o.eq(st.led_fail), tx.o.eq(st.uart_tx),
                         st.load_en.eq(b["button"].i)]
        return m


def make_selftest(case: Case, clk_hz: float, corrupt: bool = False, report_stage: bool | None = None) -> SelfTest:
    """The self-test of ``case`` for a ``clk_hz`` clock; ``corrupt`` flips one expected result;
    ``report_stage`` (:class:`SelfTest`; default: for an array built for many PEs)."""
    r, c = case.shape
    timeout = 64 * (r * c + r + c) * len(case.xs) + 4096
    engine = case.build_engine()
    # An array built for many PEs (EIEConfig.wide) spans the chip: register done before the UART.
    if report_stage is None:
        report_stage = bool(getattr(getattr(engine, "cfg", None), "wide", False))
    return SelfTest(engine, case.x_words(), case.y_words(corrupt),
                    act_bits=case.arith.act_bits, out_bits=case.arith.out_bits, clk_hz=clk_hz,
                    timeout=timeout, report_stage=report_stage)
