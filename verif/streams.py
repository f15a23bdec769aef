"""Small cocotb VIP for ``amaranth.lib.stream`` ports, named as in cocotbext-axi.

* :class:`StreamSource` drives ``valid``/``payload`` into the design (random idle);
* :class:`StreamSink` drives ``ready`` and takes the design's output words (random back-pressure);
* :class:`StreamMonitor` is passive: it never drives a signal, it records the transfers it sees
  (with their cycle) and checks that a stalled payload is held.

Amaranth flattens a stream port ``x`` to ``x__valid``, ``x__ready`` and ``x__payload`` (a struct
payload is one packed vector; pack it with :func:`rtl.common.packing.pack`). A transfer happens at a rising
clock edge where valid and ready are both high; every class samples in ``ReadOnly`` just before
the edge, so it sees exactly the handshake the RTL sees.

``Pacer(probability, seed)`` decides, cycle by cycle, whether a source idles or a sink
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


class _StreamPort:
    """The three signals of stream port ``prefix`` and the clock."""

    def __init__(self, dut, prefix: str, clk):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clk = clk


class _StreamEnd(_StreamPort):
    """A stream port this testbench drives one side of, paced by ``pacer``."""

    def __init__(self, dut, prefix: str, clk, pacer: Pacer | None = None):
        super().__init__(dut, prefix, clk)
        self.pacer = pacer or Pacer()


class StreamSource(_StreamEnd):
    """Drives ``<prefix>__valid``/``__payload`` from a list of payload words, idling per ``pacer``."""

    def __init__(self, dut, prefix: str, clk, pacer: Pacer | None = None):
        super().__init__(dut, prefix, clk, pacer)
        self.valid.value = 0
        self.sent = 0

    async def send(self, words) -> None:
        words = list(words)

        def idle(k):  # payload while valid is low: two words XORed (as verif/native/harness.cpp)
            self.valid.value = 0
            self.payload.value = int(words[(k * 7 + 3) % len(words)]) ^ int(words[(k * 5 + 1) % len(words)])

        for k, word in enumerate(words):
            while not self.pacer.go():
                idle(k)
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
        if words:
            idle(len(words))


class StreamSink(_StreamEnd):
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


class StreamMonitor(_StreamPort):
    """Watches stream port ``prefix`` without driving it: each transfer as ``(cycle, word)``.

    Call :meth:`sample` once per cycle in the ``ReadOnly`` phase (from a testbench's own
    observer loop, so watching several streams costs no extra coroutine), or :meth:`start` it
    as its own task. ``cycle`` counts :meth:`sample` calls from 0. ``protocol_errors`` lists
    every cycle where a payload offered but not taken changed before its transfer.
    """

    def __init__(self, dut, prefix: str, clk):
        super().__init__(dut, prefix, clk)
        self.transfers: list[tuple[int, int]] = []
        self.protocol_errors: list[str] = []
        self.cycle = 0
        self._held = None  # payload offered while stalled, which must stay until taken

    def sample(self) -> None:
        valid, ready = int(self.valid.value), int(self.ready.value)
        if valid or self._held is not None:  # an idle payload may be undefined: not read
            word = int(self.payload.value)
            if self._held is not None and word != self._held:
                self.protocol_errors.append(f"{self.payload._name} changed while stalled at cycle {self.cycle}")
            self._held = word if (valid and not ready) else None
            if valid and ready:
                self.transfers.append((self.cycle, word))
        self.cycle += 1

    async def _run(self) -> None:
        while True:
            await ReadOnly()
            self.sample()
            await RisingEdge(self.clk)

    def start(self):
        """Sample every cycle from now on, in a task of its own; returns the task."""
        import cocotb
        return cocotb.start_soon(self._run())
