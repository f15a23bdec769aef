"""Lowering a convolution to matrix x vector products (what an engine computes).

A :class:`~model.nn.graph.ir.Conv2d` with weight ``(out, C, kh, kw)`` is the matrix
``W = weight.reshape(out, C*kh*kw)`` (:func:`conv_matrix`); :func:`im2col` cuts the zero-padded
input into one column of ``C*kh*kw`` values per output position, in the same (channel, row,
column) order, so that output position ``p`` is ``W @ patches[:, p] (+ bias)``: one engine pass
per position, the weights loaded once. Pooling, flattening and reshaping stay on the host
between layers (:func:`pool2d`).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from model.nn.graph.ir import AvgPool2d, Conv2d, MaxPool2d


def conv_matrix(conv: Conv2d) -> np.ndarray:
    """``(out, in*kh*kw)``: row ``o`` is filter ``o`` flattened channel-major."""
    return conv.matrix()


def _windows(x: np.ndarray, kernel, stride, pads, fill: float) -> np.ndarray:
    """``(N, C, OH, OW, kh, kw)`` view of the padded input's windows."""
    t, l, b, r = pads
    if any(pads):
        x = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)
    win = sliding_window_view(x, tuple(kernel), axis=(2, 3))
    return win[:, :, ::stride[0], ::stride[1]]


def im2col(x: np.ndarray, kernel, stride=(1, 1), padding=(0, 0, 0, 0)) -> np.ndarray:
    """``x`` ``(N, C, H, W)`` -> patches ``(N, C*kh*kw, OH*OW)`` (zero padding).

    Column ``p = oh*OW + ow`` holds the window of output position ``(oh, ow)``; multiply by
    :func:`conv_matrix` to get ``(N, out, OH*OW)``.
    """
    win = _windows(np.asarray(x), kernel, stride, padding, 0.0)
    n, c, oh, ow, kh, kw = win.shape
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)


def conv2d(conv: Conv2d, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The convolution as matrix x patches: ``(N, C, H, W)`` -> ``(N, out, OH, OW)``."""
    x = np.asarray(x, dtype=dtype)
    n, _, h, w = x.shape
    _, oh, ow = conv.out_shape(x.shape[1:])
    cols = im2col(x, conv.kernel, conv.stride, conv.padding)
    y = np.einsum("ok,nkp->nop", conv_matrix(conv).astype(dtype), cols, optimize=True)
    if conv.bias is not None:
        y = y + conv.bias.astype(dtype)[None, :, None]
    return y.reshape(n, conv.out_channels, oh, ow)


def pool2d(node, x: np.ndarray) -> np.ndarray:
    """Max or average pooling (host side) of ``(N, C, H, W)``."""
    x = np.asarray(x)
    if isinstance(node, AvgPool2d) and node.is_global:
        return x.mean(axis=(2, 3), keepdims=True)
    if isinstance(node, MaxPool2d):
        return _windows(x, node.kernel, node.stride, node.padding, -np.inf).max(axis=(4, 5))
    s = _windows(x, node.kernel, node.stride, node.padding, 0.0).sum(axis=(4, 5))
    if node.count_include_pad or not any(node.padding):
        return s / (node.kernel[0] * node.kernel[1])
    ones = np.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
    cnt = _windows(ones, node.kernel, node.stride, node.padding, 0.0).sum(axis=(4, 5))
    return s / cnt
