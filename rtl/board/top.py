"""The board top: a :class:`~rtl.board.selftest.SelfTest` wired to a board's LEDs and FTDI UART."""
from __future__ import annotations

from amaranth import Elaboratable, Module

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
            ok = platform.request(*self.pass_led, dir="o")
            bad = platform.request(*self.fail_led, dir="o")
            uart = platform.request("uart", 0)
            button = platform.request("button", 0, dir="i")
            m.d.comb += [ok.o.eq(st.led_pass), bad.o.eq(st.led_fail), uart.tx.o.eq(st.uart_tx),
                         st.load_en.eq(button.i)]
        return m


def make_selftest(case: Case, clk_hz: float, corrupt: bool = False) -> SelfTest:
    """The self-test of ``case`` for a ``clk_hz`` clock; ``corrupt`` flips one expected result."""
    r, c = case.shape
    timeout = 64 * (r * c + r + c) * len(case.xs) + 4096
    return SelfTest(case.build_engine(), case.x_words(), case.y_words(corrupt),
                    act_bits=case.arith.act_bits, out_bits=case.arith.out_bits, clk_hz=clk_hz,
                    timeout=timeout)
