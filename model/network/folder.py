"""A compiled network on disk (``sparseflow compile --out DIR``), written atomically.

``DIR`` holds:

* ``compiled.json``: the manifest (format, version, options, per-layer engine and memory
  image, the engine configurations);
* ``network.json`` + ``network.npz``: the integer network (:class:`IntNetwork`);
* ``pruned/graph.json`` + ``graph.npz``: the pruned, fine-tuned float network;
* ``images/<i>_<layer>_<engine>/``: each layer's memory image for its engine (``model.hw.images``:
  EIE interleaved CSC or 2:4 compressed, with ``bias.hex``; the dense engine's plain row-major
  ``weights.hex``), each with its own ``manifest.json``;
* ``report.json`` and ``report.md``.

* ``.sparseflow-output``: SparseFlow's marker listing every file it wrote (``model.outputs``).

The folder is built in a temporary sibling and renamed into place; an existing non-empty
``DIR`` is refused unless SparseFlow wrote it (its marker lists every file there), which is
replaced (README "Safety").
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from model import outputs
from model.hw.engines import BSR, EIE, NAMES, SPARSE24, per_engine
from model.errors import SparseFlowError
from model.network.engines import bsr_config, eie_config, lane_config, layer_eie_config, pad_weight
from model.network.intnet import IntNetwork

MARKER = "compiled.json"
FORMAT = "sparseflow-compiled"
VERSION = 1


def check_out_dir(out) -> Path:
    """Raise unless ``out`` may be written as a compiled folder: new, empty, or one SparseFlow
    wrote (its ``model.outputs`` marker lists every file there; README "Safety")."""
    return outputs.check_dir(out)


def engine_configs(net: IntNetwork, pes: int, lanes: int, fifo_depth: int = 8, kinds=None, block: int = 4,
                   frontend_width: int = 1) -> dict:
    """``{"eie": EIEConfig, "2:4": Sparse24Config, "dense": Sparse24Config, "bsr": BSRConfig}``
    (BSR with ``block`` x ``block`` blocks): one build per engine kind
    in ``kinds`` (default: the engines the layers use), sized from the largest layer it can run
    (every layer; for 2:4 the 2:4-sparse ones), so one build serves the network whatever the
    per-layer choice."""
    from model.network.engines import is_24
    kinds = set(kinds or [l.engine for l in net.layers])
    cfgs = {}
    for e in NAMES:
        ls = [l for l in net.layers if e != SPARSE24.name or is_24(l.weight)]
        if e not in kinds or not ls:
            continue
        if e == EIE.name:
            cfgs[e] = eie_config(net, ls, pes, fifo_depth, codebook=any(l.codebook is not None for l in ls),
                                 frontend_width=frontend_width)
        elif e == BSR.name:
            cfgs[e] = bsr_config(net, ls, lanes, block)
        else:
            cfgs[e] = lane_config(net, ls, lanes)
    return cfgs


def _write_layer_image(path: Path, lay, cfgs: dict, net: IntNetwork) -> dict:
    from model.hw.formats import eie as eie_fmt, nm
    from model.hw.images import write_hex, write_image
    if lay.engine == EIE.name:
        cfg = layer_eie_config(cfgs[EIE.name], lay)
        if cfg.codebook and lay.codebook is not None:
            m = eie_fmt.encode(lay.indices, cfg, lay.codebook)
        else:
            m = eie_fmt.encode(lay.weight, cfg.with_(codebook=False))
            cfg = cfg.with_(codebook=False)
        return write_image(path, m, cfg, bias=lay.bias)
    if lay.engine == SPARSE24.name:
        cfg = cfgs[SPARSE24.name]
        return write_image(path, nm.encode(pad_weight(lay.weight), net.weight_bits), cfg, bias=lay.bias)
    if lay.engine == BSR.name:  # the BSR image (sparseflow emit --format bsr) of the padded matrix
        from model.hw.formats import bsr
        cfg = cfgs[BSR.name]
        return write_image(path, bsr.encode(pad_weight(lay.weight), net.weight_bits, (cfg.block, cfg.block)),
                           cfg.arith, bias=lay.bias)
    # dense: the plain matrix, row-major, one weight per word (+ bias)
    path.mkdir(parents=True)
    w = pad_weight(lay.weight)
    files = {"weights.hex": {"words": int(w.size), "width": net.weight_bits,
                             "sha256": write_hex(path / "weights.hex", w.reshape(-1), net.weight_bits)}}
    if lay.bias is not None:
        files["bias.hex"] = {"words": int(lay.rows), "width": net.bias_bits,
                             "sha256": write_hex(path / "bias.hex", lay.bias, net.bias_bits)}
    man = {"format": "dense", "shape": list(w.shape), "layout": "row-major, zero columns padded to a multiple of 4",
           "files": files}
    (path / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    return man


def write_compiled(compiled, out) -> Path:
    """Write a :class:`~model.network.compile.Compiled` into ``out``: built in a temporary
    sibling and renamed into place (``model.outputs.new_dir``), replacing only a folder
    SparseFlow wrote."""
    from model.hw.config import config_to_dict
    out = Path(out)  # new_dir checks it (before and after the work)
    net, opts = compiled.net, compiled.options
    cfgs = engine_configs(net, opts.pes, opts.lanes, opts.fifo_depth, block=opts.block,
                          frontend_width=opts.frontend_width)
    with outputs.new_dir(out, "compile") as tmp:
        net.save(tmp)
        compiled.pruned.save(tmp / "pruned")
        images = []
        for i, lay in enumerate(net.layers):
            rel = f"images/{i}_{re.sub(r'[^A-Za-z0-9_.-]', '_', lay.name)}_{lay.engine.replace(':', 'to')}"
            (tmp / "images").mkdir(exist_ok=True)
            _write_layer_image(tmp / rel, lay, cfgs, net)
            images.append({"layer": lay.name, "engine": lay.engine, "path": rel})
        man = {"format": FORMAT, "version": VERSION, "network": net.name,
               "engines": [l.engine for l in net.layers], "images": images,
               "configs": {k: config_to_dict(v) for k, v in cfgs.items()},
               "options": compiled.report.get("options", {}), "files": ["network.json", "network.npz",
                                                                         "pruned/graph.json", "pruned/graph.npz",
                                                                         "report.json", "report.md"]}
        (tmp / "report.json").write_text(json.dumps(compiled.report, indent=2, default=outputs.json_default) + "\n")
        (tmp / "report.md").write_text(report_md(compiled.report))
        (tmp / MARKER).write_text(json.dumps(man, indent=2, default=outputs.json_default) + "\n")
    return out


def load_compiled(folder) -> tuple[IntNetwork, dict]:
    folder = Path(folder)
    if not folder.is_dir():
        raise SparseFlowError(f"{folder}: no such folder")
    try:
        man = json.loads((folder / MARKER).read_text())
    except FileNotFoundError:
        raise SparseFlowError(f"{folder} is not a compiled network (no {MARKER}; run sparseflow compile)") from None
    except (OSError, ValueError) as exc:
        raise SparseFlowError(f"{folder}/{MARKER}: unreadable ({str(exc).splitlines()[0]})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT or man.get("version") != VERSION:
        raise SparseFlowError(f"{folder}/{MARKER} is not a sparseflow compiled network (version {VERSION})")
    return IntNetwork.load(folder), man


def report_md(r: dict) -> str:
    a = r["accuracy"]
    names = " / ".join(NAMES)
    lines = [f"# Compiled: {r.get('network') or 'network'}", "",
             f"Seed {r['seed']}; {r['samples']['train']} training / {r['samples']['test']} held-out samples; "
             f"shifts calibrated on {r['samples']['calibration']} training samples.", "",
             "| accuracy | held-out |", "|---|---|",
             f"| dense float | {a['dense_float']:.4f} |", f"| pruned float | {a['pruned_float']:.4f} |",
             f"| integer golden | {a['integer_golden']:.4f} |"]
    if "integer_golden_unshared" in a:
        lines[-1] = f"| integer golden, weight sharing ({r['options'].get('share_bits')}-bit codebooks) | {a['integer_golden']:.4f} |"
        lines.append(f"| integer golden, without sharing | {a['integer_golden_unshared']:.4f} |")
    lines += ["", f"| layer | matrix | positions | density | shift | engine | predicted cycles/inference ({names}) "
              f"| memory bits ({names}) | EIE index bits | EIE bits/non-zero |", "|---|---|---|---|---|---|---|---|---|---|"]
    for l in r["layers"]:
        cyc = " / ".join(per_engine(l["costs"], lambda c: f"{c['cycles']:.0f}"))
        mem = " / ".join(per_engine(l["costs"], lambda c: f"{c['memory_bits']}"))
        was = f" (was {l['shrunk_from'][0]}x{l['shrunk_from'][1]})" if l.get("shrunk_from") else ""
        lines.append(f"| {l['name']} | {l['matrix'][0]}x{l['matrix'][1]}{was} | {l['positions']} | {l['density']:.3f} "
                     f"| {l['shift']} | {l['engine']} | {cyc} | {mem} | {l.get('index_bits', 4)} "
                     f"| {l.get('bits_per_nonzero', float('nan')):.2f} |")
    lines += ["", f"Predicted cycles per inference on the chosen engines: {r['predicted_cycles_chosen']:.0f}",
              "EIE index bits: the relative-index width of the layer's entries (the cost model's fewest memory "
              "bits x cycles); bits/non-zero: its entry bits per non-zero weight, padding included (EIE's paper: 8).",
              ""]
    return "\n".join(lines)
