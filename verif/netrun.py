"""Run a compiled integer network on the simulated RTL, layer by layer (``sparseflow run``).

Every engine layer runs on its engine (``verif.spmv_eie.run_jobs`` for the EIE array,
``verif.spmv_sparse24`` for the 2:4 and dense engines, ``verif.spmv_bsr`` for the BSR engine): a Linear layer is one matrix x vector
product per image, a convolution one per output position on the im2col patches of its input
(built on the host, :meth:`model.network.intnet.IntLayer.vectors`). The engine's outputs (ReLU,
bias, shift and saturation done in hardware) are reassembled into activations, and the host
operations between layers (pooling, flattening, a ReLU that does not follow a layer) run in
NumPy exactly as in the golden model (:func:`model.network.intnet.host_op`); they are cheap
next to the layers. Each layer's RTL output is compared with the golden model's, element by
element.

One build per engine kind serves all layers (:func:`model.network.folder.engine_configs`);
shift/ReLU/bias travel as ``load`` words with each layer's weights.
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np

from model.hw.config import Requant
from model.errors import SparseFlowError
from model.hw.engines import BSR, DENSE, EIE, SPARSE24
from model.network.engines import is_24, pad_input, pad_weight
from model.network.intnet import IntLayer, IntNetwork, host_op


def run_layer(lay: IntLayer, vec: np.ndarray, engine: str, cfgs: dict, net: IntNetwork, *, sim: str,
              backend: str) -> tuple[np.ndarray, np.ndarray]:
    """``vec`` (cols, B) through ``lay`` on ``engine``: (outputs (rows, B), cycles per vector (B,)); unchecked."""
    rq = Requant(lay.shift, lay.relu)
    if engine == EIE.name:
        from verif.spmv_eie import run_jobs
        cfg = cfgs[EIE.name]
        if cfg.codebook and lay.codebook is not None:
            job = (lay.indices, vec, rq, lay.codebook, lay.bias, lay.index_bits)
        else:
            job = (lay.weight, vec, rq, None, lay.bias, lay.index_bits)
            if cfg.codebook:
                raise SparseFlowError(f"layer '{lay.name}' has no codebook but the EIE build is in codebook mode")
        r = run_jobs([job], cfg, sim=sim, backend=backend, check=False)[0]
        return np.asarray(r["y"], dtype=np.int64), np.asarray(r["cycles"], dtype=np.int64)
    from model.hw.formats import nm
    from verif.spmv_sparse24 import make_engine, simulate_engine, toplevel_name
    dense = engine == DENSE.name
    cfg = cfgs[engine]
    cfg = cfg.with_(arith=replace(cfg.arith, requant=rq))
    w = pad_weight(lay.weight)
    x = pad_input(vec)
    if engine == BSR.name:
        from verif import spmv_bsr
        eng, matrix, top = spmv_bsr.make_engine(cfg), spmv_bsr.encode(w, cfg), spmv_bsr.TOPLEVEL
    else:
        eng, top = make_engine(cfg, dense), toplevel_name(dense)
        matrix = w if dense else nm.encode(w, net.weight_bits)
    program = eng.load_program(matrix, rq, lay.bias)
    r = simulate_engine(eng, program, x, lay.rows, sim=sim, toplevel=top, backend=backend)
    return np.asarray(r["y"], dtype=np.int64), np.asarray(r["cycles"], dtype=np.int64)


def _say(progress, t0, msg):
    if progress:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run_network(net: IntNetwork, x_int: np.ndarray, cfgs: dict, *, engines: list[str] | None = None,
                sim: str = "verilator", backend: str = "native", compare: dict | None = None,
                progress: bool = True, chunk_vectors: int = 50_000) -> dict:
    """Every image of ``x_int`` (N, *input_shape) through the RTL; returns per-layer results.

    ``engines``: per-layer engine (default: the compiled choice). ``compare``: ``{engine:
    images}``: also run every layer on that engine (when it can: 2:4 needs 2:4-sparse weights)
    for the first ``images`` images, for its cycle counts (outputs checked as well).
    Returns ``{"logits": RTL output (N, classes), "golden": golden logits, "layers": [...],
    "mismatches": int}``; each layer row has the cycles per inference (sum over positions, mean
    over images) on each engine run.
    """
    t0 = time.perf_counter()
    engines = engines or [l.engine for l in net.layers]
    golden = net.forward_ops(x_int)
    n = x_int.shape[0]
    x = x_int
    rows, total_bad, li = [], 0, 0
    for i, op in enumerate(net.ops):
        if not isinstance(op, IntLayer):
            x = host_op(op, x, net.act_bits)
            continue
        eng = engines[li]
        li += 1
        vec = op.vectors(x)
        P = op.positions
        per = max(1, chunk_vectors // P)
        ys, cyc = [], []
        for s in range(0, n, per):
            e = min(n, s + per)
            _say(progress, t0, f"layer {op.name} ({op.rows}x{op.cols}, {P} position{'s' * (P > 1)}) on {eng}: "
                 f"images {s + 1}-{e} of {n}")
            y, c = run_layer(op, vec[:, s * P:e * P], eng, cfgs, net, sim=sim, backend=backend)
            ys.append(y)
            cyc.append(c)
        y = np.concatenate(ys, axis=1)
        cyc = np.concatenate(cyc)
        out = op.unvector(y, n)
        bad = int(np.count_nonzero(out != golden[i + 1]))
        total_bad += bad
        row = {"name": op.name, "kind": op.kind, "matrix": [op.rows, op.cols], "positions": P, "engine": eng,
               "mismatches": bad, "outputs": int(out.size),
               "cycles": {eng: {"per_inference": float(cyc.sum()) / n, "per_vector": float(cyc.mean()), "images": n}}}
        for ce, cn in (compare or {}).items():
            if ce == eng or ce not in cfgs or (ce == SPARSE24.name and not is_24(op.weight)):
                continue
            m = min(cn, n)
            _say(progress, t0, f"layer {op.name}: comparison on {ce}, {m} images")
            yc, cc = run_layer(op, golden_vec(op, golden[i], m), ce, cfgs, net, sim=sim, backend=backend)
            badc = int(np.count_nonzero(op.unvector(yc, m) != golden[i + 1][:m]))
            total_bad += badc
            row["mismatches"] += badc
            row["cycles"][ce] = {"per_inference": float(cc.sum()) / m, "per_vector": float(cc.mean()), "images": m}
        rows.append(row)
        x = out
    logits = x.reshape(n, -1)
    return {"logits": logits, "golden": golden[-1].reshape(n, -1), "layers": rows, "mismatches": total_bad,
            "seconds": time.perf_counter() - t0}


def golden_vec(op: IntLayer, x_in: np.ndarray, m: int) -> np.ndarray:
    return op.vectors(x_in[:m])


def prebuild(cfgs: dict, sim: str, backend: str = "cocotb") -> None:
    """Compile every engine build the run needs (cached by Verilog text); ``cfgs`` maps
    ``"eie"`` and ``"2:4"``/``"dense..."`` names to their configurations (the digits demo's
    ``"dense-eie"`` is a second dense build)."""
    from rtl.common.config import build_config
    from rtl.eie.array import EIEArray
    from verif import native
    from verif.runner import build
    from verif.spmv_eie import TOPLEVEL
    from verif.spmv_sparse24 import make_engine, toplevel_name
    for name, cfg in cfgs.items():
        if name == EIE.name:
            dut = EIEArray(build_config(cfg))
            if backend == "native":
                native.build(dut, toplevel=TOPLEVEL, eie=True, n_pes=cfg.n_pes)
            else:
                build(dut, toplevel=TOPLEVEL, sim=sim)
        else:
            if name == BSR.name:
                from verif import spmv_bsr
                dut, top = spmv_bsr.make_engine(cfg), spmv_bsr.TOPLEVEL
            else:
                dense = name.startswith(DENSE.name)
                dut, top = make_engine(cfg, dense), toplevel_name(dense)
            if backend == "native":
                native.build(dut, toplevel=top, eie=False)
            else:
                build(dut, toplevel=top, sim=sim)
