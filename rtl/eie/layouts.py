"""Stream payload layouts of the EIE array, all derived from one :class:`EIEConfig`."""
from amaranth import signed, unsigned
from amaranth.lib import data, enum

from model.hw.config import EIEConfig, clog2
from rtl.common.protocol import sample_layout


class LoadKind(enum.Enum, shape=3):
    """``kind`` of a ``load`` word (see :class:`rtl.eie.array.EIEArray`). ``BIAS`` exists only
    with ``arith.bias_bits``."""
    ENTRY = 0
    PTR = 1
    REG = 2
    CODEBOOK = 3
    COLMASK = 4
    BIAS = 5


def col_bits(cfg: EIEConfig) -> int:
    """A column index 0..max_cols (max_cols itself marks "past the end")."""
    return clog2(cfg.max_cols + 1)


def elem_layout(cfg: EIEConfig) -> data.StructLayout:
    """``x``: one input word in column order: one element (``frontend_width`` 1), else
    ``frontend_width`` elements (element ``i`` of word ``w`` is column ``w * K + i``)."""
    return sample_layout(cfg.arith.act_bits, cfg.frontend_width)


def result_layout(cfg: EIEConfig) -> data.StructLayout:
    """``y``: one result in row order."""
    return sample_layout(cfg.arith.out_bits)


def nz_layout(cfg: EIEConfig) -> data.StructLayout:
    """A broadcast non-zero activation: its column and value."""
    return data.StructLayout({"col": unsigned(col_bits(cfg)), "data": signed(cfg.arith.act_bits)})


def load_field_bits(cfg: EIEConfig) -> tuple[int, int, int]:
    """(pe, addr, data) widths of a ``load`` word (a bias word: row in ``addr``, bias in ``data``)."""
    pe = clog2(cfg.n_pes)
    bias = cfg.arith.bias_bits is not None
    addr = max(clog2(cfg.max_entries), clog2(cfg.max_cols + 1), cfg.codebook_bits if cfg.codebook else 0, 2,
               clog2(cfg.max_rows) if bias else 0)
    dat = max(cfg.entry_bits, cfg.ptr_bits, clog2(cfg.max_rows + 1), clog2(cfg.max_cols + 1),
              cfg.arith.weight_bits, 5, cfg.arith.bias_bits if bias else 0)
    return pe, addr, dat


def load_layout(cfg: EIEConfig) -> data.StructLayout:
    """``load``: one write: ``kind`` (:class:`LoadKind`), target ``pe``, ``addr`` and ``data``."""
    pe, addr, dat = load_field_bits(cfg)
    return data.StructLayout({"kind": LoadKind, "pe": unsigned(pe), "addr": unsigned(addr),
                              "data": unsigned(dat)})
