"""The engines SparseFlow builds, one registry entry each: the one place that says what an engine is.

Every command, test and report takes the engine names, their order and their properties from
here (CLI ``--engine`` choices, cost tables, board self-test cases, compiled folders). The
layers above attach their own parts keyed by the same names: ``rtl.board.cases`` the RTL
class of each engine, ``verif.netrun`` how a layer runs on it.

=========  ======================  ================  ==========================================
engine     weight image format     configuration     cycle model (``model.hw.costmodel``)
=========  ======================  ================  ==========================================
``eie``    ``eie`` (interleaved    ``EIEConfig``     exact: ``model.hw.cyclemodel.predict_cycles``
           CSC, ``model.hw.images``)
``2:4``    ``2:4`` (values+meta)   ``Sparse24Config``  ``lane_cycles``, 4 inputs per lane cycle
``dense``  none: plain row-major   ``DenseConfig``     ``lane_cycles``, 2 inputs per lane cycle
           ``weights.hex``
``bsr``    ``bsr`` (block CSR,     ``BSRConfig``       exact: ``model.hw.bsrcycles`` (one word of
           2x2 or 4x4 blocks)                          non-zero block slices per cycle)
=========  ======================  ================  ==========================================
"""
from __future__ import annotations

from dataclasses import dataclass

from model.hw.config import BSRConfig, DenseConfig, EIEConfig, LaneConfig, Sparse24Config
from model.errors import SparseFlowError


@dataclass(frozen=True)
class Engine:
    """One engine kind.

    ``image_format``: its weights' memory-image format in ``model.hw.formats`` (``None``: the
    dense engine's plain row-major matrix). ``config_type``: the configuration its builds take.
    ``size_option``: the option that sizes a build (``pes`` or ``lanes``, as in the CLI and
    ``CompileOptions``). ``per_cycle``: inputs one lane consumes per cycle (``None``: the EIE array,
    whose cycles depend on the data, see ``model.hw.cyclemodel``). ``col_group``: the column
    count must be a multiple of it (lane engines group four inputs; a layer is padded).
    ``needs_24``: runs 2:4-sparse weights only. ``options``: build options beyond the size
    (the BSR engine's ``block``).
    """

    name: str
    image_format: str | None
    config_type: type
    size_option: str
    per_cycle: int | None
    col_group: int
    needs_24: bool
    options: tuple[str, ...] = ()

    def multipliers(self, size: int) -> int:
        """Multipliers of a build of ``size`` PEs or lanes (a lane has two; the BSR engine has
        as many as the lane engines for the same ``lanes``)."""
        return size if self.size_option == "pes" else 2 * size

    @property
    def lanes(self) -> bool:
        """A lane engine (2:4 or dense: ``rtl.common.lanes``, a ``LaneConfig``)."""
        return issubclass(self.config_type, LaneConfig)


EIE = Engine("eie", "eie", EIEConfig, "pes", None, 1, False)
SPARSE24 = Engine("2:4", "2:4", Sparse24Config, "lanes", 4, 4, True)
DENSE = Engine("dense", None, DenseConfig, "lanes", 2, 4, False)
BSR = Engine("bsr", "bsr", BSRConfig, "lanes", None, 4, False, ("block",))

ENGINES: dict[str, Engine] = {e.name: e for e in (EIE, SPARSE24, DENSE, BSR)}
NAMES: tuple[str, ...] = tuple(ENGINES)  # ("eie", "2:4", "dense", "bsr"): the order of every table


def per_engine(values: dict, cell, missing: str = "-") -> list[str]:
    """Table cells, one per engine in registry order: ``cell(values[name])``, or ``missing``."""
    return [cell(values[n]) if n in values else missing for n in NAMES]


def get(name: str) -> Engine:
    """The engine called ``name``; an unknown name is a one-line :class:`SparseFlowError`."""
    try:
        return ENGINES[name]
    except (KeyError, TypeError):
        raise SparseFlowError(f"unknown engine {name!r} (choose from {', '.join(NAMES)})") from None
