"""``sparseflow inspect``: import a network (ONNX, TorchScript, saved graph) and show its layers.

With ``--input X.npy`` (batch first, e.g. ``(N, 1, 28, 28)``; or a ``.npz`` from ``sparseflow
data``, whose ``x_test`` is used and scored against ``y_test``) it also runs the float graph
(the NumPy reference evaluator) and writes the outputs to ``--out Y.npy``.
"""
from __future__ import annotations

HELP = "import a network (.onnx, TorchScript .pt) and show its layers; optionally run its float graph"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="NET", help="NET.onnx, NET.pt (TorchScript) or a saved graph folder")
    parser.add_argument("--input-shape", default=None, metavar="C,H,W",
                        help="input shape without the batch, when the file does not fix it (default: from --input)")
    parser.add_argument("--input", default=None, metavar="X.npy", help="inputs (N, ...) to run through the float graph")
    parser.add_argument("--out", default=None, metavar="Y.npy", help="where to write the float outputs (with --input)")
    parser.add_argument("--no-check", action="store_true",
                        help="ONNX: skip the cross-check of the imported graph against onnxruntime")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _fmt(shape) -> str:
    return "x".join(map(str, shape))


def _print_table(g, rep) -> None:
    print(f"{g.name} ({g.source}): input (N, {', '.join(map(str, g.input_shape))}) -> "
          f"(N, {', '.join(map(str, g.output_shape))}), {len(g.nodes)} nodes, {g.n_params():,} parameters")
    _print_rows(rep["nodes"])


def _print_rows(nodes) -> None:
    cols = ("#", "layer", "op", "input", "output", "params", "supported", "runs on")
    rows = []
    for r in nodes:
        where = ", ".join(r["engines"])
        if "matrix" in r:
            pad = f" (2:4: {r['cols_2:4']} cols)" if "cols_2:4" in r else ""
            where += f"  [{_fmt(r['matrix'])} matrix{pad}" + (f" x {r['positions']} positions]" if "positions" in r else "]")
        rows.append((str(r["index"]), r["name"], r["op"], _fmt(r["input_shape"]), _fmt(r["output_shape"]),
                     str(r["params"]), "yes" if r["supported"] else "no", where))
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    for row in (cols, *rows):
        print("  ".join(v.ljust(w) if i in (1, 2, 7) else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip())


def _print_refused(exc, as_json: bool) -> None:
    """What was imported before the refusal, and the refused node (stdout); the error follows on stderr."""
    chain = getattr(exc, "chain", None)
    if chain is None or as_json or not (chain.nodes or getattr(exc, "op", None)):
        return
    from model.errors import SparseFlowError
    from model.nn.graph.ir import Graph
    rows = []
    if chain.nodes:
        try:
            rows = Graph(chain.input_shape, list(chain.nodes), name="partial").table()
        except SparseFlowError:
            return
    if getattr(exc, "op", None):
        rows.append({"index": len(rows), "name": exc.node, "op": exc.op, "input_shape": list(chain.shape),
                     "output_shape": ["?"], "params": 0, "supported": False, "engines": ["-"]})
    print(f"imported up to the refused node (input (N, {', '.join(map(str, chain.input_shape))})):")
    _print_rows(rows)


def run(args) -> int:

    import numpy as np

    from model.errors import SparseFlowError
    from model.nn.graph import load_model
    from model.nn.graph.evaluate import evaluate
    from scripts.cli import print_json
    from scripts.npyio import load_npy, save_npy

    if args.out and not args.input:
        raise SparseFlowError("--out needs --input")
    if args.input and not args.out:
        raise SparseFlowError("--input needs --out (where to write the outputs)")
    x = labels = None
    if args.input:
        if str(args.input).endswith(".npz"):
            try:
                with np.load(args.input, allow_pickle=False) as z:
                    key = "x_test" if "x_test" in z.files else z.files[0] if len(z.files) == 1 else None
                    if key is None:
                        raise SparseFlowError(f"input {args.input}: a .npz needs x_test (or one array)")
                    x = z[key]
                    labels = z["y_test"] if key == "x_test" and "y_test" in z.files else None
            except FileNotFoundError:
                raise SparseFlowError(f"input {args.input}: no such file") from None
            except (OSError, ValueError, KeyError) as exc:
                raise SparseFlowError(f"input {args.input}: not a readable .npz file ({str(exc).splitlines()[0]})") from None
        else:
            x = load_npy(args.input, "input")
    try:
        try:
            g = load_model(args.model, args.input_shape, check=not args.no_check)
        except SparseFlowError as exc:  # a file without its input shape: take it from the data
            if x is None or args.input_shape or "give the input shape" not in str(exc) or np.ndim(x) < 2:
                raise
            g = load_model(args.model, tuple(np.shape(x)[1:]), check=not args.no_check)
    except SparseFlowError as exc:
        _print_refused(exc, args.json)
        raise
    rep = {"name": g.name, "source": g.source, "input_shape": list(g.input_shape),
           "output_shape": list(g.output_shape), "params": g.n_params(), "nodes": g.table()}
    if x is not None:
        y = evaluate(g, x).astype(np.float32)
        out = save_npy(args.out, y)
        rep["output"] = {"input": str(args.input), "out": str(out), "shape": list(y.shape)}
        if y.ndim == 2:
            pred = y.argmax(1)
            rep["output"]["argmax_first"] = pred[:10].tolist()
            if labels is not None and len(labels) == len(pred):
                rep["output"]["accuracy"] = float((pred == np.asarray(labels)).mean())
    if args.json:
        print_json(rep)
        return 0
    _print_table(g, rep)
    if "output" in rep:
        o = rep["output"]
        extra = f", accuracy {o['accuracy']:.4f}" if "accuracy" in o else ""
        print(f"float outputs {_fmt(o['shape'])} -> {o['out']}{extra}")
    return 0
