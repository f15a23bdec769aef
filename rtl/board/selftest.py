"""Built-in self-test around one engine: stream stored inputs in, check outputs against stored results.

The trick is that everything the test needs lives on chip: the input vector(s) and the expected
results (computed by ``model.hw.reference``) are ROMs initialised at elaboration, so the bitstream
tests itself after configuration with no host. Both ROMs are read through synchronous read ports
(so they can map to block RAM) from an address register that runs one word ahead: the port reads
(its enable) only when the word on it was taken, so the word at the current index is always on
the read port when the handshake happens, and no adder or handshake-dependent multiplexer sits
in front of the ROM address.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from model.errors import SparseFlowError

from .uart import UARTTx

CYCLE_BITS = 32
OVERHEAD = 3  # cycles counts the engine's run plus these (see SelfTest)
BAUD = 115200


def _hex_ascii(nibble):
    return Mux(nibble < 10, nibble + ord("0"), nibble + (ord("A") - 10))


def _read_ahead(m, port, words, fire, primed, name):
    """Drive ROM read ``port`` so that the word to transfer next is always on it: the port
    reads (its enable) only when the word on it was taken (``fire``) and once to prime, from
    an address register that already holds the next word's index, so no adder or
    handshake-dependent multiplexer sits in front of the ROM address. Returns a register that
    is high while the word on the port is the last of ``words``."""
    raddr = Signal(range(words + 1), name=f"{name}_raddr")
    final = Signal(name=f"{name}_final")
    en = Signal(name=f"{name}_en")
    m.d.comb += [en.eq(fire | ~primed), port.en.eq(en), port.addr.eq(raddr)]
    with m.If(en):
        m.d.sync += [raddr.eq(raddr + 1), final.eq(raddr == words - 1)]
    return final


class SelfTest(wiring.Component):
    """Runs ``engine`` once after reset on stored inputs and compares its outputs with stored results.

    ``engine`` follows the engine port convention: ``x`` In(stream of {data: signed(act_bits),
    last}) the input vector in column order, ``y`` Out(stream of {data: signed(out_bits), last})
    the results in row order; its ``load`` port is left idle (weights come from ``init``).
    ``x_words``/``y_words`` are lists of ``(data, last)``: every input vector, then every
    expected result, in stream order (an EIE array with ``frontend_width`` K > 1 takes K
    elements per ``x`` word: ``data`` is then a list of K).

    Ports:
      ``load_en``  In(1): drives the engine's ``load.valid`` (a board button; hold it low). The load
                   payload is a free-running LFSR. This keeps the engine's run-time write port alive,
                   as in real use: with it tied off, the weight memories become constant ROMs that
                   Yosys folds by content (and Yosys 0.70 then mis-maps some of them on ECP5).
      ``led_pass`` Out(1): high once every expected word arrived, equal, with the right ``last``.
      ``led_fail`` Out(1): high as soon as one word differs, an extra word arrives, or the run
                   exceeds ``timeout`` cycles (sticky).
      ``done``     Out(1): the run is over (all results in, or timed out); sticky.
      ``cycles``   Out(32): clock cycles from the end of reset to ``done``: the engine's time from
                   the first input word to the last result (both included), plus ``OVERHEAD`` = 3
                   (the ROM priming cycle and the two-stage registered comparison).
      ``uart_tx``  Out(1): after ``done``, sends ``"P "`` or ``"F "``, ``cycles`` as 8 hex digits and
                   CR LF once, 8N1 at ``baud`` for a ``clk_hz`` clock.

    ``report_stage``: the UART message loads from a register copy of ``done`` (a cycle later),
    for engines that spread over the chip, where ``done`` sits by the engine's output and the
    UART by its pin (off by default: the smaller builds keep their measured netlists).
    """

    load_en: In(1)
    led_pass: Out(1)
    led_fail: Out(1)
    done: Out(1)
    cycles: Out(CYCLE_BITS)
    uart_tx: Out(1, init=1)

    def __init__(self, engine, x_words, y_words, *, act_bits: int, out_bits: int, clk_hz: float,
                 baud: int = BAUD, timeout: int | None = None, report_stage: bool = False):
        if not x_words or not y_words:
            raise SparseFlowError("a self-test needs at least one input and one expected word")
        divisor = round(clk_hz / baud)
        if divisor < 2:
            raise SparseFlowError(f"clock {clk_hz} Hz is too slow for {baud} baud")
        self.engine = engine
        self.act_bits, self.out_bits = act_bits, out_bits
        # An element, or a list of K (a wide EIE input word): packed like the x payload
        # (element i at bits i*act_bits, then last).
        lanes = [d if isinstance(d, (list, tuple)) else [d] for d, _ in x_words]
        self.x_lanes = len(lanes[0])
        self.x_init = [sum((int(e) & ((1 << act_bits) - 1)) << (i * act_bits) for i, e in enumerate(ls))
                       | (int(bool(l)) << (self.x_lanes * act_bits)) for ls, (_, l) in zip(lanes, x_words)]
        self.y_init = [(int(d) & ((1 << out_bits) - 1)) | (int(bool(l)) << out_bits) for d, l in y_words]
        self.divisor = divisor
        self.timeout = min(timeout or (1 << CYCLE_BITS) - 1, (1 << CYCLE_BITS) - 1)
        self.report_stage = report_stage
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = eng = self.engine
        ab, ob = self.act_bits, self.out_bits
        nx, ny = len(self.x_init), len(self.y_init)

        xb = self.x_lanes * ab
        m.submodules.x_rom = x_rom = memory.Memory(shape=xb + 1, depth=nx, init=self.x_init)
        m.submodules.y_rom = y_rom = memory.Memory(shape=ob + 1, depth=ny, init=self.y_init)
        x_rd = x_rom.read_port()
        y_rd = y_rom.read_port()

        primed = Signal()  # one cycle after reset the ROM ports show word 0
        m.d.sync += primed.eq(1)

        # Inputs: ``x_avail`` (a register) = primed and words left.
        x_avail = Signal()
        x_fire = Signal()
        x_final = _read_ahead(m, x_rd, nx, x_fire, primed, "x")
        m.d.comb += [
            eng.x.valid.eq(x_avail & ~self.done),
            eng.x.payload.data.eq(x_rd.data[:xb]),
            eng.x.payload.last.eq(x_rd.data[xb]),
            x_fire.eq(eng.x.valid & eng.x.ready),
        ]
        with m.If(~primed):
            m.d.sync += x_avail.eq(1)
        with m.Elif(x_fire & x_final):
            m.d.sync += x_avail.eq(0)

        # The engine's write port: enabled by ``load_en`` (synchronised) only, data from an LFSR.
        if hasattr(eng, "load"):
            from amaranth.hdl import Shape
            width = Shape.cast(eng.load.payload.shape()).width
            lfsr = Signal(32, init=1)
            m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[6] ^ lfsr[7]))
            load_sync = Signal(2)  # the button is asynchronous: two flip-flops, and no pad-to-RAM path
            m.d.sync += load_sync.eq(Cat(self.load_en, load_sync[0]))
            m.d.comb += [eng.load.valid.eq(load_sync[1]),
                         eng.load.payload.as_value().eq(Cat(*[lfsr] * (-(-width // 32)))[:width])]

        # Results: the same read-ahead; ``y_over``: every expected word has arrived.
        y_fire = Signal()
        y_final = _read_ahead(m, y_rd, ny, y_fire, primed, "y")
        y_over = Signal()
        error = Signal()
        timed_out = Signal()
        m.d.comb += [eng.y.ready.eq(1), y_fire.eq(eng.y.valid & eng.y.ready)]
        # The comparison runs after the transfer, on registered copies, so that the
        # self-test adds no logic to the engine's output path (it would otherwise set Fmax).
        got, want = Signal(ob + 1, reset_less=True), Signal(ob + 1, reset_less=True)  # read with check
        check, finish = Signal(), Signal()
        m.d.sync += check.eq(0)
        with m.If(y_fire):
            with m.If(y_over):
                m.d.sync += error.eq(1)  # more results than expected
            with m.Else():
                m.d.sync += [check.eq(1),
                             got.eq(Cat(eng.y.payload.data, eng.y.payload.last)), want.eq(y_rd.data)]
                with m.If(y_final):
                    m.d.sync += [finish.eq(1), y_over.eq(1)]
        # Two more stages: 2-bit chunk mismatches (one LUT each), then their OR.
        chunks = Signal(-(-(ob + 1) // 2), reset_less=True)  # read with check2
        check2, finish2 = Signal(), Signal()
        m.d.sync += [chunks.eq(Cat(got[i:i + 2] != want[i:i + 2] for i in range(0, ob + 1, 2))),
                     check2.eq(check), finish2.eq(finish)]
        with m.If(check2 & chunks.any()):
            m.d.sync += error.eq(1)
        with m.If(finish2):
            m.d.sync += self.done.eq(1)

        # The timeout compares the counter a cycle ahead into a register (``to_hit``: the count
        # reaches timeout - 1 now), so no 32-bit comparison feeds ``done``.
        to_hit = Signal(init=int(self.timeout == 1))
        with m.If(~self.done):
            m.d.sync += [self.cycles.eq(self.cycles + 1), to_hit.eq(self.cycles == self.timeout - 2)]
            with m.If(to_hit):
                m.d.sync += [timed_out.eq(1), self.done.eq(1)]
        m.d.comb += [
            self.led_pass.eq(self.done & ~error & ~timed_out),
            self.led_fail.eq(error | timed_out),
        ]

        # UART report "P 0000ABCD\r\n": latched once into a shift register when the run ends,
        # so no wide multiplexer sits between the counter and the UART (it would set Fmax).
        m.submodules.uart = uart = UARTTx(self.divisor)
        chars = ([Mux(self.led_pass, ord("P"), ord("F")), ord(" ")]
                 + [_hex_ascii(self.cycles[CYCLE_BITS - 4 * (i + 1):CYCLE_BITS - 4 * i]) for i in range(8)]
                 + [ord("\r"), ord("\n")])
        msg = Signal(8 * len(chars), reset_less=True)  # read while left != 0
        loaded = Signal()
        left = Signal(range(len(chars) + 1))
        m.d.comb += [
            uart.data.valid.eq(left != 0),
            uart.data.payload.eq(msg[:8]),
            self.uart_tx.eq(uart.tx),
        ]
        report = self.done
        if self.report_stage:
            report = Signal()
            m.d.sync += report.eq(self.done)
        with m.If(report & ~loaded):
            m.d.sync += [msg.eq(Cat(*[Const(c, 8) if isinstance(c, int) else Cat(c, Const(0, 8 - len(c))) for c in chars])),
                         left.eq(len(chars)), loaded.eq(1)]
        with m.Elif(uart.data.valid & uart.data.ready):
            m.d.sync += [msg.eq(msg >> 8), left.eq(left - 1)]
        return m
