"""Your own network: a small graph IR, its NumPy float evaluator and the front ends.

``load_model(path_or_module, input_shape=None) -> Graph`` is the one entry point: an
``nn.Module`` (traced with ``torch.fx``), an ``.onnx`` file or a TorchScript ``.pt`` file. See
``docs/networks.md`` for what is supported and what is refused.
"""
from model.nn.graph.ir import (AvgPool2d, Conv2d, Flatten, Graph, Linear, MaxPool2d, Node, ReLU, Reshape, Scale,
                 Softmax)
from model.nn.graph.evaluate import evaluate
from model.nn.graph.lower import conv_matrix, im2col
from model.nn.graph.load import load_model

__all__ = ["AvgPool2d", "Conv2d", "Flatten", "Graph", "Linear", "MaxPool2d", "Node", "ReLU", "Reshape",
           "Scale", "Softmax", "evaluate", "conv_matrix", "im2col", "load_model"]
