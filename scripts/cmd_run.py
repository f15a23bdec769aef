"""``sparseflow run``: every test image of DATA.npz through the simulated RTL of a compiled network."""
from __future__ import annotations

HELP = "run a compiled network (sparseflow compile) on the simulated RTL, layer by layer, against the golden model"


def add_arguments(parser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a folder written by sparseflow compile")
    parser.add_argument("--data", required=True, metavar="DATA.npz", help="x_test, y_test are run")
    parser.add_argument("--sim", default="verilator", choices=("verilator", "icarus"), help="default verilator")
    parser.add_argument("--backend", default=None, choices=("native", "cocotb"),
                        help="native (compiled Verilator harness; default on verilator) or cocotb")
    parser.add_argument("--limit", type=int, default=None, help="run the first N test images (default all)")
    from model.hw.engines import NAMES
    parser.add_argument("--engine", default="compiled", choices=("compiled", *NAMES),
                        help="run every layer on this engine instead of the compiled choice")
    parser.add_argument("--compare", type=int, default=20, metavar="N",
                        help="also run each layer on the other engines for the first N images, for their cycles "
                             "(default 20; 0 = off)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    from scripts import farm
    farm.add_arguments(parser)  # given (or $SPARSEFLOW_CLUSTER): the images are sharded over Dask workers


def run(args) -> int:
    import numpy as np

    from model.hw.engines import DENSE, ENGINES, NAMES, get as get_engine, per_engine
    from model.errors import SparseFlowError
    from model.network.compile import check_data, load_data
    from model.network.engines import is_24
    from model.network.folder import engine_configs, load_compiled
    from scripts.cli import LAYER_HEAD, layer_head, print_json, shrink_line
    from verif.native import check_backend
    from verif.netrun import prebuild, run_network

    backend = check_backend(args.backend, args.sim)
    if args.limit is not None and args.limit < 1:
        raise SparseFlowError(f"--limit must be >= 1, not {args.limit}")
    if args.compare < 0:
        raise SparseFlowError(f"--compare must be >= 0, not {args.compare}")
    net, man = load_compiled(args.dir)
    data = check_data(load_data(args.data, ("x_test", "y_test")), net.input_shape, net.classes,
                      ("x_test", "y_test"))
    n = len(data["x_test"]) if args.limit is None else min(args.limit, len(data["x_test"]))
    x = net.quantize_input(data["x_test"][:n])
    y = data["y_test"][:n]
    if args.engine == "compiled":
        engines = [l.engine for l in net.layers]
    else:
        if get_engine(args.engine).needs_24:
            bad = [l.name for l in net.layers if not is_24(l.weight)]
            if bad:
                raise SparseFlowError(f"layer '{bad[0]}' is not 2:4-sparse: the 2:4 engine cannot run it "
                                      f"(compile with --granularity 2:4)")
        engines = [args.engine] * len(net.layers)
    compare = {e: args.compare for e in NAMES} if args.compare else {}
    m = net.meta
    sizes = {"pes": m.get("pes", 8), "lanes": m.get("lanes", 4)}  # CompileOptions' defaults
    cfgs = engine_configs(net, sizes["pes"], sizes["lanes"], m.get("fifo_depth", 8),
                          kinds=set(engines) | set(compare), block=m.get("block", 4),
                          frontend_width=m.get("frontend_width", 1))  # folders from before it: 1
    import sys
    print(f"building the engines ({', '.join(cfgs)}) for {args.sim}/{backend} (cached) ...", file=sys.stderr,
          flush=True)
    from scripts import farm
    addr = farm.address(args.cluster, args.workers)
    try:
        prebuild(cfgs, args.sim, backend)
        if addr or args.workers:
            if addr:
                farm.probe(addr)
            res = run_sharded(net, x, cfgs, engines, args.sim, backend, compare, args.workers, addr)
        else:
            res = run_network(net, x, cfgs, engines=engines, sim=args.sim, backend=backend, compare=compare)
    except RuntimeError as exc:  # a simulator failure: not the user's input
        print(f"sparseflow: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    acc_rtl = float(np.mean(res["logits"].argmax(1) == y))
    acc_gold = float(np.mean(res["golden"].argmax(1) == y))
    total = {}
    for e in NAMES:
        if all(e in l["cycles"] for l in res["layers"]):
            total[e] = sum(l["cycles"][e]["per_inference"] for l in res["layers"])
    chosen = sum(l["cycles"][l["engine"]]["per_inference"] for l in res["layers"])
    out = {"dir": str(args.dir), "images": n, "sim": args.sim, "backend": backend,
           "accuracy": {"golden": acc_gold, "rtl": acc_rtl, **{k: v for k, v in m.get("accuracy", {}).items()
                                                                 if k != "integer_golden"}},
           "mismatches": res["mismatches"], "layers": res["layers"], "cycles_per_inference": chosen,
           "cycles_per_inference_by_engine": total,
           "multipliers": {e.name: e.multipliers(sizes[e.size_option]) for e in ENGINES.values()},
           "speedup_vs_dense": (total[DENSE.name] / chosen) if DENSE.name in total and chosen else None,
           "shrunk_from": m.get("shrunk_from", {}), "seconds": round(res["seconds"], 1)}
    if args.json:
        print_json(out)
    else:
        print(f"{args.dir}: {n} images on {args.sim}/{backend}: golden accuracy {acc_gold:.4f}, RTL accuracy "
              f"{acc_rtl:.4f}, mismatches {res['mismatches']}")
        print(f"{LAYER_HEAD}{'engine':>6s} {'cycles/inference: ' + NAMES[0]:>22s} "
              + " ".join(f"{e:>10s}" for e in NAMES[1:]) + "  (images)")
        for l in res["layers"]:
            c = l["cycles"]
            cells = " ".join(per_engine(c, lambda v: f"{v['per_inference']:>10.0f}", f"{'-':>10s}"))
            imgs = "/".join(str(c[e]["images"]) for e in NAMES if e in c)
            print(f"{layer_head(l)}{l['engine']:>6s} {'':>11s}{cells}  ({imgs})")
        line = shrink_line(m.get("shrunk_from"), res["layers"])
        if line:
            print(line)
        if res["mismatches"]:
            bad = [f"{l['name']} ({l['mismatches']})" for l in res["layers"] if l["mismatches"]]
            print(f"MISMATCH: RTL outputs differ from the golden model in {', '.join(bad)}")
        print(f"cycles per inference on the chosen engines: {chosen:.0f}"
              + (f"; dense engine {total[DENSE.name]:.0f}: speed-up {out['speedup_vs_dense']:.2f}x"
                 if out["speedup_vs_dense"] else ""))
    return 1 if res["mismatches"] else 0


def shard_task(net_bytes: bytes, x, cfgs: dict, engines: list, sim: str, backend: str,
               compare: dict) -> dict:
    """One shard of the images through the RTL (a Dask task: the network travels pickled)."""
    import pickle
    from verif.netrun import prebuild, run_network
    net = pickle.loads(net_bytes)
    prebuild(cfgs, sim, backend)  # cached (and locked) per machine: a farm's worker builds its own
    return run_network(net, x, cfgs, engines=engines, sim=sim, backend=backend, compare=compare, progress=False)


def merge_shards(parts: list[dict]) -> dict:
    """The shards' results (in image order) as one ``run_network`` result: images concatenated,
    mismatches summed, cycles per inference averaged with the image counts as weights."""
    import numpy as np
    layers = []
    for rows in zip(*(p["layers"] for p in parts)):
        row = dict(rows[0], mismatches=sum(r["mismatches"] for r in rows), outputs=sum(r["outputs"] for r in rows))
        cyc = {}
        for r in rows:
            for e, c in r["cycles"].items():
                cyc.setdefault(e, []).append(c)
        row["cycles"] = {e: {"images": sum(c["images"] for c in cs),
                             "per_inference": sum(c["per_inference"] * c["images"] for c in cs) / sum(c["images"] for c in cs),
                             "per_vector": sum(c["per_vector"] * c["images"] for c in cs) / sum(c["images"] for c in cs)}
                         for e, cs in cyc.items()}
        layers.append(row)
    return {"logits": np.concatenate([p["logits"] for p in parts]), "golden": np.concatenate([p["golden"] for p in parts]),
            "layers": layers, "mismatches": sum(p["mismatches"] for p in parts)}


def run_sharded(net, x, cfgs, engines, sim, backend, compare, workers, addr) -> dict:
    """The images in shards (two per worker) on a Dask cluster; ``compare`` runs in the first shard."""
    import pickle
    import time

    import numpy as np
    from scripts import farm
    t0 = time.perf_counter()
    blob = pickle.dumps(net)
    with farm.cluster(workers, addr) as client:
        n_shards = max(1, min(len(x), 2 * sum(client.nthreads().values())))
        bounds = np.linspace(0, len(x), n_shards + 1).astype(int)
        parts: dict = {}
        tasks = [(str(i), shard_task, (blob, x[a:b], cfgs, engines, sim, backend, compare if i == 0 else {}))
                 for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
        farm.run_tasks(client, tasks, lambda k, r, s: parts.__setitem__(int(k), r), desc="run")
    res = merge_shards([parts[i] for i in sorted(parts)])
    res["seconds"] = time.perf_counter() - t0
    res["shards"] = len(parts)
    return res
