"""Memory cost of the EIE format per real non-zero weight (the efficiency benchmark's table)."""
from __future__ import annotations

import numpy as np

from model.hw.config import EIEConfig
from model.hw.formats.eie import EIEMatrix


def eie_bits_per_nonzero(m: EIEMatrix, cfg: EIEConfig, nonzeros: int) -> float:
    """Bits of entry memory (every entry, padding included, ``cfg.entry_bits`` each) plus
    column pointers (``cols + 1`` per PE, ``cfg.ptr_bits`` each) per real non-zero weight
    (``nonzeros``), for ``m`` as encoded for ``cfg``."""
    entries = int(np.asarray(m.entries_per_pe).sum())
    pointers = cfg.n_pes * (m.shape[1] + 1)
    return (entries * cfg.entry_bits + pointers * cfg.ptr_bits) / max(1, nonzeros)
