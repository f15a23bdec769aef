"""Small cocotb VIP for ``amaranth.lib.stream`` ports: a driver, a monitor, idle/back-pressure.

Amaranth flattens a stream port ``x`` to ``x__valid``, ``x__ready`` and ``x__payload`` (a struct
payload is one packed vector; pack it with :func:`rtl.common.packing.pack`). A transfer happens at a rising
clock edge where valid and ready are both high; both classes sample in ``ReadOnly`` just before
the edge, so they see exactly the handshake the RTL sees.

``Pacer(probability, seed)`` decides, cycle by cycle, whether a driver idles or a monitor
back-pressures: ``Pacer(1.0)`` is full speed, ``Pacer(0.5)`` stalls half of the cycles.
"""
from __future__ import annotations

from cocotb.triggers import ReadOnly, RisingEdge


class Pacer:
    """Random on/off pattern: ``go()`` is true with ``probability`` each cycle.

    The generator is SplitMix64 (not Python's ``random``) because the native harness
    (``verif/native/harness.cpp``) draws the very same sequence: for one seed both backends
    idle and back-pressure on the same cycles. Full speed (1.0) draws nothing.
    """

    _MASK = (1 << 64) - 1

    def __init__(self, probability: float = 1.0, seed: int = 0):
        if not 0.0 < probability <= 1.0:
            raise ValueError(f"probability must be in (0, 1], not {probability}")
        self.probability = probability
        self._state = int(seed) & self._MASK

    def _next(self) -> int:
        m = self._MASK
        self._state = (self._state + 0x9E3779B97F4A7C15) & m
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    def go(self) -> bool:
        return self.probability >= 1.0 or (self._next() >> 11) * 2.0 ** -53 < self.probability


def unpack_signed(word: int, width: int) -> int:
    word &= (1 << width) - 1
    return word - (1 << width) if word >> (width - 1) else word


class _StreamEnd:
    """The three signals of stream port ``prefix``, the clock and a pacer."""

    def __init__(self, dut, prefix: str, clk, pacer: Pacer | None = None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clk = clk
        self.pacer = pacer or Pacer()


class StreamDriver(_StreamEnd):
    """Drives ``<prefix>__valid``/``__payload`` from a list of payload words, idling per ``pacer``."""

    def __init__(self, dut, prefix: str, clk, pacer: Pacer | None = None):
        super().__init__(dut, prefix, clk, pacer)
        self.valid.value = 0
        self.sent = 0

    async def send(self, words) -> None:
        for word in words:
            while not self.pacer.go():
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = int(word)
            while True:  # held until an edge at which ready is high
                await ReadOnly()
                accepted = bool(self.ready.value)
                await RisingEdge(self.clk)
                if accepted:
                    break
            self.sent += 1
        self.valid.value = 0


class StreamMonitor(_StreamEnd):
    """Drives ``<prefix>__ready`` per ``pacer`` and collects accepted payload words."""

    def __init__(self, dut, prefix: str, clk, pacer: Pacer | None = None):
        super().__init__(dut, prefix, clk, pacer)
        self.ready.value = 0

    async def receive(self, count: int, timeout_cycles: int = 1_000_000) -> list[int]:
        """Return the next ``count`` payload words (as unsigned ints); fail after the timeout."""
        words: list[int] = []
        waited = 0
        while len(words) < count:
            self.ready.value = int(self.pacer.go())
            await ReadOnly()
            if self.valid.value and self.ready.value:
                words.append(int(self.payload.value))
            await RisingEdge(self.clk)
            waited += 1
            if waited > timeout_cycles:
                raise TimeoutError(f"stream {self.payload._name}: {len(words)} of {count} words "
                                   f"after {timeout_cycles} cycles")
        self.ready.value = 0
        return words
