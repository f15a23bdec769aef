"""cocotb test of verif.smoke.SmokeAdder: 200 random pairs with random idle and back-pressure."""
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, ReadOnly


@cocotb.test()
async def adds_pairs(dut):
    rng = random.Random(1)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    pairs = [(rng.randint(-128, 127), rng.randint(-128, 127)) for _ in range(200)]
    got = []

    async def drive():
        for a, b in pairs:
            while rng.random() < 0.3:
                dut.i__valid.value = 0
                await RisingEdge(dut.clk)
            dut.i__valid.value = 1
            dut.i__payload.value = ((b & 0xFF) << 8) | (a & 0xFF)
            while True:  # held until the clock edge at which ready is high
                await ReadOnly()
                accepted = bool(dut.i__ready.value)
                await RisingEdge(dut.clk)
                if accepted:
                    break
        dut.i__valid.value = 0

    cocotb.start_soon(drive())
    while len(got) < len(pairs):
        dut.o__ready.value = int(rng.random() < 0.7)
        await ReadOnly()  # a transfer is valid & ready just before the edge
        if dut.o__valid.value and dut.o__ready.value:
            got.append(dut.o__payload.value.to_signed())
        await RisingEdge(dut.clk)
    assert got == [a + b for a, b in pairs]
