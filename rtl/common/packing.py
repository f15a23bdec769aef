"""Host-side packing of stream payloads, driven by the payload's :class:`amaranth.lib.data.Layout`.

The field offsets and widths come from the layout itself (the one the RTL port uses), so the
host never repeats them. :func:`pack` is ``layout.const({...}).as_bits()`` for whole arrays at
once (load programs of big layers and the native simulator's input words have hundreds of
thousands of words); ``tests/test_packing.py`` holds the two to the same bits.
"""
from __future__ import annotations

from enum import Enum

import numpy as np
from amaranth.lib import data

from model.errors import SparseFlowError


def _ints(value, dtype) -> np.ndarray:
    if isinstance(value, Enum):
        value = value.value
    return np.asarray(value, dtype=np.int64).astype(dtype, copy=False)


def pack(layout, **fields) -> np.ndarray:
    """Payload words of ``layout`` (a struct layout): each field's value is a scalar or an
    array (all broadcast together), truncated to the field's width (a negative value becomes
    its two's complement); missing fields are 0. Returns an int64 array, or an array of Python
    ints (dtype object) when the layout is wider than 63 bits."""
    layout = data.Layout.cast(layout)
    names = {name for name, _ in layout}
    unknown = set(fields) - names
    if unknown:
        raise SparseFlowError(f"no field {sorted(unknown)[0]!r} in the payload layout")
    dtype = np.int64 if layout.size <= 63 else object
    values = {name: _ints(v, dtype) for name, v in fields.items()}
    out = np.zeros(np.broadcast_shapes(*(v.shape for v in values.values())), dtype=np.int64).astype(dtype)
    for name, fld in layout:
        if name in values:
            out |= (values[name] & ((1 << fld.width) - 1)) << fld.offset
    return out
