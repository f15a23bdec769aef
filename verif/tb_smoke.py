"""cocotb test of verif.smoke.SmokeAdder: 200 random pairs with random idle and back-pressure."""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from rtl.common.packing import pack
from verif.smoke import pair_layout
from verif.streams import Pacer, StreamDriver, StreamMonitor, unpack_signed


@cocotb.test()
async def adds_pairs(dut):
    rng = random.Random(1)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    driver = StreamDriver(dut, "i", dut.clk, Pacer(0.7, seed=2))
    monitor = StreamMonitor(dut, "o", dut.clk, Pacer(0.6, seed=3))
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    pairs = [(rng.randint(-128, 127), rng.randint(-128, 127)) for _ in range(200)]
    cocotb.start_soon(driver.send(pack(pair_layout(8), a=[a for a, _ in pairs], b=[b for _, b in pairs]).tolist()))
    got = [unpack_signed(w, 9) for w in await monitor.receive(len(pairs), timeout_cycles=5000)]
    assert got == [a + b for a, b in pairs]
