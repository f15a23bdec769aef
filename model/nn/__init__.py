"""The network side: data, networks, training, pruning, quantization and the front ends
(PyTorch, ONNX, TorchScript). May import ``model.hw``; never the reverse."""
