"""The configuration an engine is elaborated from: one Verilog for every layer of a network."""
from dataclasses import replace

from model.hw.config import EIEConfig, LaneConfig, Requant
from model.errors import SparseFlowError


def build_config(cfg):
    """``cfg`` (an :class:`EIEConfig` or a :class:`LaneConfig`) with its ``Requant`` values
    normalised (shift 0, ReLU on).

    ``shift``/``relu`` are registers loaded through the engine's ``load`` port; only their
    reset values come from the configuration. Configurations that differ only in shift/ReLU
    give the same ``build_config``, hence the same Verilog and one compiled simulation.
    """
    if not isinstance(cfg, (EIEConfig, LaneConfig)):
        raise SparseFlowError(f"expected an EIEConfig or a LaneConfig, not {cfg!r}")
    if cfg.arith.requant is None or cfg.arith.requant == Requant():
        return cfg
    return replace(cfg, arith=replace(cfg.arith, requant=Requant()))
