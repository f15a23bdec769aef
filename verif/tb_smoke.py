"""cocotb test of verif.smoke.SmokeAdder: 200 random pairs with random idle and back-pressure;
a passive monitor on the output must see what the sink took, with every stalled sum held."""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from rtl.common.packing import pack
from verif.smoke import pair_layout
from verif.streams import Pacer, StreamMonitor, StreamSink, StreamSource, unpack_signed


@cocotb.test()
async def adds_pairs(dut):
    rng = random.Random(1)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    source = StreamSource(dut, "i", dut.clk, Pacer(0.7, seed=2))
    sink = StreamSink(dut, "o", dut.clk, Pacer(0.6, seed=3))
    monitor = StreamMonitor(dut, "o", dut.clk)
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    monitor.start()
    pairs = [(rng.randint(-128, 127), rng.randint(-128, 127)) for _ in range(200)]
    cocotb.start_soon(source.send(pack(pair_layout(8), a=[a for a, _ in pairs], b=[b for _, b in pairs]).tolist()))
    words = await sink.receive(len(pairs), timeout_cycles=5000)
    got = [unpack_signed(w, 9) for w in words]
    assert got == [a + b for a, b in pairs]
    assert [w for _, w in monitor.transfers] == words
    assert not monitor.protocol_errors, monitor.protocol_errors[0]
