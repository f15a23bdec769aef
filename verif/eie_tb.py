"""cocotb testbench of rtl.eie.array.EIEArray: many matrices and vectors in one simulation.

The case (``SPARSEFLOW_CASE``, written by ``verif.spmv_eie.run_jobs``) holds, per job, the
``load`` words that install a matrix and its registers, and a (C, B) batch of input vectors.
For each job: the load words go in through a paced driver; then a driver streams the B vectors
back to back (random idle per ``pacing``) while a sink collects each vector's rows (random
back-pressure), checks the ``last`` flags and reads the counters after each vector. Results
and counters go to ``results.npz`` in the run folder; the host (``verif.spmv_eie``) is the
scoreboard against ``model.hw.reference`` and ``model.hw.cyclemodel``.
"""
import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from rtl.common.protocol import COUNTER_BITS, packed_inputs
from verif.streams import Pacer, StreamSink, StreamSource, unpack_signed


def _counters(sig, n: int) -> list[int]:
    v = int(sig.value)
    mask = (1 << COUNTER_BITS) - 1
    return [(v >> (COUNTER_BITS * k)) & mask for k in range(n)]


@cocotb.test()
async def eie_case(dut):
    case = np.load(os.environ["SPARSEFLOW_CASE"])
    meta = json.loads(str(case["meta"]))
    act_bits, out_bits, n = meta["act_bits"], meta["out_bits"], meta["n_pes"]
    seed = meta["seed"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    load = StreamSource(dut, "load", dut.clk, Pacer(meta["load_pacing"], seed=seed + 1))
    xsrc = StreamSource(dut, "x", dut.clk, Pacer(meta["pacing"], seed=seed + 2))
    ysink = StreamSink(dut, "y", dut.clk, Pacer(meta["out_pacing"], seed=seed + 3))
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    results = {}
    t_wall, t_sim = time.perf_counter(), get_sim_time("ns")
    for i in range(meta["n_jobs"]):
        await load.send(case[f"load_{i}"].tolist())
        x = case[f"x_{i}"]
        rows = int(case[f"rows_{i}"])
        cols, batch = x.shape
        send = cocotb.start_soon(xsrc.send(packed_inputs(x, act_bits, meta.get("frontend_width", 1)).reshape(-1).tolist()))
        y = np.zeros((rows, batch), dtype=np.int64)
        cyc, tot, busy, stall, vecs = [], [], [], [], []
        for b in range(batch):
            got = await ysink.receive(rows, timeout_cycles=200 * (rows + cols) + 10_000)
            lasts = [w >> out_bits for w in got]
            assert lasts == [0] * (rows - 1) + [1], f"job {i} vector {b}: last flags {lasts}"
            y[:, b] = [unpack_signed(w, out_bits) for w in got]
            # The counters change at the edge of the last transfer: settle, read, then leave
            # the read-only phase (ready stays low for that one cycle: more back-pressure).
            await ReadOnly()
            cyc.append(int(dut.cycles.value))
            tot.append(int(dut.total_cycles.value))
            busy.append(_counters(dut.busy, n))
            stall.append(_counters(dut.stall, n))
            vecs.append(int(dut.vectors.value))
            await RisingEdge(dut.clk)
        await send
        results.update({f"y_{i}": y, f"cycles_{i}": np.array(cyc), f"total_{i}": np.array(tot),
                        f"busy_{i}": np.array(busy).reshape(batch, n),
                        f"stall_{i}": np.array(stall).reshape(batch, n), f"vectors_{i}": np.array(vecs)})
    sim_cycles = int((get_sim_time("ns") - t_sim) // 10)
    tb_meta = {"sim_seconds": time.perf_counter() - t_wall, "sim_cycles": sim_cycles,
               "vectors": int(dut.vectors.value)}
    np.savez("results.npz", meta=np.array(json.dumps(tb_meta)), **results)
