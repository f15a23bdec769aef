"""``sparseflow explore`` on Dask: a farm-style cluster (separate scheduler address), a worker
killed mid-sweep, an unreachable scheduler; the store's rerun and exactly-once guarantees.

A tiny network (TorchScript 64-16-10) and a small data set keep each sweep to a few seconds."""
from __future__ import annotations

import functools
import os
import signal
import sqlite3
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scripts.cli import main

SEED = 0
FAST = ["--engines", "eie,dense", "--sizes", "1,2", "--sparsity", "0.8", "--targets", "ice40-up5k,ecp5-85f",
        "--rtl-check", "0", "--finetune-epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def net_files(tmp_path_factory):
    t = tmp_path_factory.mktemp("explore")
    torch.manual_seed(SEED)
    m = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(m, torch.zeros(1, 64)).save(str(t / "net.pt"))
    rng = np.random.default_rng(SEED)
    np.savez(t / "data.npz", x_train=rng.random((96, 64), dtype=np.float32), y_train=rng.integers(0, 10, 96),
             x_test=rng.random((24, 64), dtype=np.float32), y_test=rng.integers(0, 10, 24))
    return t / "net.pt", t / "data.npz"


@pytest.fixture(scope="module")
def farm_cluster():
    """A scheduler with two worker processes, reached by its address as a farm's would be."""
    from distributed import Client, LocalCluster
    cl = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cl, set_as_default=False)
    try:
        yield cl.scheduler_address, client
    finally:
        client.close()
        cl.close()


def _keys(db: Path, kind: str) -> list[str]:
    with sqlite3.connect(db) as c:
        return [k for (k,) in c.execute("SELECT key FROM results WHERE kind = ?", (kind,))]


def test_explore_on_a_separate_scheduler_then_from_the_store(net_files, farm_cluster, tmp_path, capsys):
    net, data = net_files
    addr, client = farm_cluster
    out = tmp_path / "dse"
    args = ["explore", "--model", str(net), "--data", str(data), *FAST, "--cluster", addr, "--out", str(out), "--json"]
    assert main(args) == 0
    import json
    first = json.loads(capsys.readouterr().out)
    # eie x {1,2} at each target's queue depth (2 and 8) + dense x {1,2}: 6 builds; each pairs with its targets
    assert first["computed"] == {"compile": 1, "cost": 6, "synth": 0}
    assert first["points"] == 8 and first["stored_points"] == 8
    assert len(_keys(out / "results.sqlite", "point")) == 8
    for f in ("points.csv", "pareto.png", "report.md"):
        assert (out / f).is_file()
    assert "Recommended" in (out / "report.md").read_text()
    # the tasks ran on the farm's workers, not in this process
    assert len(client.scheduler_info()["workers"]) == 2
    # rerun: nothing recomputed, the same points
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["computed"] == {"compile": 0, "cost": 0, "synth": 0}
    assert second["recommended"] == first["recommended"]
    assert len(_keys(out / "results.sqlite", "point")) == 8


def _killing_cost(blob, cfg, marker):
    """The cost task, except that the first one to run kills its own worker process."""
    from scripts.explore import cost_task
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # exactly one task wins
    except FileExistsError:
        return cost_task(blob, cfg)
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def test_worker_killed_mid_sweep_every_point_once(net_files, farm_cluster, tmp_path):
    import cloudpickle
    from scripts import explore
    from scripts.store import Store
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    net, data = net_files
    addr, client = farm_cluster
    pids_before = set(client.run(os.getpid).values())
    g = explore.Grid(engines=["eie", "dense"], sizes=[1, 2, 3], sparsity=[0.8], targets=["ecp5-85f"],
                     rtl_check=0, finetune_epochs=1)
    source, data_bytes, ident = explore.inputs(str(net), str(data))
    marker = tmp_path / "killed"
    with Store(tmp_path / "results.sqlite") as store:
        res = explore.sweep(g, source, data_bytes, ident, store, cluster_address=addr, progress=False,
                            cost_fn=functools.partial(_killing_cost, marker=str(marker)), log=lambda m: None)
    assert marker.exists(), "no worker was killed"
    assert set(client.run(os.getpid).values()) != pids_before  # the nanny started a new worker process
    assert res["computed"] == {"compile": 1, "cost": 6, "synth": 0}
    for kind, n in (("compile", 1), ("cost", 6), ("point", 6)):
        keys = _keys(tmp_path / "results.sqlite", kind)
        assert len(keys) == n and len(set(keys)) == n, (kind, keys)


def test_unreachable_cluster_is_one_error_line(net_files, tmp_path, capsys):
    net, data = net_files
    rc = main(["explore", "--model", str(net), "--data", str(data), *FAST, "--cluster", "tcp://127.0.0.1:9",
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("sparseflow: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


@pytest.mark.parametrize("extra,msg", [(["--cluster", "not an address"], "scheduler address"),
                                       (["--workers", "0"], "--workers"),
                                       (["--engines", "eie,nope"], "unknown engine"),
                                       (["--sizes", "4,x"], "--sizes"),
                                       (["--targets", "zx81"], "unknown target")])
def test_bad_options_one_line(tmp_path, capsys, extra, msg):
    rc = main(["explore", *FAST, *extra, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("sparseflow: error: ") and msg in err[0], err
    assert not (tmp_path / "o").exists()


def test_merge_shards_weights_cycles_by_images():
    from scripts.cmd_run import merge_shards
    rng = np.random.default_rng(SEED)

    def part(n, cyc, bad):
        return {"logits": rng.integers(0, 9, (n, 3)), "golden": rng.integers(0, 9, (n, 3)), "mismatches": bad,
                "layers": [{"name": "fc", "mismatches": bad, "outputs": 3 * n,
                            "cycles": {"eie": {"per_inference": cyc, "per_vector": cyc, "images": n}}}]}
    a, b = part(3, 10.0, 1), part(1, 30.0, 0)
    m = merge_shards([a, b])
    assert np.array_equal(m["logits"], np.concatenate([a["logits"], b["logits"]]))
    assert m["mismatches"] == 1 and m["layers"][0]["outputs"] == 12
    assert m["layers"][0]["cycles"]["eie"] == {"images": 4, "per_inference": 15.0, "per_vector": 15.0}


@pytest.mark.slow
def test_run_sharded_equals_in_process(net_files, tmp_path, capsys):
    import json
    net, data = net_files
    out = tmp_path / "c"
    assert main(["compile", "--model", str(net), "--data", str(data), "--out", str(out), "--epochs", "0",
                 "--rounds", "1", "--calib", "16"]) == 0
    capsys.readouterr()
    results = []
    for extra in ([], ["--workers", "2"]):
        assert main(["run", str(out), "--data", str(data), "--compare", "4", "--json", *extra]) == 0
        results.append(json.loads(capsys.readouterr().out))
    for r in results:
        r.pop("seconds")
    # equal, up to the rounding of the image-weighted cycle averages
    assert json.loads(json.dumps(results[0]), parse_float=lambda v: round(float(v), 6)) == \
        json.loads(json.dumps(results[1]), parse_float=lambda v: round(float(v), 6))


def _results(out: Path) -> tuple[list, list]:
    """``points.csv`` without its key column and the store's (kind, config, result, blob) rows, keys
    (which hash the code version) left out: what a sweep computed, however it was scheduled."""
    import csv
    import json
    with open(out / "points.csv") as fh:
        points = sorted(json.dumps({k: v for k, v in r.items() if k != "key"}, sort_keys=True)
                        for r in csv.DictReader(fh))
    with sqlite3.connect(out / "results.sqlite") as c:
        rows = sorted((kind, json.dumps({k: v for k, v in json.loads(cfg).items() if k != "cost"}, sort_keys=True),
                       res, blob or b"") for kind, cfg, res, blob in
                      c.execute("SELECT kind, config, result, blob FROM results"))
    return points, rows


def test_local_background_cluster_same_results_as_a_farm(net_files, farm_cluster, tmp_path, capsys):
    """A fresh sweep on a local cluster started in the background (1 worker, warmed while the
    network trains) stores the same rows and points as on a farm's 2 workers."""
    net, data = net_files
    addr, _ = farm_cluster
    outs = {}
    for name, extra in (("farm", ["--cluster", addr]), ("local", ["--workers", "1"])):
        outs[name] = tmp_path / name
        assert main(["explore", "--model", str(net), "--data", str(data), *FAST, *extra, "--out", str(outs[name])]) == 0
    capsys.readouterr()
    farm, local = _results(outs["farm"]), _results(outs["local"])
    assert len(farm[0]) == 8 and len(farm[1]) == 1 + 1 + 6 + 8  # graph, compile, cost, point rows
    assert local == farm
