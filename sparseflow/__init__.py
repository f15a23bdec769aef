"""SparseFlow's public Python API: your network through the flow.

::

    import sparseflow
    data = sparseflow.mnist()                         # or a dict / DATA.npz path with x_train, y_train, x_test, y_test
    net = sparseflow.compile("lenet300100.onnx", data, sparsity=0.92)   # or an nn.Module / TorchScript .pt
    net.golden(x)            # integer golden logits for float inputs x (N, *input_shape)
    net.run(x, sim="verilator")   # the same through the simulated RTL, layer by layer (checked)
    net.save("build/lenet")  # the folder `sparseflow run` takes
    net = sparseflow.load("build/lenet")

``compile`` takes every option of :class:`model.network.compile.CompileOptions` as a keyword
(``method``, ``granularity``, ``sparsity``, ``conv_sparsity``, ``schedule``, ``scope``,
``engine``, ``pes``, ``lanes``, ``share_bits``, ``seed``, ...). Errors are
:class:`SparseFlowError` with a one-line message.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.errors import SparseFlowError

__all__ = ["compile", "load", "mnist", "Network", "SparseFlowError"]


class Network:
    """A compiled network: the integer network (``.int``), its report, and the pruned float graph."""

    def __init__(self, net, report: dict | None = None, compiled=None, folder: Path | None = None):
        self.int = net
        self.report = report or {}
        self._compiled = compiled
        self.folder = folder

    @property
    def engines(self) -> list[str]:
        return [l.engine for l in self.int.layers]

    @property
    def accuracy(self) -> dict:
        return self.report.get("accuracy", self.int.meta.get("accuracy", {}))

    def golden(self, x) -> np.ndarray:
        """Integer logits ``(N, classes)`` of the golden model for float inputs ``x``."""
        return self.int.logits(self.int.quantize_input(_batch(x, self.int.input_shape)))

    def predict(self, x) -> np.ndarray:
        return self.golden(x).argmax(1)

    def run(self, x, sim: str = "verilator", backend: str | None = None, engine: str | None = None,
            progress: bool = False) -> dict:
        """``x`` through the simulated RTL (layer by layer); returns ``{"logits", "golden", "layers",
        "mismatches", ...}``; raises RuntimeError if any output differs from the golden model."""
        from model.network.folder import engine_configs
        from verif.native import check_backend
        from verif.netrun import run_network
        backend = check_backend(backend, sim)
        engines = None if engine is None else [engine] * len(self.int.layers)
        m = self.int.meta
        cfgs = engine_configs(self.int, m.get("pes", 8), m.get("lanes", 4), m.get("fifo_depth", 8),
                              kinds=set(engines or self.engines), block=m.get("block", 4))
        res = run_network(self.int, self.int.quantize_input(_batch(x, self.int.input_shape)), cfgs,
                          engines=engines, sim=sim, backend=backend, progress=progress)
        if res["mismatches"]:
            raise RuntimeError(f"{res['mismatches']} RTL outputs differ from the golden model")
        return res

    def save(self, folder) -> Path:
        from model.network.folder import write_compiled
        if self._compiled is None:
            raise SparseFlowError("this network was loaded from a folder; it is saved already")
        self.folder = write_compiled(self._compiled, folder)
        return self.folder


def _batch(x, shape) -> np.ndarray:
    x = np.asarray(x)
    return x[None] if tuple(x.shape) == tuple(shape) else x


def _data(data) -> dict:
    from model.network.compile import load_data
    if isinstance(data, (str, Path)):
        return load_data(data)
    if hasattr(data, "files"):  # an open NpzFile
        return {k: data[k] for k in data.files}
    return dict(data)


def compile(model, data, **options) -> Network:
    """Import ``model`` (an ``nn.Module``, an ``.onnx`` or TorchScript file), prune, fine-tune and
    quantize it on ``data`` (dict or DATA.npz path); see :mod:`model.network.compile`."""
    from model.nn.graph import load_model
    from model.network.compile import CompileOptions, check_data, compile_network, graph_classes
    d = _data(data)
    shape = tuple(np.asarray(d["x_train"]).shape[1:]) if "x_train" in d else None
    graph = load_model(model, shape)
    d = check_data(d, graph.input_shape, graph_classes(graph))
    options.setdefault("progress", False)
    try:
        opts = CompileOptions(**options)
    except TypeError as exc:
        raise SparseFlowError(f"unknown compile option ({exc})") from None
    c = compile_network(graph, d, opts)
    return Network(c.net, c.report, c)


def load(folder) -> Network:
    """A folder written by ``sparseflow compile`` / :meth:`Network.save`."""
    import json
    from model.network.folder import load_compiled
    net, man = load_compiled(folder)
    rep = {}
    p = Path(folder) / "report.json"
    if p.is_file():
        rep = json.loads(p.read_text())
    return Network(net, rep, None, Path(folder))


def mnist() -> dict:
    """The MNIST subset (4,000 train / 1,000 test, (1, 28, 28) float32 in [0, 1])."""
    from model.nn.mnist import load_mnist
    return dict(load_mnist())
