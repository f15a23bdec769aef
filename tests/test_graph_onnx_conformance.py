"""ONNX conformance: the ``pytorch-converted`` cases shipped in the onnx wheel.

Every case (model.onnx + test_data_set_0/input_0.pb + output_0.pb) is imported. The ones
whose operations are supported must give the expected output with the NumPy float evaluator
within ``|ours - expected| <= 1e-5 + 1e-4 * |expected|`` (observed: <= 3.1e-7); the others
must be refused, by name, for the reason listed in ``REFUSED`` (checked as a substring of the
one-line error). A case that is neither listed nor passing fails the test, and so does a
listed case that starts to import: the list is exact.
"""
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from model.errors import SparseFlowError
from model.nn.graph.evaluate import evaluate
from model.nn.graph.from_onnx import from_onnx

ROOT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "pytorch-converted")
CASES = sorted(d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "model.onnx")))
RTOL, ATOL = 1e-4, 1e-5

_1D_POOL = "Unsqueeze node"            # 1-D pooling is exported as Unsqueeze + 2-D pool + Squeeze
_CONV_ND = "only 2-D convolutions"     # Conv1d / Conv3d (4-D NCHW tensors only)
_POOL_ND = "is not 2-D"                # 1-D / 3-D pooling
_GROUPS = "(grouped convolution) is not supported"
_UNSUPPORTED = "operation not supported"
REFUSED = {
    # dimensionality: the engines run 2-D convolutions lowered to matrices; 1-D and 3-D are not lowered
    "test_AvgPool1d": _1D_POOL, "test_AvgPool1d_stride": _1D_POOL,
    "test_AvgPool3d": _POOL_ND, "test_AvgPool3d_stride": _POOL_ND, "test_AvgPool3d_stride1_pad0_gpu_input": _POOL_ND,
    "test_MaxPool1d": _POOL_ND, "test_MaxPool1d_stride": _POOL_ND, "test_MaxPool1d_stride_padding_dilation": _POOL_ND,
    "test_MaxPool3d": _POOL_ND, "test_MaxPool3d_stride": _POOL_ND, "test_MaxPool3d_stride_padding": _POOL_ND,
    **{f"test_Conv1d{s}": _CONV_ND for s in ("", "_dilated", "_groups", "_pad1", "_pad1size1", "_pad2",
                                              "_pad2size1", "_stride")},
    **{f"test_Conv3d{s}": _CONV_ND for s in ("", "_dilated", "_dilated_strided", "_groups", "_no_bias", "_stride",
                                              "_stride_padding")},
    # attributes the lowering does not implement: groups (incl. depthwise), dilation
    "test_Conv2d_groups": "group=2 " + _GROUPS, "test_Conv2d_groups_thnn": "group=2 " + _GROUPS,
    "test_Conv2d_depthwise": "group=4 " + _GROUPS, "test_Conv2d_depthwise_padded": "group=4 " + _GROUPS,
    "test_Conv2d_depthwise_strided": "group=4 " + _GROUPS, "test_Conv2d_depthwise_with_multiplier": "group=4 " + _GROUPS,
    "test_Conv2d_dilated": "dilations=[2, 2] is not supported",
    "test_MaxPool2d_stride_padding_dilation": "dilations=[10, 10] is not supported",
    # operations outside the supported set (activations other than ReLU, padding layers, transposed conv, ...)
    "test_ConstantPad2d": "Pad node", "test_ReflectionPad2d": "Pad node", "test_ReplicationPad2d": "Pad node",
    "test_ZeroPad2d": "Pad node",
    "test_ConvTranspose2d": "ConvTranspose node", "test_ConvTranspose2d_no_bias": "ConvTranspose node",
    "test_ELU": "Elu node", "test_LeakyReLU": "LeakyRelu node", "test_LeakyReLU_with_negval": "LeakyRelu node",
    "test_SELU": "Selu node", "test_Sigmoid": "Sigmoid node", "test_Softplus": "Softplus node", "test_Tanh": "Tanh node",
    "test_PReLU_1d": "PRelu node", "test_PReLU_1d_multiparam": "PRelu node", "test_PReLU_2d": "PRelu node",
    "test_PReLU_2d_multiparam": "PRelu node", "test_PReLU_3d": "PRelu node", "test_PReLU_3d_multiparam": "PRelu node",
    "test_Softmin": "Neg node", "test_PixelShuffle": "Transpose node",
    # graph structure: one activation feeds two operations (x / (1 + |x|), Poisson loss)
    "test_Softsign": "feeds 2 operations", "test_PoissonNLLLLoss_no_reduce": "feeds 2 operations",
    "test_GLU": "second output '2' is used", "test_GLU_dim": "second output '2' is used",
    # integer inputs (Embedding takes indices)
    "test_Embedding": "must be a float32 tensor", "test_Embedding_sparse": "must be a float32 tensor",
    # softmax over a non-class axis of an image tensor (only the final (batch, classes) softmax is a host op)
    "test_log_softmax_dim3": "only over the classes", "test_softmax_functional_dim3": "only over the classes",
}


def _read(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def test_cases_are_there_and_the_list_is_exact():
    assert len(CASES) >= 80, len(CASES)
    assert set(REFUSED) <= set(CASES), sorted(set(REFUSED) - set(CASES))
    supported = [c for c in CASES if c not in REFUSED]
    assert len(supported) >= 19, supported  # Linear, Conv2d, pools, BatchNorm, ReLU, softmaxes


@pytest.mark.parametrize("case", CASES)
def test_pytorch_converted_case(case):
    d = os.path.join(ROOT, case)
    model = onnx.load(os.path.join(d, "model.onnx"))
    x = _read(os.path.join(d, "test_data_set_0", "input_0.pb"))
    want = _read(os.path.join(d, "test_data_set_0", "output_0.pb"))
    if case in REFUSED:
        with pytest.raises(SparseFlowError) as e:
            from_onnx(model, input_shape=x.shape[1:])
        msg = str(e.value)
        assert REFUSED[case] in msg, msg
        assert ("node '" in msg or "input '" in msg) and "\n" not in msg, msg
        return
    g = from_onnx(model, input_shape=x.shape[1:])
    got = evaluate(g, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
