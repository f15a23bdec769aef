"""SymbiYosys k-induction proof of the 2:4 MAC against the decompressed dense dot product."""

from model.hw.config import Arith
from verif.formal.sparse24_mac import run_proof


def test_mac_equals_dense_dot_product(tmp_path):
    # Small widths keep the solver fast (the datapath is width-generic; at 6 bits and up the
    # multiplier equivalence takes yices minutes).
    status, log = run_proof(tmp_path, Arith(weight_bits=4, act_bits=4, max_cols=8), depth=2)
    assert status == "PASS", log[-3000:]
    assert "successful proof by k-induction" in log


def test_mac_any_metadata_matches_sum_semantics(tmp_path):
    """Without the p0 < p1 assumption: the documented v0*a[p0] + v1*a[p1] for any metadata."""
    status, log = run_proof(tmp_path, Arith(weight_bits=3, act_bits=3, max_cols=4), valid_meta=False, depth=2)
    assert status == "PASS", log[-3000:]

def test_proof_is_not_vacuous(tmp_path):
    """A reference that pairs each kept weight with the other position must be refuted."""
    status, log = run_proof(tmp_path, Arith(weight_bits=3, act_bits=3, max_cols=4), depth=2, mutant=True)
    assert status == "FAIL", log[-3000:]
