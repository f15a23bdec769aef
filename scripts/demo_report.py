"""The demo's report folder (markdown + PNG plots) and its one-screen terminal summary."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.hw.engines import EIE, NAMES, per_engine


def _save(fig, out: Path, name: str, names: list[str]) -> None:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    names.append(name)


def _grouped_bars(ax, series: dict[str, list[float]]) -> None:
    """One group of bars per x position, one bar per series."""
    width = 0.8 / len(series)
    for j, (label, values) in enumerate(series.items()):
        ax.bar(np.arange(len(values)) + j * width, values, width, label=label)


def _plots(out: Path, result: dict, q_u, q_24, cfgs) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from model.hw.formats import eie

    names = []
    # Sparsity pattern of every layer, both networks.
    nl = len(q_u.layers)
    fig, axes = plt.subplots(2, nl, figsize=(4 * nl, 6))
    for row, (label, q) in enumerate((("unstructured (EIE)", q_u), ("2:4", q_24))):
        for i, l in enumerate(q.layers):
            ax = axes[row][i]
            ax.imshow(l.weight != 0, cmap="Greys", aspect="auto", interpolation="nearest")
            ax.set_title(f"{label} layer {i} {l.weight.shape[0]}x{l.weight.shape[1]}\n"
                         f"density {np.count_nonzero(l.weight) / l.weight.size:.2f}", fontsize=9)
            ax.set_xlabel("input")
            ax.set_ylabel("output")
    _save(fig, out, "sparsity.png", names)

    # Per-PE load of the EIE network (entries incl. padding).
    cfg = cfgs[EIE.name]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    _grouped_bars(ax, {f"layer {i}": eie.encode(l.weight, cfg.with_(codebook=False, index_bits=w["index_bits"])).entries_per_pe
                       for i, (l, w) in enumerate(zip(q_u.layers, result["index_widths"]))})
    ax.set_xlabel("PE")
    ax.set_ylabel("entries (incl. padding)")
    ax.set_title("EIE: non-zeros per PE (interleaved rows)")
    ax.legend()
    _save(fig, out, "pe_load.png", names)

    # Accuracy vs sparsity (the small sweep).
    if result["sweep"]:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for method in sorted({r["method"] for r in result["sweep"]}):
            pts = [(r["sparsity"], r["accuracy"]) for r in result["sweep"] if r["method"] == method]
            ax.plot(*zip(*pts), marker="o", label=method)
        ax.axhline(result["accuracy"]["float_dense"], color="k", ls="--", lw=1, label="dense")
        ax.set_xlabel("sparsity")
        ax.set_ylabel("held-out accuracy")
        ax.set_title("one-shot pruning + fine-tuning, digits MLP")
        ax.legend()
        _save(fig, out, "accuracy_sparsity.png", names)

    # Cycles per layer per run.
    runs = result["runs"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    _grouped_bars(ax, {k: [l["cycles_mean"] for l in r["layers"]] for k, r in runs.items()})
    ax.set_xlabel("layer")
    ax.set_ylabel("cycles per vector (RTL counter)")
    ax.set_title("cycles per layer, measured in simulation")
    ax.legend(fontsize=8)
    _save(fig, out, "cycles.png", names)
    return names


def summary_lines(result: dict) -> list[str]:
    a = result["accuracy"]
    r = result["runs"]
    sp = result["speedup"]
    o = result["options"]
    lines = [
        f"SparseFlow demo: digits MLP {o['hidden']}, {o['method']} pruning, {result['test_images']} held-out images, "
        f"{o['sim']}",
        "",
        f"{'':24s}{'EIE (unstructured)':>20s}{'2:4':>10s}{'mixed':>10s}",
        f"{'float dense accuracy':24s}{a['float_dense']:>20.4f}{a['float_dense']:>10.4f}{'':>10s}",
        f"{'float pruned accuracy':24s}{a['eie']['float_pruned']:>20.4f}{a['2:4']['float_pruned']:>10.4f}{'':>10s}",
        f"{'integer golden accuracy':24s}{a['eie']['integer_golden']:>20.4f}{a['2:4']['integer_golden']:>10.4f}"
        f"{a['2:4']['integer_golden']:>10.4f}",
        *([f"{'  without weight sharing':24s}{a['eie']['integer_golden_unshared']:>20.4f}"
           f"   ({o['share_bits']}-bit codebooks on the EIE net)"] if "integer_golden_unshared" in a['eie'] else []),
        f"{'RTL accuracy':24s}{a['eie']['rtl']:>20.4f}{a['2:4']['rtl']:>10.4f}{a['mixed']['rtl']:>10.4f}",
        f"{'cycles / inference':24s}{r['eie']['cycles_per_inference']:>20.1f}{r['2:4']['cycles_per_inference']:>10.1f}"
        f"{r['mixed']['cycles_per_inference']:>10.1f}",
        f"{'speed-up vs dense':24s}{sp['eie_vs_dense']:>19.2f}x{sp['2:4_vs_dense']:>9.2f}x{sp['mixed_vs_dense']:>9.2f}x",
        "",
        "EIE load-balance efficiency per layer: " + ", ".join(f"{e:.2f}" for e in result["eie_efficiency"]),
        f"EIE relative-index bits per layer ({'--index-bits' if result.get('index_bits_forced') else 'cost model'}): " + ", ".join(
            f"L{w['layer']}={w['index_bits']} ({w['bits_per_nonzero']:.2f} bits/non-zero)" for w in result["index_widths"])
        + "; EIE's paper: 8 bits/non-zero",
        "per-layer choice (2:4 net): " + ", ".join(f"L{c['layer']}={c['engine']}" for c in result["choice"]),
        f"RTL outputs checked against the golden integer model: {result['outputs_checked']}, "
        f"mismatches: {result['mismatches']}",
    ]
    return lines


def write_report(out: Path, result: dict, q_u, q_24, cfgs, stages) -> None:
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(out, result, q_u, q_24, cfgs)
    md = ["# SparseFlow demo report", "", "```", *summary_lines(result), "```", ""]
    md += ["## Configuration", ""]
    md += [f"- `{k}`: `{v}`" for k, v in result["configs"].items()]
    md += [f"- requantizing shifts: EIE net {result['shifts']['eie']}, 2:4 net {result['shifts']['2:4']}", ""]
    md += ["## Per layer", "", "| run | layer | engine | shape | cycles/vector | ideal (EIE) | multipliers | mismatches |",
           "|---|---|---|---|---|---|---|---|"]
    for k, run in result["runs"].items():
        for i, l in enumerate(run["layers"]):
            ideal = f"{l['ideal_mean']:.1f}" if l["ideal_mean"] is not None else ""
            md.append(f"| {k} | {i} | {l['engine']} | {l['shape'][0]}x{l['shape'][1]} | {l['cycles_mean']:.1f} | "
                      f"{ideal} | {l['multipliers']} | {l['mismatches']} |")
    names = " / ".join(NAMES)
    md += ["", "## Per-layer engine choice (2:4 network)", "",
           "Predicted by `model.hw.costmodel` on training-set activations; measured = the mixed run's RTL counters.", "",
           f"| layer | engine | predicted cycles ({names}) | memory bits ({names}) | measured cycles |",
           "|---|---|---|---|---|"]
    for c, l in zip(result["choice"], result["runs"]["mixed"]["layers"]):
        pc = " / ".join(per_engine(c["costs"], lambda v: f"{v['cycles']:.0f}"))
        pm = " / ".join(per_engine(c["costs"], lambda v: str(v["memory_bits"])))
        md.append(f"| {c['layer']} | {c['engine']} | {pc} | {pm} | {l['cycles_mean']:.1f} |")
    md += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    md += ["", "## Where the time goes", "", "| stage | seconds |", "|---|---|"]
    md += [f"| {k} | {v:.1f} |" for k, v in stages.seconds.items()]
    md += ["", f"Memory images: `{out / 'images'}` (one folder per layer, `manifest.json` + hex files)."]
    (out / "report.md").write_text("\n".join(md) + "\n")
