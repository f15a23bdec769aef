"""The one entry point: ``load_model(path_or_module, input_shape=None) -> Graph``."""
from __future__ import annotations

from pathlib import Path

from model.errors import SparseFlowError


def parse_shape(text) -> tuple[int, ...] | None:
    """``"1,28,28"`` / ``(1, 28, 28)`` / None -> a tuple of positive ints (batch excluded)."""
    if text is None:
        return None
    try:
        vals = tuple(int(t) for t in (text.split(",") if isinstance(text, str) else text)
                     if str(t).strip())
    except (TypeError, ValueError):
        raise SparseFlowError(f"input shape must be comma-separated positive integers, not {text!r}") from None
    if not vals or min(vals) < 1:
        raise SparseFlowError(f"input shape must be comma-separated positive integers, not {text!r}")
    return vals


def load_model(model, input_shape=None, *, name: str | None = None, check: bool = True):
    """See :func:`_load`; a refusal carries ``.chain``: the nodes imported before it (or None)."""
    from model.nn.graph.builder import last_chain, reset_chain
    reset_chain()
    try:
        return _load(model, input_shape, name=name, check=check)
    except SparseFlowError as exc:
        exc.chain = last_chain()
        raise
    finally:
        reset_chain()


def _load(model, input_shape=None, *, name: str | None = None, check: bool = True):
    """Import a network as a float :class:`~model.nn.graph.ir.Graph`.

    ``model``: a ``torch.nn.Module`` (traced with ``torch.fx``; a ``ScriptModule`` is
    interpreted), a path to an ``.onnx`` file or to a TorchScript file (``.pt``/``.pth``/
    ``.ts``; anything ``torch.save`` wrote is refused), or a saved graph folder
    (``graph.json`` + ``graph.npz``). ``input_shape`` (batch excluded) is needed when the file
    does not fix it or the first layer is not a Linear. ``check`` (ONNX): compare the imported
    graph with onnxruntime on seeded random inputs (``verify_onnx``).
    """
    input_shape = parse_shape(input_shape)
    try:
        import torch
        if isinstance(model, torch.nn.Module):
            from model.nn.graph.from_torch import from_module
            return from_module(model, input_shape, name)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(model, (str, Path)):
        import onnx
        if isinstance(model, onnx.ModelProto):
            from model.nn.graph.from_onnx import from_onnx, verify_onnx
            g = from_onnx(model, input_shape, name)
            if check:
                verify_onnx(model, g)
            return g
        raise SparseFlowError(f"cannot import a {type(model).__name__}: give an nn.Module, an .onnx or a "
                              f"TorchScript file")
    p = Path(model)
    if p.is_dir():
        from model.nn.graph.ir import Graph
        return Graph.load(p)
    if not p.exists():
        raise SparseFlowError(f"{model}: no such file")
    with open(p, "rb") as f:
        head = f.read(4)
    torch_like = head[:2] == b"PK" or head[:1] == b"\x80" or \
        p.suffix.lower() in (".pt", ".pth", ".ts", ".jit", ".pkl", ".pickle")  # zip (torch) or pickle
    if p.suffix.lower() == ".onnx" or not torch_like:
        from model.nn.graph.from_onnx import from_onnx, load_onnx_model, verify_onnx
        proto = load_onnx_model(p)
        g = from_onnx(proto, input_shape, name or p.stem)
        g.source = f"onnx:{p}"
        if check:
            verify_onnx(proto, g)
        return g
    from model.nn.graph.from_torchscript import from_torchscript
    return from_torchscript(p, input_shape, name)
