"""SymbiYosys k-induction proof of the 2:4 MAC against the decompressed dense dot product."""
import pytest

from model.config import Arith
from verif.formal.sparse24_mac import run_proof


def test_mac_equals_dense_dot_product(tmp_path):
    # Small widths keep the solver fast; the proof is width-generic in structure.
    status, log = run_proof(tmp_path, Arith(weight_bits=4, act_bits=4, max_cols=8), depth=2)
    assert status == "PASS", log[-3000:]
    assert "successful proof by k-induction" in log


@pytest.mark.slow
@pytest.mark.parametrize("valid_meta", [True, False])
def test_mac_proof_at_default_widths(tmp_path, valid_meta):
    status, log = run_proof(tmp_path, Arith(weight_bits=8, act_bits=16, max_cols=1024), valid_meta=valid_meta)
    assert status == "PASS", log[-3000:]



def test_proof_is_not_vacuous(tmp_path):
    """A reference that pairs each kept weight with the other position must be refuted."""
    status, log = run_proof(tmp_path, Arith(weight_bits=3, act_bits=3, max_cols=4), depth=2, mutant=True)
    assert status == "FAIL", log[-3000:]
