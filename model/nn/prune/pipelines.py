"""Pruning pipelines: when to prune, and what the kept weights restart from.

* ``oneshot``: train dense, score, prune to the target once, fine-tune with the mask.
* ``iterative`` (traditional IMP): train dense; ``rounds`` times: prune a little more
  (sparsity ``1 - (1 - S)**(r / rounds)``, monotone), **re-initialise** the kept weights
  randomly (a fresh seed), retrain with the mask. With ``reinit=False`` the kept weights keep
  their trained values and training continues from them (Han et al.'s prune-retrain loop,
  what ``sparseflow compile`` does to an already trained network).
* ``lth`` (lottery ticket): as ``iterative`` but the kept weights are **rewound** to their
  original initial values (``rewind_step = 0``) or to their values after ``rewind_step``
  optimizer steps of the dense run (late rewinding).
* ``dst`` (dynamic sparse training): no dense phase. Start from a random mask at sparsity S
  (the same in every layer) and train sparse; every ``dst_interval`` steps until
  ``dst_end`` of training, each layer drops the ``f * nnz`` kept weights of smallest ``|w|``
  and regrows as many among the weights that were not kept (the just-dropped excluded):
  uniformly at random (SET) or those with the largest dense gradient ``|dL/dw|`` (RigL).
  Regrown weights start at 0. ``f`` decays as ``dst_fraction/2 * (1 + cos(pi t / T_end))``.
  The mask changes, its size never does. DST is unstructured and drops by magnitude.

All pipelines keep pruned weights at exactly 0 (``model.nn.train`` enforces the mask) and score
only on training data; :func:`run` reports accuracy on the held-out test set.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, asdict

import torch
from torch import nn

from model.nn.data import Digits, load_digits
from model.errors import SparseFlowError
from model.nn.nets import DEFAULT_HIDDEN, build_mlp, init_weights, prunable_layers
from model.nn.train import accuracy, apply_masks, steps_for, train
from model.nn.prune import REGROW, TAYLOR_MODES, check_pruning
from model.nn.prune.criteria import scores
from model.nn.prune.granularity import make_masks, sparsity_of


@dataclass
class PruneConfig:
    """Every knob of a pruning run (the CLI maps its options onto these)."""

    method: str = "magnitude"
    granularity: str = "unstructured"
    sparsity: float = 0.8
    schedule: str = "oneshot"
    scope: str = "layer"
    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    seed: int = 0
    epochs: int = 30              # dense training (and the sparse run of dst, plus finetune_epochs)
    finetune_epochs: int = 15     # one-shot fine-tuning
    retrain_epochs: int | None = None  # per round of iterative/lth; None: same as epochs
    rounds: int = 4               # iterative/lth pruning rounds
    rewind_step: int = 0          # lth: 0 = original init, k = weights after k dense steps
    dst_regrow: str = "random"    # random = SET, gradient = RigL
    dst_interval: int = 25        # optimizer steps between mask updates
    dst_fraction: float = 0.3     # initial drop/regrow fraction of the kept weights
    dst_end: float = 0.75         # stop updating the mask after this fraction of training
    lr: float = 3e-3              # dense training and dst
    finetune_lr: float = 1e-2     # masked (re)training of oneshot/iterative/lth (see docs/pruning.md)
    taylor: str = "example"       # Taylor form: per-example squared, row-normalised; "batch": the old form
    taylor_batches: int = 8       # "batch" form: mini-batches of 64
    taylor_micro: int = 8         # "example" form: examples per gradient (1 = per example)
    keep_rows: bool = True        # no unstructured/block layer loses all weights of an output unit
    progress: bool = True
    layer_sparsity: dict | None = None  # layer name -> sparsity overriding ``sparsity`` (layer scope)
    pad_24: bool = False          # 2:4 on rows that are not a multiple of 4 long: zero-padded (mask_24)
    reinit: bool = True           # iterative: re-initialise the kept weights each round (IMP); False:
                                  # keep training them from their current values (Han et al., Deep Compression)

    def check(self) -> None:
        check_pruning(self.method, self.schedule, self.granularity, self.sparsity, self.scope)
        if self.taylor not in TAYLOR_MODES:
            raise SparseFlowError(f"unknown Taylor form {self.taylor!r} (choose from {', '.join(TAYLOR_MODES)})")
        if self.taylor_micro < 1:
            raise SparseFlowError(f"Taylor micro-batch must be >= 1 example, not {self.taylor_micro}")
        if self.dst_regrow not in REGROW:
            raise SparseFlowError(f"unknown DST regrowth {self.dst_regrow!r} (choose from {', '.join(REGROW)})")
        for name in ("epochs", "finetune_epochs", "rewind_step"):
            if getattr(self, name) < 0:
                raise SparseFlowError(f"{name.replace('_', ' ')} must be >= 0, not {getattr(self, name)}")
        if self.rounds < 1:
            raise SparseFlowError(f"rounds must be >= 1, not {self.rounds}")
        if self.dst_interval < 1:
            raise SparseFlowError(f"DST interval must be >= 1 step, not {self.dst_interval}")
        if not 0.0 < self.dst_fraction <= 1.0 or not 0.0 < self.dst_end <= 1.0:
            raise SparseFlowError("DST fraction and end must be in (0, 1]")
        if self.schedule == "dst":
            if self.granularity != "unstructured":
                raise SparseFlowError(f"dst is unstructured only, not {self.granularity}")
            if self.method != "magnitude":
                raise SparseFlowError(f"dst drops by magnitude; --method {self.method} does not apply")
            if self.scope != "layer":
                raise SparseFlowError("dst keeps the same sparsity in every layer; use --scope layer")

    @property
    def retrain(self) -> int:
        return self.epochs if self.retrain_epochs is None else self.retrain_epochs


@dataclass
class PruneResult:
    model: nn.Module                     # pruned, fine-tuned (masks applied)
    masks: dict[str, torch.Tensor]
    dense: nn.Module | None              # the trained dense model (None for dst)
    init_state: dict                     # the initial weights (state_dict) of the run
    dense_acc: float | None              # held-out accuracy of ``dense``
    pruned_acc: float                    # held-out accuracy of ``model``
    sparsity: dict[str, float]
    history: list[dict] = field(default_factory=list)


def _state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_dense(cfg: PruneConfig, data: Digits, build=None) -> tuple[nn.Module, dict, dict | None]:
    """(trained model, initial state, state after ``rewind_step`` steps or None).

    ``build(seed) -> nn.Module``: the network to train (default: the digits MLP of ``cfg.hidden``).
    ``data``: anything with ``float_train()`` / ``float_test()`` returning ``(x, y)`` tensors.
    """
    x, y = data.float_train()
    model = build_mlp(cfg.hidden, seed=cfg.seed) if build is None else build(cfg.seed)
    init = _state(model)
    at_k: dict = {}

    def on_step(step, m):
        if step == cfg.rewind_step:
            at_k.update(_state(m))
    train(model, x, y, epochs=cfg.epochs, lr=cfg.lr, seed=cfg.seed, progress=cfg.progress, tag="dense",
          on_step=on_step if cfg.rewind_step else None)
    if cfg.rewind_step and not at_k:
        raise SparseFlowError(
            f"rewind step {cfg.rewind_step} is beyond the dense run's {steps_for(len(y), cfg.epochs)} steps")
    return model, init, (at_k or None)


def _round_sparsity(cfg: PruneConfig, r: int, target: float | None = None) -> float:
    if cfg.granularity == "2:4":
        return 0.5  # no intermediate 2:4 level: every round is 2:4
    return 1.0 - (1.0 - (cfg.sparsity if target is None else target)) ** (r / cfg.rounds)


def _mask_kw(cfg: PruneConfig, r: int | None = None) -> dict:
    """The per-layer targets (round ``r`` of ``rounds``, or the final ones) and 2:4 padding for make_masks."""
    kw = {"pad24": cfg.pad_24, "keep_rows": cfg.keep_rows}
    if cfg.layer_sparsity:
        kw["layer_sparsity"] = {n: (s if r is None else _round_sparsity(cfg, r, s))
                                for n, s in cfg.layer_sparsity.items()}
    return kw


def _scores(cfg: PruneConfig, model: nn.Module, x, y, seed: int) -> dict:
    # Channel pruning compares whole rows: no per-row normalisation of the Taylor scores there.
    return scores(cfg.method, model, x, y, seed=seed, n_batches=cfg.taylor_batches, taylor=cfg.taylor,
                  micro_batch=cfg.taylor_micro, normalize=cfg.granularity != "channel")


def rewind(model: nn.Module, state: dict, masks: dict) -> None:
    """Set the kept weights to their values in ``state`` (the pruned ones to 0)."""
    layers = prunable_layers(model)
    with torch.no_grad():
        for name, m in layers.items():
            m.weight.copy_(state[f"{name}.weight"])
    apply_masks(model, masks)


def oneshot(cfg: PruneConfig, data: Digits, dense: nn.Module) -> tuple[nn.Module, dict, list]:
    x, y = data.float_train()
    model = copy.deepcopy(dense)
    sc = _scores(cfg, model, x, y, cfg.seed)
    masks = make_masks(sc, cfg.granularity, cfg.sparsity, scope=cfg.scope, **_mask_kw(cfg))
    apply_masks(model, masks)
    hist = [{"stage": "pruned", "test_acc": accuracy(model, *data.float_test())}]
    train(model, x, y, epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, seed=cfg.seed + 1, masks=masks,
          progress=cfg.progress, tag="fine-tune")
    return model, masks, hist


def iterative(cfg: PruneConfig, data: Digits, dense: nn.Module, reset: dict | None) -> tuple[nn.Module, dict, list]:
    """IMP; ``reset`` is the state to rewind to (lth) or None to re-initialise (iterative)."""
    x, y = data.float_train()
    model = copy.deepcopy(dense)
    masks = None
    hist = []
    for r in range(1, cfg.rounds + 1):
        s = _round_sparsity(cfg, r)
        sc = _scores(cfg, model, x, y, cfg.seed + r)
        masks = make_masks(sc, cfg.granularity, s, scope=cfg.scope, prev=masks, **_mask_kw(cfg, r))
        if reset is None:
            if cfg.reinit:
                init_weights(model, seed=cfg.seed + 1000 * r)  # fresh random values for the kept weights
            apply_masks(model, masks)
        else:
            rewind(model, reset, masks)
        train(model, x, y, epochs=cfg.retrain, lr=cfg.finetune_lr, seed=cfg.seed + r, masks=masks,
              progress=cfg.progress, tag=f"{cfg.schedule} round {r}/{cfg.rounds} (sparsity {s:.3f})")
        hist.append({"stage": f"round {r}", "sparsity": s, "test_acc": accuracy(model, *data.float_test())})
    return model, masks, hist


def cosine_fraction(cfg: PruneConfig, step: int, end_step: int) -> float:
    return cfg.dst_fraction / 2 * (1 + math.cos(math.pi * step / end_step))


def dst_update(model: nn.Module, masks: dict, frac: float, regrow: str, gen: torch.Generator) -> int:
    """One drop-and-regrow update of every layer's mask (in place); returns weights moved."""
    moved = 0
    layers = prunable_layers(model)
    for name, mask in masks.items():
        w = layers[name].weight
        flat_m = mask.view(-1)
        active = flat_m.nonzero().squeeze(1)
        inactive = (flat_m == 0).nonzero().squeeze(1)
        k = min(int(frac * len(active)), len(inactive))
        if k == 0:
            continue
        drop = active[torch.argsort(w.detach().view(-1)[active].abs(), stable=True)[:k]]
        if regrow == "random":
            grow = inactive[torch.randperm(len(inactive), generator=gen)[:k]]
        else:
            g = w.grad.detach().view(-1)[inactive].abs()
            grow = inactive[torch.argsort(g, descending=True, stable=True)[:k]]
        flat_m[drop] = 0.0
        flat_m[grow] = 1.0
        with torch.no_grad():
            w.view(-1)[grow] = 0.0  # regrown connections start from zero
            w.view(-1)[drop] = 0.0
        moved += k
    return moved


def dynamic_sparse(cfg: PruneConfig, data: Digits, build=None) -> tuple[nn.Module, dict, dict, list]:
    x, y = data.float_train()
    model = build_mlp(cfg.hidden, seed=cfg.seed) if build is None else build(cfg.seed)
    init = _state(model)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    masks = make_masks({n: torch.rand(m.weight.shape, generator=gen) for n, m in prunable_layers(model).items()},
                       "unstructured", cfg.sparsity, scope="layer", **_mask_kw(cfg))
    epochs = cfg.epochs + cfg.finetune_epochs  # the budget a one-shot run spends
    end = max(1, int(cfg.dst_end * steps_for(len(y), epochs)))
    hist = []

    def on_grad(step, m):
        if step and step % cfg.dst_interval == 0 and step < end:
            frac = cosine_fraction(cfg, step, end)
            moved = dst_update(m, masks, frac, cfg.dst_regrow, gen)
            hist.append({"stage": f"dst step {step}", "fraction": frac, "moved": moved,
                         "kept": int(sum(float(v.sum()) for v in masks.values()))})
    train(model, x, y, epochs=epochs, lr=cfg.lr, seed=cfg.seed, masks=masks, on_grad=on_grad,
          progress=cfg.progress, tag=f"dst ({'SET' if cfg.dst_regrow == 'random' else 'RigL'})")
    return model, masks, init, hist


def run(cfg: PruneConfig, data: Digits | None = None, dense: nn.Module | None = None,
        init_state: dict | None = None, rewind_state: dict | None = None, build=None) -> PruneResult:
    """Run the pipeline ``cfg.schedule``; ``dense`` (+ its ``init_state``) skips dense training.

    Any network with Linear/Conv2d layers: ``build(seed) -> nn.Module`` makes a fresh one (dense
    training, dst), ``data`` has ``float_train()``/``float_test()`` (see :func:`train_dense`).
    A Conv2d layer is pruned as its ``(out, in*kh*kw)`` matrix (``channel`` = output channels).
    """
    cfg.check()
    data = data or load_digits()
    xt, yt = data.float_test()
    if cfg.schedule == "dst":
        model, masks, init, hist = dynamic_sparse(cfg, data, build)
        return PruneResult(model, masks, None, init, None, accuracy(model, xt, yt), sparsity_of(masks), hist)
    if dense is None:
        dense, init_state, rewind_state = train_dense(cfg, data, build)
    if cfg.schedule == "oneshot":
        model, masks, hist = oneshot(cfg, data, dense)
    elif cfg.schedule == "iterative":
        model, masks, hist = iterative(cfg, data, dense, None)
    else:
        reset = rewind_state if cfg.rewind_step else init_state
        if reset is None:
            raise SparseFlowError("lottery-ticket rewinding needs the initial weights of the dense run")
        model, masks, hist = iterative(cfg, data, dense, reset)
    return PruneResult(model, masks, dense, init_state, accuracy(dense, xt, yt), accuracy(model, xt, yt),
                       sparsity_of(masks), hist)


def config_dict(cfg: PruneConfig) -> dict:
    d = asdict(cfg)
    d["hidden"] = list(cfg.hidden)
    d.pop("progress")
    for k in ("layer_sparsity", "pad_24"):  # only when used (keeps the digits reports as they were)
        if not d[k]:
            d.pop(k)
    if cfg.method != "taylor":
        for k in ("taylor", "taylor_micro"):
            d.pop(k)
    if d["reinit"]:
        d.pop("reinit")
    return d
