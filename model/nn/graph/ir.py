"""The graph of a feed-forward network: a chain of nodes from one input to one output.

Shapes never include the batch: ``Graph.input_shape`` is ``(C, H, W)`` for images or
``(features,)`` for vectors, and every node maps one activation to the next (batch first,
NCHW, as in PyTorch). The nodes are the operations the flow knows:

* :class:`Linear` ``y = W x + b`` (``W`` is ``(out, in)``) and :class:`Conv2d` (zero padding,
  any kernel and stride; ``groups = 1``, ``dilation = 1``): the layers an engine runs (EIE,
  2:4 or dense; a convolution as its lowered ``(out, in*kh*kw)`` matrix times im2col patches,
  see :mod:`model.nn.graph.lower`). BatchNorm is folded into them at import.
* :class:`ReLU`: fused into the engine's requantizer when it directly follows a layer, on the
  host otherwise.
* :class:`MaxPool2d`, :class:`AvgPool2d` (``kernel=None``: global average pool),
  :class:`Flatten`, :class:`Reshape`: on the host, between engine passes.
* :class:`Scale`: a per-channel ``x * scale + shift`` on the host (a BatchNorm that does not
  directly follow a layer, so cannot be folded).
* :class:`Softmax` (``log=True``: LogSoftmax): only as the last node, on the host; it does not
  change the arg-max.

Padding is ``(top, left, bottom, right)``. Weights are float32 arrays.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from model.hw.engines import NAMES as ENGINES  # engines that can run a Linear / Conv2d layer
from model.errors import SparseFlowError

FORMAT = "sparseflow-graph"
VERSION = 1


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise SparseFlowError(f"{what} must have 2 values, not {len(v)}")
    return v


def _pads(v, what: str) -> tuple[int, int, int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v),) * 4
    v = tuple(int(a) for a in v)
    if len(v) == 2:  # (ph, pw) symmetric
        v = (v[0], v[1], v[0], v[1])
    if len(v) != 4 or min(v) < 0:
        raise SparseFlowError(f"{what} must be 4 non-negative values (top, left, bottom, right), not {v}")
    return v


def _f32(a, what: str) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    if not np.all(np.isfinite(a)):
        raise SparseFlowError(f"{what} has non-finite values")
    return a


@dataclass(eq=False)
class Node:
    """One operation; ``name`` comes from the source model (module path or ONNX node name)."""

    name: str
    op: ClassVar[str] = "?"
    host: ClassVar[bool] = True  # runs on the host (not an engine layer)

    def out_shape(self, shape: tuple) -> tuple:
        return shape

    def attrs(self) -> dict:
        """JSON-able attributes (arrays excluded)."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def n_params(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))

    def _need(self, shape, ndim: int, what: str):
        if len(shape) != ndim:
            raise SparseFlowError(f"{self.op} node '{self.name}': needs a {what} input, got shape {shape}")


@dataclass(eq=False)
class Linear(Node):
    weight: np.ndarray = None     # (out, in)
    bias: np.ndarray | None = None  # (out,) or None
    op: ClassVar[str] = "Linear"
    host: ClassVar[bool] = False

    def __post_init__(self):
        self.weight = _f32(self.weight, f"Linear '{self.name}' weight")
        if self.weight.ndim != 2:
            raise SparseFlowError(f"Linear node '{self.name}': weight must be 2-D, not {self.weight.shape}")
        if self.bias is not None:
            self.bias = _f32(self.bias, f"Linear '{self.name}' bias").reshape(-1)
            if self.bias.shape != (self.weight.shape[0],):
                raise SparseFlowError(f"Linear node '{self.name}': bias has {self.bias.size} values "
                                      f"for {self.weight.shape[0]} outputs")

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def out_shape(self, shape):
        self._need(shape, 1, "flat (features,)")
        if shape[0] != self.in_features:
            raise SparseFlowError(f"Linear node '{self.name}': {shape[0]} inputs but the weight takes "
                                  f"{self.in_features}")
        return (self.out_features,)

    def matrix(self) -> np.ndarray:
        return self.weight

    def arrays(self):
        return {"weight": self.weight} | ({"bias": self.bias} if self.bias is not None else {})


@dataclass(eq=False)
class Conv2d(Node):
    weight: np.ndarray = None     # (out, in, kh, kw)
    bias: np.ndarray | None = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)  # zeros, (top, left, bottom, right)
    op: ClassVar[str] = "Conv2d"
    host: ClassVar[bool] = False

    def __post_init__(self):
        self.weight = _f32(self.weight, f"Conv2d '{self.name}' weight")
        if self.weight.ndim != 4:
            raise SparseFlowError(f"Conv2d node '{self.name}': weight must be 4-D, not {self.weight.shape}")
        if self.bias is not None:
            self.bias = _f32(self.bias, f"Conv2d '{self.name}' bias").reshape(-1)
            if self.bias.shape != (self.weight.shape[0],):
                raise SparseFlowError(f"Conv2d node '{self.name}': bias has {self.bias.size} values "
                                      f"for {self.weight.shape[0]} channels")
        self.stride = _pair(self.stride, f"Conv2d '{self.name}' stride")
        self.padding = _pads(self.padding, f"Conv2d '{self.name}' padding")
        if min(self.stride) < 1:
            raise SparseFlowError(f"Conv2d node '{self.name}': stride must be >= 1, not {self.stride}")

    @property
    def kernel(self) -> tuple[int, int]:
        return tuple(self.weight.shape[2:])

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    def out_shape(self, shape):
        self._need(shape, 3, "(C, H, W)")
        if shape[0] != self.in_channels:
            raise SparseFlowError(f"Conv2d node '{self.name}': {shape[0]} input channels but the weight takes "
                                  f"{self.in_channels}")
        oh, ow = _window_out(self, shape, self.kernel, self.stride, self.padding)
        return (self.out_channels, oh, ow)

    def matrix(self) -> np.ndarray:
        """The lowered ``(out, in*kh*kw)`` matrix (rows match :func:`model.nn.graph.lower.im2col`)."""
        return self.weight.reshape(self.out_channels, -1)

    def attrs(self):
        return {"stride": list(self.stride), "padding": list(self.padding)}

    def arrays(self):
        return {"weight": self.weight} | ({"bias": self.bias} if self.bias is not None else {})


def _window_out(node, shape, kernel, stride, pads):
    _, h, w = shape
    t, l, b, r = pads
    hh, ww = h + t + b, w + l + r
    if kernel[0] > hh or kernel[1] > ww:
        raise SparseFlowError(f"{node.op} node '{node.name}': kernel {kernel} is larger than the padded input "
                              f"{hh}x{ww}")
    return (hh - kernel[0]) // stride[0] + 1, (ww - kernel[1]) // stride[1] + 1


@dataclass(eq=False)
class ReLU(Node):
    op: ClassVar[str] = "ReLU"


@dataclass(eq=False)
class MaxPool2d(Node):
    kernel: tuple = (2, 2)
    stride: tuple | None = None     # None: = kernel
    padding: tuple = (0, 0, 0, 0)   # -inf padding
    op: ClassVar[str] = "MaxPool2d"

    def __post_init__(self):
        self.kernel = _pair(self.kernel, f"MaxPool2d '{self.name}' kernel")
        self.stride = _pair(self.kernel if self.stride is None else self.stride, f"MaxPool2d '{self.name}' stride")
        self.padding = _pads(self.padding, f"MaxPool2d '{self.name}' padding")
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise SparseFlowError(f"MaxPool2d node '{self.name}': kernel and stride must be >= 1")
        t, l, b, r = self.padding
        if max(t, b) >= self.kernel[0] or max(l, r) >= self.kernel[1]:
            raise SparseFlowError(f"MaxPool2d node '{self.name}': padding {self.padding} must be smaller than "
                                  f"the kernel {self.kernel}")

    def out_shape(self, shape):
        self._need(shape, 3, "(C, H, W)")
        return (shape[0], *_window_out(self, shape, self.kernel, self.stride, self.padding))

    def attrs(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding)}


@dataclass(eq=False)
class AvgPool2d(Node):
    kernel: tuple | None = (2, 2)   # None: global average pool (output (C, 1, 1))
    stride: tuple | None = None
    padding: tuple = (0, 0, 0, 0)   # zero padding
    count_include_pad: bool = True  # divide by the whole window (PyTorch default) or by the real pixels
    op: ClassVar[str] = "AvgPool2d"

    def __post_init__(self):
        if self.kernel is None:
            self.stride, self.padding = None, (0, 0, 0, 0)
            return
        self.kernel = _pair(self.kernel, f"AvgPool2d '{self.name}' kernel")
        self.stride = _pair(self.kernel if self.stride is None else self.stride, f"AvgPool2d '{self.name}' stride")
        self.padding = _pads(self.padding, f"AvgPool2d '{self.name}' padding")
        self.count_include_pad = bool(self.count_include_pad)
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise SparseFlowError(f"AvgPool2d node '{self.name}': kernel and stride must be >= 1")
        t, l, b, r = self.padding
        if max(t, b) >= self.kernel[0] or max(l, r) >= self.kernel[1]:
            raise SparseFlowError(f"AvgPool2d node '{self.name}': padding {self.padding} must be smaller than "
                                  f"the kernel {self.kernel}")

    @property
    def is_global(self) -> bool:
        return self.kernel is None

    def out_shape(self, shape):
        self._need(shape, 3, "(C, H, W)")
        if self.is_global:
            return (shape[0], 1, 1)
        return (shape[0], *_window_out(self, shape, self.kernel, self.stride, self.padding))

    def attrs(self):
        if self.is_global:
            return {"kernel": None}
        return {"kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding),
                "count_include_pad": self.count_include_pad}


@dataclass(eq=False)
class Flatten(Node):
    """All dimensions but the batch into one (``torch.flatten(x, 1)``)."""

    op: ClassVar[str] = "Flatten"

    def out_shape(self, shape):
        return (int(np.prod(shape, dtype=np.int64)),)


@dataclass(eq=False)
class Reshape(Node):
    """To ``shape`` (batch excluded, every dimension known)."""

    shape: tuple = ()
    op: ClassVar[str] = "Reshape"

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        if not self.shape or min(self.shape) < 1:
            raise SparseFlowError(f"Reshape node '{self.name}': target shape {self.shape} must be positive sizes")

    def out_shape(self, shape):
        if int(np.prod(shape, dtype=np.int64)) != int(np.prod(self.shape, dtype=np.int64)):
            raise SparseFlowError(f"Reshape node '{self.name}': cannot reshape {shape} to {self.shape}")
        return self.shape

    def attrs(self):
        return {"shape": list(self.shape)}


@dataclass(eq=False)
class Scale(Node):
    """``y = x * scale[c] + shift[c]`` per channel (the first non-batch axis), on the host.

    What a BatchNorm becomes when no Linear/Conv2d directly precedes it to be folded into.
    """

    scale: np.ndarray = None
    shift: np.ndarray = None
    op: ClassVar[str] = "Scale"

    def __post_init__(self):
        self.scale = _f32(self.scale, f"Scale '{self.name}' scale").reshape(-1)
        self.shift = _f32(self.shift, f"Scale '{self.name}' shift").reshape(-1)
        if self.scale.shape != self.shift.shape:
            raise SparseFlowError(f"Scale node '{self.name}': scale and shift differ in size")

    def out_shape(self, shape):
        if shape[0] != self.scale.size:
            raise SparseFlowError(f"Scale node '{self.name}': {self.scale.size} channels but the input has "
                                  f"{shape[0]} (shape {shape})")
        return shape

    def arrays(self):
        return {"scale": self.scale, "shift": self.shift}


@dataclass(eq=False)
class Softmax(Node):
    """Softmax (``log=True``: LogSoftmax) over the classes; last node only, on the host."""

    log: bool = False
    op: ClassVar[str] = "Softmax"

    def out_shape(self, shape):
        self._need(shape, 1, "flat (classes,)")
        return shape

    def attrs(self):
        return {"log": bool(self.log)}


NODE_TYPES = {c.op: c for c in (Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Reshape, Scale, Softmax)}


@dataclass(eq=False)
class Graph:
    """A chain of nodes. ``input_shape`` excludes the batch."""

    input_shape: tuple
    nodes: list = field(default_factory=list)
    name: str = ""
    source: str = ""   # where it came from ("torch.fx", "onnx", "torchscript", a path)

    def __post_init__(self):
        self.input_shape = tuple(int(s) for s in self.input_shape)
        if not self.input_shape or min(self.input_shape) < 1:
            raise SparseFlowError(f"input shape {self.input_shape} must be positive sizes (batch excluded)")
        if not self.nodes:
            raise SparseFlowError("the network has no operation")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise SparseFlowError(f"two nodes are named '{dup}'")
        for i, n in enumerate(self.nodes):
            if isinstance(n, Softmax) and i != len(self.nodes) - 1:
                raise SparseFlowError(f"{'LogSoftmax' if n.log else 'Softmax'} node '{n.name}' is not the last "
                                      f"operation: only a final softmax is supported (host-side)")
        self.shapes()  # checks every shape

    # -- shapes and views ------------------------------------------------------------------
    def shapes(self) -> list[tuple[tuple, tuple]]:
        """``(input shape, output shape)`` of every node, batch excluded."""
        out, shape = [], self.input_shape
        for n in self.nodes:
            nxt = tuple(int(s) for s in n.out_shape(shape))
            out.append((shape, nxt))
            shape = nxt
        return out

    @property
    def output_shape(self) -> tuple:
        return self.shapes()[-1][1]

    def layers(self) -> list[Node]:
        """The engine layers (Linear / Conv2d), in order."""
        return [n for n in self.nodes if not n.host]

    def n_params(self) -> int:
        return sum(n.n_params() for n in self.nodes)

    def placement(self, i: int) -> str:
        """Where node ``i`` runs: ``engine``, ``fused`` (ReLU in the previous layer's requantizer), ``host``."""
        n = self.nodes[i]
        if not n.host:
            return "engine"
        if isinstance(n, ReLU) and i > 0 and not self.nodes[i - 1].host:
            return "fused"
        return "host"

    def table(self) -> list[dict]:
        """One row per node: what ``sparseflow inspect`` prints."""
        rows = []
        for i, (n, (si, so)) in enumerate(zip(self.nodes, self.shapes())):
            where = self.placement(i)
            op = "LogSoftmax" if isinstance(n, Softmax) and n.log else n.op
            if isinstance(n, AvgPool2d) and n.is_global:
                op = "GlobalAvgPool2d"
            row = {"index": i, "name": n.name, "op": op, "input_shape": list(si), "output_shape": list(so),
                   "params": n.n_params(), "supported": True, "placement": where,
                   "engines": list(ENGINES) if where == "engine" else ["host"] if where == "host" else
                   ["requant (fused)"]}
            if not n.host:
                m = n.matrix()
                row["matrix"] = list(m.shape)
                row["bias"] = n.bias is not None
                if m.shape[1] % 4:  # 2:4 groups four inputs: the compiler pads the columns with zeros
                    row["cols_2:4"] = -(-m.shape[1] // 4) * 4
                if isinstance(n, Conv2d):
                    row["positions"] = int(so[1] * so[2])  # matrix x vector products per image
            rows.append(row)
        return rows

    # -- evaluation --------------------------------------------------------------------------
    def __call__(self, x, **kw):
        from model.nn.graph.evaluate import evaluate
        return evaluate(self, x, **kw)

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "source": self.source,
                "input_shape": list(self.input_shape),
                "nodes": [{"op": n.op, "name": n.name, **n.attrs(), "arrays": sorted(n.arrays())} for n in self.nodes]}

    def arrays(self) -> dict[str, np.ndarray]:
        """``"<index>.<array>"`` -> array, for the npz file."""
        return {f"{i}.{k}": v for i, n in enumerate(self.nodes) for k, v in n.arrays().items()}

    def save(self, folder, stem: str = "graph") -> tuple[Path, Path]:
        """``<stem>.json`` (structure) + ``<stem>.npz`` (float32 weights) in ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        js, npz = folder / f"{stem}.json", folder / f"{stem}.npz"
        np.savez(npz, **self.arrays())
        js.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return js, npz

    @classmethod
    def load(cls, folder, stem: str = "graph") -> "Graph":
        folder = Path(folder)
        js, npz = folder / f"{stem}.json", folder / f"{stem}.npz"
        try:
            d = json.loads(js.read_text())
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError as exc:
            raise SparseFlowError(f"{exc.filename}: no such file") from None
        except (OSError, ValueError) as exc:
            raise SparseFlowError(f"{folder}: not a readable saved graph ({str(exc).splitlines()[0]})") from None
        return cls.from_dict(d, arrays)

    @classmethod
    def from_dict(cls, d: dict, arrays: dict) -> "Graph":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise SparseFlowError("not a sparseflow graph description")
        if d.get("version") != VERSION:
            raise SparseFlowError(f"graph format version {d.get('version')} is not supported (this is {VERSION})")
        nodes = []
        try:
            for i, nd in enumerate(d["nodes"]):
                nd = dict(nd)
                typ = NODE_TYPES.get(nd.pop("op"))
                if typ is None:
                    raise SparseFlowError(f"saved graph node {i}: unknown op")
                names = nd.pop("arrays", [])
                kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in nd.items()}
                for a in names:
                    kw[a] = arrays[f"{i}.{a}"]
                nodes.append(typ(**kw))
        except (KeyError, TypeError) as exc:
            raise SparseFlowError(f"saved graph is inconsistent ({type(exc).__name__}: {exc})") from None
        return cls(tuple(d["input_shape"]), nodes, name=d.get("name", ""), source=d.get("source", ""))

    def __repr__(self):
        return f"Graph({self.name!r}, input {self.input_shape}, {len(self.nodes)} nodes: " \
               f"{', '.join(n.op for n in self.nodes)})"
