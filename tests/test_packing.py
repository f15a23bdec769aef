"""rtl.common.packing.pack: the same bits as Amaranth's ``Layout.const(...).as_bits()``."""
import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data

from model.hw.config import Arith, BSRConfig, EIEConfig, Sparse24Config
from model.errors import SparseFlowError
from rtl.bsr.engine import BSRLoad, load_layout as bsr_load_layout
from rtl.common.lanes import LoadTarget, load_layout as lane_load_layout
from rtl.common.packing import pack
from rtl.common.protocol import Reg, sample_layout
from rtl.eie.layouts import LoadKind, load_layout as eie_load_layout

SEED = 18


def _random_fields(layout, rng, n):
    """Per field, ``n`` random values covering its whole range (signed fields negative too)."""
    out = {}
    for name, fld in layout:
        shape = fld.shape
        if isinstance(shape, type) and issubclass(shape, (LoadKind, LoadTarget, Reg, BSRLoad)):
            out[name] = rng.choice([m.value for m in shape], n)
            continue
        s = unsigned(fld.width) if not getattr(shape, "signed", False) else signed(fld.width)
        lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if s.signed else (0, (1 << s.width) - 1)
        out[name] = rng.integers(lo, hi, n, endpoint=True)
    return out


def _const_bits(layout, fields, i):
    vals = {}
    for name, fld in layout:
        v = int(fields[name][i])
        shape = fld.shape
        vals[name] = shape(v) if isinstance(shape, type) and issubclass(shape, (LoadKind, LoadTarget, Reg, BSRLoad)) else v
    return layout.const(vals).as_bits()


LAYOUTS = {
    "eie load": eie_load_layout(EIEConfig(n_pes=8, max_rows=64, max_entries=512, arith=Arith(max_cols=128, bias_bits=20))),
    "eie load, 1 PE": eie_load_layout(EIEConfig(n_pes=1, max_rows=4, max_entries=8, arith=Arith(max_cols=3))),
    "lane load": lane_load_layout(Sparse24Config(lanes=3, max_rows=12, arith=Arith(max_cols=12, bias_bits=28)), 12, 20),
    "lane load, no bias": lane_load_layout(Sparse24Config(lanes=4, arith=Arith(max_cols=32)), 64, 20),
    "bsr load": bsr_load_layout(BSRConfig(lanes=4, block=2, max_rows=64, max_words=512,
                                          arith=Arith(max_cols=128, bias_bits=30))),
    "sample": sample_layout(16),
    "signed fields": data.StructLayout({"a": signed(5), "b": unsigned(7), "c": signed(1), "d": 3}),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_pack_equals_layout_const(name):
    layout = LAYOUTS[name]
    rng = np.random.default_rng(SEED)
    fields = _random_fields(layout, rng, 200)
    words = pack(layout, **fields)
    assert words.dtype == np.int64 and words.shape == (200,)
    for i in range(200):
        assert int(words[i]) == _const_bits(layout, fields, i), f"{name}: word {i} (seed {SEED})"


def test_pack_broadcasts_scalars_and_enum_members():
    layout = LAYOUTS["eie load"]
    words = pack(layout, kind=LoadKind.PTR, pe=3, addr=np.arange(4), data=[7, -1, 0, 5])
    for i, (a, d) in enumerate(zip(range(4), [7, -1, 0, 5])):
        d &= (1 << layout["data"].width) - 1
        assert int(words[i]) == layout.const({"kind": LoadKind.PTR, "pe": 3, "addr": a, "data": d}).as_bits()


def test_pack_wider_than_63_bits_gives_python_ints():
    layout = data.StructLayout({"lo": unsigned(40), "hi": signed(40)})
    words = pack(layout, lo=[1, (1 << 40) - 1], hi=[-1, 3])
    assert words.dtype == object
    assert [int(w) for w in words] == [layout.const({"lo": 1, "hi": -1}).as_bits(),
                                       layout.const({"lo": (1 << 40) - 1, "hi": 3}).as_bits()]


def test_pack_rejects_an_unknown_field():
    with pytest.raises(SparseFlowError, match=r"^no field 'kind' in the payload layout$"):
        pack(sample_layout(8), kind=1)
