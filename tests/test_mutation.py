"""Mutation screening (verif/mutation.py): the mutated netlist at ``mutsel = 0`` is the design,
known-bad mutants are killed by the screen, and the report adds up."""
import numpy as np
import pytest

from verif import mutation

SEED = 1


@pytest.fixture(scope="module")
def lanes_report(tmp_path_factory):
    # A dozen mutants of the 2:4 engine: one netlist, one native build, one screen per mutant.
    return mutation.mutate_engine("2:4", 12, SEED, workers=2, work=tmp_path_factory.mktemp("mut"), long_runs=False)


def test_report_adds_up_and_kills(lanes_report):
    r = lanes_report
    print(f"seed {SEED}; work {r['work']}")
    c = r["counts"]
    assert r["mutants"] == 12 and c["killed"] + c["timed out"] + c["survived"] == 12
    assert c["killed"] >= 6, c  # most single-bit faults in a datapath change a result
    for m in r["mutations"]:
        assert m["command"].startswith("mutate -mode ") and m["index"] >= 1
        if m["status"] == "killed":
            assert m["run"] in r["runs"] and m["why"]
    assert sum(s["killed"] + s["timed out"] + s["survived"] for s in r["by_src"]) == 12
    assert any(s["src"].startswith("rtl/") for s in r["by_src"])


def test_mutsel_zero_is_the_design_and_a_known_fault_is_killed(lanes_report):
    """mutsel 0 passes the whole screen and equals the unmutated build (mutate_engine checks it
    before any mutant; here again by hand); a mutant the screen killed fails again on its own,
    and the judge names the golden model for a corrupted result."""
    from verif import native
    work = mutation.Path(lanes_report["work"])
    t = mutation.target("2:4", long_runs=False)
    muts = mutation.mutations(work, 12, SEED)
    exe = native.build_verilog(mutation.mutated_verilog(work, muts), toplevel=t.toplevel, eie=False, mutsel=True)
    ref = mutation.reference_run(t, exe, 0)
    assert mutation.same_results(ref, mutation.reference_run(t, native.build(t.component, toplevel=t.toplevel,
                                                                             eie=False), None)) is None
    killed = next(m for m in lanes_report["mutations"] if m["status"] == "killed")
    again = mutation.screen(t, exe, killed["index"], ref, timeout=60)
    assert again["status"] == "killed" and again["why"] == killed["why"]
    run = t.runs[0]
    bad = [dict(r, y=r["y"] + np.eye(*r["y"].shape, dtype=np.int64)) for r in ref[run.name]]
    assert mutation.judge(t, run, bad, ref[run.name]).startswith("golden model: job 0 y[0, 0]")
    slow = [dict(r, cycles=[c + 1 for c in r["cycles"]]) for r in ref[run.name]]
    assert mutation.judge(t, run, slow, ref[run.name]).startswith("original design's counters: job 0 cycles")


def test_cli_rejects_bad_arguments():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    for args, msg in ((["--engine", "fft"], "argument --engine: invalid choice: 'fft'"),
                      (["--mutants", "0"], "--mutants must be in 1..4095, not 0")):
        p = subprocess.run([sys.executable, "-m", "benchmarks.mutation", *args], cwd=root, capture_output=True,
                           text=True)
        assert p.returncode == 2 and p.stdout == "", args
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("sparseflow: error: ") and msg in p.stderr, p.stderr


def test_every_engine_of_the_registry_has_a_screening_set(monkeypatch):
    """The screen takes its engines from model.hw.engines; one without its own target gets the
    board self-test's case (so a new engine is screened, weakly, before it has one)."""
    from model.hw.engines import NAMES
    assert mutation.ENGINES == NAMES
    for name in NAMES:
        t = mutation.target(name, long_runs=False)
        assert t.runs and all(not r.long for r in t.runs) and t.name == name
    assert any(r.long for r in mutation.target("2:4").runs)
    monkeypatch.delitem(mutation.TARGETS, "dense")
    t = mutation.target("dense")
    assert [r.name for r in t.runs] == ["board case, paced 1.0", "board case, paced 0.5"] and not t.eie
    with pytest.raises(mutation.SparseFlowError, match=r"^unknown engine 'fft'; choose one of eie, 2:4, dense"):
        mutation.target("fft")


def test_equivalent_table_matches_mutations_not_indices():
    from verif.equivalent_mutants import EQUIVALENT, key, mark
    cmd, how = next(iter(EQUIVALENT["dense"].items()))
    rows = [{"index": 7, "command": cmd.replace(" -port", " -src /x/rtl/a.py:1 -port", 1), "status": "survived"},
            {"index": 8, "command": cmd, "status": "killed"},
            {"index": 9, "command": cmd + "9", "status": "survived"}]
    assert key(rows[0]["command"]) == cmd
    mark({"engine": "dense", "mutations": rows})
    assert rows[0]["equiv_method"] == how[0] and rows[0]["equivalent"].startswith(how[0] + ": ")
    assert "equivalent" not in rows[1] and "equivalent" not in rows[2]
    c = mutation._counts(rows)
    assert c["equivalent"] == 1 and c["score"] == 50.0
    assert c["equivalent_checked"] == (how[0] == "formal")
