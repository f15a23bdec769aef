"""Integer network: what the hardware computes, layer by layer, bit for bit.

Rule (``weight_bits`` = 8 and ``act_bits`` = 16 by default):

* **Input**: the raw digits pixels, integers 0..16, as ``act_bits`` activations. The float
  network saw ``pixels * INPUT_SCALE``, so one input LSB is worth ``INPUT_SCALE`` (1/16).
* **Weights**: per layer, symmetric: ``w_scale = max|W| / (2**(weight_bits-1) - 1)`` and
  ``W_int = round(W / w_scale)`` (so -127..127 for 8 bits; pruned weights stay 0).
* **Layer**: ``x_next = model.hw.reference.layer(W_int, x, arith)`` with
  ``arith = Arith(weight_bits, act_bits, max_cols=fan_in, requant=Requant(shift, relu))``:
  exact accumulation, then ReLU (hidden layers only; the last layer keeps signed logits),
  round-half-up ``>> shift``, saturation to ``act_bits``. No bias (the nets have none).
* **Shift**: chosen per layer by calibration on *training* images, propagating the integer
  activations: the smallest ``shift`` such that the ``percentile`` (default 100, i.e. the
  maximum) of the layer's post-ReLU (hidden) or absolute (last) accumulator fits
  ``act_bits`` after the shift: activations use the range and, on training data, never
  saturate.
* **Scales** (for reading the integers back as reals, never used by the hardware): an output
  LSB is worth ``out_scale = w_scale * in_scale * 2**shift``; it is the next layer's
  ``in_scale``. ``logits_float`` multiplies by the last one.

EIE weight sharing (:func:`share_weights`): per layer, a ``2**bits``-entry codebook (entry 0 is
the zero weight; 1-D k-means with linear initialisation on the non-zero integer weights,
centroids rounded to ``weight_bits`` integers) and an index matrix (0 exactly where the weight
is 0), ready for ``model.hw.formats.eie.encode(indices, cfg.with_(codebook=True),
codebook=codebook)``. The shared net's weights are ``codebook[indices]``; its shifts are
recalibrated the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.hw.config import Arith, Requant
from model.nn.data import INPUT_SCALE
from model.errors import SparseFlowError
from model.hw.reference import as_int_array, layer as ref_layer, matvec


@dataclass
class QuantLayer:
    """One engine pass: ``reference.layer(weight, x, arith)``."""

    weight: np.ndarray              # int64 (out, in), signed arith.weight_bits
    arith: Arith                    # widths, max_cols = in, requant = Requant(shift, relu)
    w_scale: float                  # real weight = w_scale * weight
    in_scale: float                 # real value of one input LSB
    codebook: np.ndarray | None = None  # shared weights (entry 0 = 0), or None
    indices: np.ndarray | None = None   # (out, in) codebook indices: weight == codebook[indices]

    @property
    def shift(self) -> int:
        return self.arith.requant.shift

    @property
    def relu(self) -> bool:
        return self.arith.requant.relu

    @property
    def out_scale(self) -> float:
        return self.w_scale * self.in_scale * 2.0 ** self.shift

    def forward(self, x: np.ndarray) -> np.ndarray:
        return ref_layer(self.weight, x, self.arith)


class QuantizedNet:
    """A chain of :class:`QuantLayer`; inputs are raw pixel columns ``(in_features, batch)``."""

    def __init__(self, layers: list[QuantLayer]):
        if not layers:
            raise SparseFlowError("a quantized network needs at least one layer")
        self.layers = layers

    @property
    def weight_bits(self) -> int:
        return self.layers[0].arith.weight_bits

    @property
    def act_bits(self) -> int:
        return self.layers[0].arith.act_bits

    @property
    def shifts(self) -> list[int]:
        return [l.shift for l in self.layers]

    def activations(self, x_int) -> list[np.ndarray]:
        """Every layer's output, the input first: ``[x, y1, ..., logits]`` (int64)."""
        x = as_int_array(x_int, "input", self.act_bits)
        outs = [x]
        for l in self.layers:
            outs.append(l.forward(outs[-1]))
        return outs

    def forward_int(self, x_int) -> np.ndarray:
        """Integer logits ``(classes, batch)`` (or ``(classes,)`` for a 1-D input)."""
        return self.activations(x_int)[-1]

    def logits_float(self, x_int) -> np.ndarray:
        """The integer logits read back as reals (comparable to the float model's logits)."""
        return self.forward_int(x_int) * self.layers[-1].out_scale

    def predict(self, x_int) -> np.ndarray:
        return np.argmax(self.forward_int(x_int), axis=0)

    def accuracy(self, x_int, y) -> float:
        return float(np.mean(self.predict(x_int) == np.asarray(y)))

    def describe(self) -> list[dict]:
        """Per-layer summary for reports (JSON-ready)."""
        return [{"shape": list(l.weight.shape), "shift": l.shift, "relu": l.relu,
                 "weight_bits": l.arith.weight_bits, "act_bits": l.arith.act_bits,
                 "acc_bits": l.arith.acc_bits, "max_cols": l.arith.max_cols,
                 "w_scale": l.w_scale, "in_scale": l.in_scale,
                 "nonzeros": int(np.count_nonzero(l.weight)),
                 "codebook": None if l.codebook is None else l.codebook.tolist()} for l in self.layers]

    def save(self, out_dir, prefix: str = "layer") -> list[str]:
        """Write ``<prefix><i>.npy`` (int weights, (out, in)) and ``<prefix>s.json``; returns the file names."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        names = []
        for i, l in enumerate(self.layers):
            np.save(out / f"{prefix}{i}.npy", l.weight.astype(np.int32))
            names.append(f"{prefix}{i}.npy")
            if l.codebook is not None:
                np.save(out / f"{prefix}{i}_indices.npy", l.indices.astype(np.int32))
                np.save(out / f"{prefix}{i}_codebook.npy", l.codebook.astype(np.int32))
                names += [f"{prefix}{i}_indices.npy", f"{prefix}{i}_codebook.npy"]
        (out / f"{prefix}s.json").write_text(json.dumps(
            {"layers": self.describe(), "files": names}, indent=2) + "\n")
        return names + [f"{prefix}s.json"]

    @classmethod
    def load(cls, out_dir, prefix: str = "layer") -> "QuantizedNet":
        """Read back what :meth:`save` wrote."""
        out = Path(out_dir)
        try:
            meta = json.loads((out / f"{prefix}s.json").read_text())
        except (OSError, ValueError) as exc:
            raise SparseFlowError(f"cannot read {out / (prefix + 's.json')}: {exc}") from None
        layers = []
        for i, d in enumerate(meta["layers"]):
            arith = Arith(d["weight_bits"], d["act_bits"], max_cols=d["max_cols"],
                          requant=Requant(d["shift"], d["relu"]))
            w = as_int_array(np.load(out / f"{prefix}{i}.npy"), f"{prefix}{i}", arith.weight_bits, ndim=(2,))
            cb = idx = None
            if d.get("codebook") is not None:
                cb = np.asarray(d["codebook"], dtype=np.int64)
                idx = np.load(out / f"{prefix}{i}_indices.npy").astype(np.int64)
            layers.append(QuantLayer(w, arith, d["w_scale"], d["in_scale"], cb, idx))
        return cls(layers)


def _float_layers(model) -> list[np.ndarray]:
    from model.nn.nets import MLP
    if not isinstance(model, MLP):
        raise SparseFlowError("integer inference covers model.nn.nets.MLP (Linear/ReLU chains without bias)")
    return [l.weight.detach().double().numpy() for l in model.linears]


def quantize_weights(w: np.ndarray, weight_bits: int) -> tuple[np.ndarray, float]:
    """Symmetric per-layer quantization: (int64 weights, scale)."""
    qmax = (1 << (weight_bits - 1)) - 1
    peak = float(np.abs(w).max(initial=0.0))
    scale = peak / qmax if peak > 0 else 1.0
    return np.clip(np.round(w / scale), -qmax, qmax).astype(np.int64), scale


def choose_shift(acc: np.ndarray, relu: bool, act_bits: int, percentile: float = 100.0) -> int:
    """Smallest shift that brings the ``percentile`` of the (ReLU'd / absolute) accumulator into range."""
    vals = np.maximum(acc, 0) if relu else np.abs(acc)
    peak = int(np.ceil(np.percentile(vals, percentile))) if vals.size else 0
    hi = (1 << (act_bits - 1)) - 1
    for shift in range(32):
        rounded = (peak + (1 << (shift - 1))) >> shift if shift else peak
        if rounded <= hi:
            return shift
    raise SparseFlowError(f"accumulator peak {peak} cannot be shifted into {act_bits} bits")


def calibrate(weights: list[np.ndarray], w_scales: list[float], x_calib, *, weight_bits: int = 8,
              act_bits: int = 16, percentile: float = 100.0, codebooks=None, indices=None) -> QuantizedNet:
    """Integer weights + calibration pixels ``(n, in)`` -> :class:`QuantizedNet` (shifts chosen)."""
    if not 0.0 < percentile <= 100.0:
        raise SparseFlowError(f"calibration percentile must be in (0, 100], not {percentile}")
    x = as_int_array(np.asarray(x_calib).T, "calibration input", act_bits, ndim=(2,))
    in_scale = INPUT_SCALE
    layers = []
    for i, (w, ws) in enumerate(zip(weights, w_scales)):
        relu = i < len(weights) - 1
        probe = Arith(weight_bits, act_bits, max_cols=w.shape[1])
        shift = choose_shift(matvec(w, x, probe), relu, act_bits, percentile)
        arith = Arith(weight_bits, act_bits, max_cols=w.shape[1], requant=Requant(shift, relu))
        ql = QuantLayer(w, arith, ws, in_scale,
                        None if codebooks is None else codebooks[i], None if indices is None else indices[i])
        x = ql.forward(x)
        in_scale = ql.out_scale
        layers.append(ql)
    return QuantizedNet(layers)


def quantize(model, x_calib, *, weight_bits: int = 8, act_bits: int = 16, percentile: float = 100.0) -> QuantizedNet:
    """Quantize a trained (pruned) :class:`model.nn.nets.MLP`; ``x_calib`` = raw training pixels ``(n, 64)``."""
    ws = [quantize_weights(w, weight_bits) for w in _float_layers(model)]
    return calibrate([w for w, _ in ws], [s for _, s in ws], x_calib, weight_bits=weight_bits,
                     act_bits=act_bits, percentile=percentile)


def kmeans_codebook(w: np.ndarray, weight_bits: int, bits: int = 4, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(codebook of ``2**bits`` ints with entry 0 = 0, index matrix) for the int matrix ``w``."""
    w = np.asarray(w, dtype=np.int64)
    k = (1 << bits) - 1
    nz = w[w != 0].astype(np.float64)
    uniq = np.unique(nz)
    if len(uniq) <= k:
        cents = uniq  # few distinct weights: the codebook is exact
    else:
        # Linear initialisation over [min, max] (Han et al.: keeps the rare large weights).
        cents = np.linspace(nz.min(), nz.max(), k)
        for _ in range(iters):
            edges = (cents[1:] + cents[:-1]) / 2
            lab = np.searchsorted(edges, nz)
            sums = np.bincount(lab, weights=nz, minlength=k)
            cnts = np.bincount(lab, minlength=k)
            new = np.where(cnts > 0, sums / np.maximum(cnts, 1), cents)
            if np.allclose(new, cents):
                break
            cents = np.sort(new)
    qmax = (1 << (weight_bits - 1)) - 1
    ints = np.clip(np.round(cents), -qmax, qmax).astype(np.int64)
    ints[ints == 0] = np.where(cents[ints == 0] < 0, -1, 1)  # a kept weight never becomes 0
    ints = np.unique(ints)
    codebook = np.zeros(1 << bits, dtype=np.int64)
    codebook[1:1 + len(ints)] = ints
    idx = np.zeros(w.shape, dtype=np.int64)
    if len(ints):
        nearest = np.argmin(np.abs(w[w != 0][:, None] - ints[None, :]), axis=1)
        idx[w != 0] = nearest + 1
    return codebook, idx


def share_weights(qnet: QuantizedNet, x_calib, *, bits: int = 4, percentile: float = 100.0) -> QuantizedNet:
    """EIE weight sharing of every layer of ``qnet`` (see module docstring); shifts recalibrated."""
    if not 1 <= bits <= 8:
        raise SparseFlowError(f"codebook bits must be in 1..8, not {bits}")
    cbs, idxs, ws = [], [], []
    for l in qnet.layers:
        cb, idx = kmeans_codebook(l.weight, l.arith.weight_bits, bits)
        cbs.append(cb)
        idxs.append(idx)
        ws.append(cb[idx])
    return calibrate(ws, [l.w_scale for l in qnet.layers], x_calib, weight_bits=qnet.weight_bits,
                     act_bits=qnet.act_bits, percentile=percentile, codebooks=cbs, indices=idxs)
