"""The integer network: what the engines and the host compute, bit for bit.

Per engine layer (:class:`IntLayer`): int8 weights ``W`` as the ``(out, cols)`` matrix (a
``Conv2d`` lowered to ``(out, in*kh*kw)``), an optional per-row bias in the accumulator scale
(signed ``bias_bits``), a power-of-two requantization ``shift`` and a ReLU flag (a ReLU right
after the layer is fused into the requantizer). One output vector is
``model.hw.reference.layer(W, x, arith, bias)``; a convolution runs it once per output position on
the im2col patches of its int16 input (:func:`model.nn.graph.lower.im2col`; zero padding is a zero
activation because activations are symmetric, zero point 0).

Between layers the host runs, on integers: a ReLU that does not follow a layer (``max(x, 0)``),
max pooling (padding never wins), average pooling (window sum, then division rounding half up:
``floor((sum + count // 2) / count)``), Flatten and Reshape. A final Softmax is dropped (the
arg-max of the logits is the prediction). The same host code serves the golden model and the
RTL runner (``verif.netrun``).

Input: ``x_int = clip(round(x * 2**input_frac))`` to int16 (``input_frac`` calibrated on the
training data, the largest that keeps their peak in range).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.hw.config import Arith, Requant
from model.hw.engines import EIE
from model.errors import SparseFlowError
from model.nn.graph.ir import AvgPool2d, Flatten, MaxPool2d, Node, ReLU, Reshape, Softmax, NODE_TYPES
from model.nn.graph.lower import im2col
from model.hw.reference import layer as ref_layer

FORMAT = "sparseflow-intnet"
VERSION = 1


@dataclass(eq=False)
class IntLayer:
    """One engine layer: ``requant(W @ x + bias)`` per vector (per output position for a conv)."""

    name: str
    kind: str                      # "linear" | "conv"
    weight: np.ndarray             # int64 (out, cols)
    bias: np.ndarray | None        # int64 (out,) in the accumulator scale, or None
    shift: int
    relu: bool
    w_scale: float                 # real weight = w_scale * weight
    in_scale: float                # real value of one input LSB
    in_shape: tuple = ()           # activation shape in (batch excluded)
    out_shape: tuple = ()
    kernel: tuple = (1, 1)         # conv only
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    engine: str = EIE.name
    codebook: np.ndarray | None = None   # 4-bit weight sharing: weight == codebook[indices]
    indices: np.ndarray | None = None
    index_bits: int | None = None        # EIE relative-index width chosen for this layer (None: the build's)

    @property
    def rows(self) -> int:
        return self.weight.shape[0]

    @property
    def cols(self) -> int:
        return self.weight.shape[1]

    @property
    def positions(self) -> int:
        """Matrix x vector products per image (output positions of a conv, 1 for a linear layer)."""
        return int(self.out_shape[1] * self.out_shape[2]) if self.kind == "conv" else 1

    @property
    def out_scale(self) -> float:
        return self.w_scale * self.in_scale * 2.0 ** self.shift

    def arith(self, weight_bits: int, act_bits: int, bias_bits: int, max_cols: int | None = None) -> Arith:
        return Arith(weight_bits, act_bits, max_cols=max_cols or self.cols, requant=Requant(self.shift, self.relu),
                     bias_bits=bias_bits)

    def vectors(self, x: np.ndarray) -> np.ndarray:
        """Batch ``(N, *in_shape)`` -> the engine's input columns ``(cols, N * positions)``."""
        n = x.shape[0]
        if self.kind == "linear":
            return np.ascontiguousarray(x.reshape(n, -1).T)
        p = im2col(x, self.kernel, self.stride, self.padding)      # (N, cols, P)
        return np.ascontiguousarray(p.transpose(1, 0, 2).reshape(self.cols, -1))

    def unvector(self, y: np.ndarray, n: int) -> np.ndarray:
        """Engine outputs ``(out, N * positions)`` -> batch ``(N, *out_shape)``."""
        if self.kind == "linear":
            return np.ascontiguousarray(y.T)
        return np.ascontiguousarray(y.reshape(self.rows, n, -1).transpose(1, 0, 2).reshape(n, *self.out_shape))


def host_op(node: Node, x: np.ndarray, act_bits: int) -> np.ndarray:
    """One host operation on an integer batch (see the module docstring)."""
    n = x.shape[0]
    if isinstance(node, ReLU):
        return np.maximum(x, 0)
    if isinstance(node, Flatten):
        return x.reshape(n, -1)
    if isinstance(node, Reshape):
        return x.reshape(n, *node.shape)
    if isinstance(node, Softmax):
        return x
    if isinstance(node, (MaxPool2d, AvgPool2d)):
        from numpy.lib.stride_tricks import sliding_window_view
        if isinstance(node, AvgPool2d) and node.is_global:
            cnt = x.shape[2] * x.shape[3]
            return (x.sum(axis=(2, 3), keepdims=True) + cnt // 2) // cnt
        t, l, b, r = node.padding
        lo = -(1 << (act_bits - 1)) if isinstance(node, MaxPool2d) else 0
        xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=lo) if any(node.padding) else x
        win = sliding_window_view(xp, tuple(node.kernel), axis=(2, 3))[:, :, ::node.stride[0], ::node.stride[1]]
        if isinstance(node, MaxPool2d):
            return win.max(axis=(4, 5))
        s = win.sum(axis=(4, 5))
        if node.count_include_pad or not any(node.padding):
            cnt = node.kernel[0] * node.kernel[1]
            return (s + cnt // 2) // cnt
        ones = np.pad(np.ones((1, 1, *x.shape[2:]), dtype=np.int64), ((0, 0), (0, 0), (t, b), (l, r)))
        cnt = sliding_window_view(ones, tuple(node.kernel), axis=(2, 3))[:, :, ::node.stride[0], ::node.stride[1]]
        cnt = cnt.sum(axis=(4, 5))
        return (s + cnt // 2) // cnt
    raise SparseFlowError(f"{node.op} node '{node.name}' has no integer host implementation")


@dataclass(eq=False)
class IntNetwork:
    """Ops in order: :class:`IntLayer` (engine) or a graph host node."""

    input_shape: tuple
    input_frac: int
    ops: list
    weight_bits: int = 8
    act_bits: int = 16
    bias_bits: int = 32
    name: str = ""
    classes: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[IntLayer]:
        return [o for o in self.ops if isinstance(o, IntLayer)]

    def quantize_input(self, x) -> np.ndarray:
        """Float inputs ``(N, *input_shape)`` -> int64 activations (round half to even, saturate)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1:] != tuple(self.input_shape):
            raise SparseFlowError(f"the input has shape {x.shape}; the network takes (N, "
                                  f"{', '.join(map(str, self.input_shape))})")
        if not np.all(np.isfinite(x)):
            raise SparseFlowError("the input has non-finite values (NaN or inf)")
        hi = (1 << (self.act_bits - 1)) - 1
        return np.clip(np.round(x * 2.0 ** self.input_frac), -hi - 1, hi).astype(np.int64)

    def layer_forward(self, lay: IntLayer, x: np.ndarray) -> np.ndarray:
        arith = lay.arith(self.weight_bits, self.act_bits, self.bias_bits)
        n = x.shape[0]
        cols = lay.vectors(x)
        y = ref_layer(lay.weight, cols, arith) if lay.bias is None else ref_layer(lay.weight, cols, arith, lay.bias)
        return lay.unvector(y, n)

    def forward_ops(self, x_int: np.ndarray, chunk: int = 250) -> list[np.ndarray]:
        """Every op's integer output, the input first (batch first), in chunks of images."""
        outs: list[list] = [[] for _ in range(len(self.ops) + 1)]
        for s in range(0, x_int.shape[0], chunk):
            x = x_int[s:s + chunk]
            outs[0].append(x)
            for i, op in enumerate(self.ops):
                x = self.layer_forward(op, x) if isinstance(op, IntLayer) else host_op(op, x, self.act_bits)
                outs[i + 1].append(x)
        return [np.concatenate(o) for o in outs]

    def logits(self, x_int: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, x_int.shape[0], 250):
            x = x_int[s:s + 250]
            for op in self.ops:
                x = self.layer_forward(op, x) if isinstance(op, IntLayer) else host_op(op, x, self.act_bits)
            out.append(x.reshape(x.shape[0], -1))
        return np.concatenate(out)

    def predict(self, x_float) -> np.ndarray:
        return self.logits(self.quantize_input(x_float)).argmax(1)

    def logits_float(self, x_float) -> np.ndarray:
        """The integer logits read back as reals."""
        return self.logits(self.quantize_input(x_float)) * self.layers[-1].out_scale

    # -- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict:
        ops = []
        for o in self.ops:
            if isinstance(o, IntLayer):
                ops.append({"op": "layer", "name": o.name, "kind": o.kind, "shape": list(o.weight.shape),
                            "bias": o.bias is not None, "shift": o.shift, "relu": o.relu, "w_scale": o.w_scale,
                            "in_scale": o.in_scale, "in_shape": list(o.in_shape), "out_shape": list(o.out_shape),
                            "kernel": list(o.kernel), "stride": list(o.stride), "padding": list(o.padding),
                            "engine": o.engine, "codebook": None if o.codebook is None else o.codebook.tolist(),
                            "nonzeros": int(np.count_nonzero(o.weight)), "index_bits": o.index_bits})
            else:
                ops.append({"op": o.op, "name": o.name, **o.attrs()})
        return {"format": FORMAT, "version": VERSION, "name": self.name, "input_shape": list(self.input_shape),
                "input_frac": self.input_frac, "weight_bits": self.weight_bits, "act_bits": self.act_bits,
                "bias_bits": self.bias_bits, "classes": self.classes, "ops": ops, "meta": self.meta}

    def save(self, folder, stem: str = "network") -> None:
        folder = Path(folder)
        arrays = {}
        for i, o in enumerate(self.ops):
            if isinstance(o, IntLayer):
                arrays[f"{i}.weight"] = o.weight.astype(np.int32)
                if o.bias is not None:
                    arrays[f"{i}.bias"] = o.bias.astype(np.int64)
                if o.indices is not None:
                    arrays[f"{i}.indices"] = o.indices.astype(np.int32)
        np.savez(folder / f"{stem}.npz", **arrays)
        (folder / f"{stem}.json").write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, folder, stem: str = "network") -> "IntNetwork":
        folder = Path(folder)
        try:
            d = json.loads((folder / f"{stem}.json").read_text())
            with np.load(folder / f"{stem}.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError as exc:
            raise SparseFlowError(f"{folder}: not a compiled network ({Path(exc.filename).name} is missing)") from None
        except (OSError, ValueError) as exc:
            raise SparseFlowError(f"{folder}: unreadable compiled network ({str(exc).splitlines()[0]})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != VERSION:
            raise SparseFlowError(f"{folder}/{stem}.json is not a sparseflow integer network (version {VERSION})")
        try:
            ops = []
            for i, od in enumerate(d["ops"]):
                od = dict(od)
                if od["op"] == "layer":
                    cb = od.get("codebook")
                    ops.append(IntLayer(
                        od["name"], od["kind"], arrays[f"{i}.weight"].astype(np.int64),
                        arrays[f"{i}.bias"].astype(np.int64) if od["bias"] else None, int(od["shift"]),
                        bool(od["relu"]), float(od["w_scale"]), float(od["in_scale"]), tuple(od["in_shape"]),
                        tuple(od["out_shape"]), tuple(od["kernel"]), tuple(od["stride"]), tuple(od["padding"]),
                        od["engine"], None if cb is None else np.asarray(cb, dtype=np.int64),
                        arrays[f"{i}.indices"].astype(np.int64) if f"{i}.indices" in arrays else None,
                        od.get("index_bits")))
                else:
                    typ = NODE_TYPES[od.pop("op")]
                    ops.append(typ(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in od.items()}))
        except (KeyError, TypeError, ValueError) as exc:
            raise SparseFlowError(f"{folder}/{stem}.json is inconsistent ({type(exc).__name__}: {exc})") from None
        return cls(tuple(d["input_shape"]), int(d["input_frac"]), ops, d["weight_bits"], d["act_bits"],
                   d["bias_bits"], d.get("name", ""), d.get("classes", 0), d.get("meta", {}))
