"""The formal proofs of verif/formal (SymbiYosys, yices): each proof PASSes and each
deliberately broken design FAILs it (the non-vacuity check). Proofs that take over a minute
are marked ``slow``; ``python -m verif.formal.suite`` prints every proof's run time."""
import pytest

from verif.formal.sby import run
from verif.formal.suite import PROOFS


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name, marks=[pytest.mark.slow] if e.slow else [])
                                   for e in PROOFS])
def test_proof(entry, tmp_path):
    proof = entry.factory()
    res = run(proof, tmp_path, timeout=3600)
    assert res.status == entry.expect, f"{entry.name}: {res.status}, expected {entry.expect}\n{res.tail}"
    if entry.expect == "PASS" and proof.mode == "prove":
        assert "successful proof by k-induction" in res.log, res.tail
