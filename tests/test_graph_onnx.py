"""ONNX constructs PyTorch's exporter does not write, built by hand, against onnxruntime.

Tolerance (``verify_onnx``): ``|graph - onnxruntime| <= 1e-5 + 1e-4 * |onnxruntime|`` on seeded
standard-normal inputs.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model.errors import SparseFlowError
from model.nn.graph import load_model
from model.nn.graph.from_onnx import from_onnx, verify_onnx
from model.nn.graph.ir import AvgPool2d, Conv2d, Flatten, Linear, Reshape, Scale

RNG = np.random.default_rng(7)
W = RNG.standard_normal((5, 6)).astype(np.float32)
B = RNG.standard_normal(5).astype(np.float32)
K = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
KB = RNG.standard_normal(4).astype(np.float32)


def _model(nodes, in_shape, inits=(), opset=17):
    vi = [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    g = helper.make_graph(nodes, "g", vi, [out], [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def n(op, ins, outs, name, **kw):
    return helper.make_node(op, ins, outs, name=name, **kw)


CASES = {
    "gemm_alpha_beta_transB0": (_model([n("Gemm", ["x", "Wt", "C"], ["y"], "fc", alpha=0.5, beta=2.0)], ["N", 6],
                                       [("Wt", W.T.copy()), ("C", B.reshape(1, 5))]), [Linear]),
    "gemm_scalar_bias": (_model([n("Gemm", ["x", "W", "C"], ["y"], "fc", transB=1, beta=0.5)], ["N", 6],
                                [("W", W), ("C", np.array(1.5, np.float32))]), [Linear]),
    "matmul_add": (_model([n("MatMul", ["x", "Wt"], ["h"], "mm"), n("Add", ["h", "b"], ["y"], "add")], ["N", 6],
                          [("Wt", W.T.copy()), ("b", B)]), [Linear]),
    "conv_add_bias_relu": (_model([n("Conv", ["x", "K"], ["h"], "conv", pads=[1, 0, 1, 2]),
                                   n("Add", ["h", "b"], ["h2"], "add"), n("Relu", ["h2"], ["y"], "relu")],
                                  ["N", 3, 7, 6], [("K", K), ("b", KB.reshape(1, 4, 1, 1))]), [Conv2d]),
    "conv_same_upper_stride2": (_model([n("Conv", ["x", "K", "kb"], ["y"], "conv", auto_pad="SAME_UPPER",
                                          strides=[2, 2])], ["N", 3, 7, 6], [("K", K), ("kb", KB)]), [Conv2d]),
    "conv_same_lower": (_model([n("Conv", ["x", "K4"], ["y"], "conv", auto_pad="SAME_LOWER")], ["N", 3, 7, 6],
                               [("K4", RNG.standard_normal((2, 3, 2, 2)).astype(np.float32))]), [Conv2d]),
    "avgpool_include_pad": (_model([n("AveragePool", ["x"], ["y"], "ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=[2, 2], count_include_pad=1)], ["N", 3, 7, 6]), [AvgPool2d]),
    "avgpool_exclude_pad": (_model([n("AveragePool", ["x"], ["y"], "ap", kernel_shape=[2, 3], pads=[1, 0, 0, 2])],
                                   ["N", 3, 7, 6]), [AvgPool2d]),
    "maxpool_default_stride_1": (_model([n("MaxPool", ["x"], ["y"], "mp", kernel_shape=[2, 2])], ["N", 3, 7, 6]),
                                 ["MaxPool2d"]),
    "global_avg_flatten_gemm": (_model([n("GlobalAveragePool", ["x"], ["g"], "gap"), n("Flatten", ["g"], ["f"], "fl"),
                                        n("Gemm", ["f", "W3"], ["y"], "fc", transB=1)], ["N", 3, 7, 6],
                                       [("W3", RNG.standard_normal((2, 3)).astype(np.float32))]),
                                [AvgPool2d, Flatten, Linear]),
    "reshape_zero_and_constant": (_model([n("Constant", [], ["s"], "shape",
                                            value=numpy_helper.from_array(np.array([0, 3, -1], np.int64))),
                                          n("Reshape", ["x", "s"], ["y"], "rs")], ["N", 3, 7, 6]), [Reshape]),
    "shape_gather_concat_reshape": (_model([n("Shape", ["x"], ["sh"], "shape"),
                                            n("Gather", ["sh", "i0"], ["b"], "gather", axis=0),
                                            n("Unsqueeze", ["b", "ax"], ["bu"], "unsq"),
                                            n("Concat", ["bu", "m1"], ["s"], "cat", axis=0),
                                            n("Reshape", ["x", "s"], ["y"], "rs")], ["N", 3, 7, 6],
                                           [("i0", np.array(0, np.int64)), ("ax", np.array([0], np.int64)),
                                            ("m1", np.array([-1], np.int64))]), [Flatten]),
    "bn_after_gemm_folded": (_model([n("Gemm", ["x", "W", "C"], ["h"], "fc", transB=1),
                                     n("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"], "bn", epsilon=1e-3)],
                                    ["N", 6], [("W", W), ("C", B), ("s", RNG.random(5).astype(np.float32) + 0.5),
                                               ("b", RNG.standard_normal(5).astype(np.float32)),
                                               ("m", RNG.standard_normal(5).astype(np.float32)),
                                               ("v", RNG.random(5).astype(np.float32) + 0.5)]), [Linear]),
    "bn_first_is_host_scale": (_model([n("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], "bn")],
                                      ["N", 3, 7, 6], [("s", np.ones(3, np.float32) * 2), ("b", np.zeros(3, np.float32)),
                                                       ("m", np.ones(3, np.float32)), ("v", np.ones(3, np.float32))]),
                               [Scale]),
    "dropout_identity_softmax_opset11": (_model([n("Gemm", ["x", "W"], ["h"], "fc", transB=1),
                                                 n("Dropout", ["h"], ["d"], "drop"), n("Identity", ["d"], ["i"], "id"),
                                                 n("Softmax", ["i"], ["y"], "sm")], ["N", 6], [("W", W)], opset=11),
                                         [Linear, "Softmax"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_handmade_onnx_matches_onnxruntime(case, tmp_path):
    model, kinds = CASES[case]
    onnx.save(model, tmp_path / "m.onnx")
    g = load_model(tmp_path / "m.onnx")  # cross-checked with onnxruntime inside
    ops = [k if isinstance(k, str) else k.op for k in kinds]
    assert [nd.op for nd in g.nodes if nd.op != "ReLU"] == ops
    diff = verify_onnx(model, g, n=3, seed=1)
    assert diff < 1e-4


def test_verify_catches_a_wrong_import():
    model, _ = CASES["gemm_scalar_bias"]
    g = from_onnx(model)
    g.nodes[0].bias = g.nodes[0].bias + 1e-3
    with pytest.raises(SparseFlowError, match="differs from onnxruntime"):
        verify_onnx(model, g)


def test_static_batch_export_and_input_shape_override():
    m = _model([n("Relu", ["x"], ["y"], "r")], [1, 3, 4, 4])
    g = load_model(m)
    assert g.input_shape == (3, 4, 4)
    assert g(np.ones((5, 3, 4, 4))).shape == (5, 3, 4, 4)  # any batch
    with pytest.raises(SparseFlowError, match="disagrees with the ONNX input"):
        load_model(m, (3, 5, 5))
    dyn = _model([n("Relu", ["x"], ["y"], "r")], ["N", "C"])
    assert load_model(dyn, "7").input_shape == (7,)
