"""cocotb testbench for the 2:4 engine and the dense baseline (same ports, same protocol).

The case file named by ``SPARSEFLOW_CASE`` (written by :mod:`verif.spmv_sparse24`) holds the
``load`` payloads (weights + registers), the input vectors, the payload widths, the pacing
probabilities and seeds and the path to write the results to. The testbench only drives and
observes: it loads the weights through ``load`` (with random idle), streams every vector into
``x`` (random idle) while a sink takes ``y`` (random back-pressure), checks the stream
protocol (``last`` on each vector's final row, payloads stable while stalled) and writes the
results and counters as JSON. The host compares them with ``model.hw.reference`` (scoreboard).
"""
import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from rtl.common.protocol import packed_inputs
from verif.streams import Pacer, StreamMonitor, StreamSink, StreamSource, unpack_signed


class EngineTB:
    """Clock, reset, a source per input stream, a sink on ``y`` and passive monitors on ``x``
    and ``y`` (first input and last result cycles, held payloads) sampled by one observer."""

    def __init__(self, dut, case: dict):
        self.dut = dut
        self.case = case
        seed = case["seed"]
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.loader = StreamSource(dut, "load", dut.clk, Pacer(case["pacing"], seed=seed))
        self.xsrc = StreamSource(dut, "x", dut.clk, Pacer(case["pacing"], seed=seed + 1))
        self.ysink = StreamSink(dut, "y", dut.clk, Pacer(case.get("out_pacing", case["pacing"]), seed=seed + 2))
        self.xmon = StreamMonitor(dut, "x", dut.clk)
        self.ymon = StreamMonitor(dut, "y", dut.clk)
        self.cycle = 0  # clock edges since observe() started
        self.counter_log = []  # (vectors, cycles) each time the vector counter moves

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(2):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def observe(self):
        """Each cycle, just before the edge: both streams' monitors and the counters."""
        dut = self.dut
        vectors = 0
        while True:
            await ReadOnly()
            self.xmon.sample()
            self.ymon.sample()
            v = int(dut.vectors.value)
            if v != vectors:
                vectors = v
                self.counter_log.append((v, int(dut.cycles.value)))
            await RisingEdge(dut.clk)
            self.cycle += 1


@cocotb.test()
async def run_case(dut):
    with open(os.environ["SPARSEFLOW_CASE"]) as fh:
        case = json.load(fh)
    tb = EngineTB(dut, case)
    await tb.reset()
    t_wall = time.perf_counter()
    cocotb.start_soon(tb.observe())
    await tb.loader.send(case["load"])

    ab, ob = case["act_bits"], case["out_bits"]
    words = packed_inputs(np.array(case["vectors"], dtype=np.int64).T, ab).reshape(-1).tolist()
    rows, nvec = case["rows"], len(case["vectors"])
    cocotb.start_soon(tb.xsrc.send(words))
    got = await tb.ysink.receive(rows * nvec, timeout_cycles=case["timeout_cycles"])
    for _ in range(3):  # let the counters settle after the last handshake
        await RisingEdge(dut.clk)
    await ReadOnly()

    y = [unpack_signed(w, ob) for w in got]
    last = [(w >> ob) & 1 for w in got]
    protocol_errors = tb.xmon.protocol_errors + tb.ymon.protocol_errors
    want_last = [int((i % rows) == rows - 1) for i in range(len(got))]
    if last != want_last:
        bad = next(i for i, (a, b) in enumerate(zip(last, want_last)) if a != b)
        protocol_errors.append(f"y.last wrong on result {bad} (row {bad % rows} of vector {bad // rows})")
    result = {
        "y": y,
        "cycles": [c for _, c in tb.counter_log],
        "vectors": int(dut.vectors.value),
        "busy": int(dut.busy.value),
        "total_cycles": tb.ymon.transfers[-1][0] - tb.xmon.transfers[0][0] + 1,
        "protocol_errors": protocol_errors,
        "sim_cycles": tb.cycle,
        "sim_seconds": time.perf_counter() - t_wall,
    }
    with open(case["out"], "w") as fh:
        json.dump(result, fh)
    assert not protocol_errors, protocol_errors[0]
