"""The hardware golden model: configurations, bit-exact reference arithmetic, weight formats,
memory images, the engine registry, cycle and cost models. NumPy only: no torch, no ``model.nn``."""
