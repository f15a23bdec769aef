"""Reproducible randomness for every test.

Tests draw their data from generators they seed themselves. Anything that still draws from a
global generator (a PyTorch module's default initialisation, a library) starts from ``SEED``
in every test, whatever ran before it, and Hypothesis draws the same examples on every run
(``derandomize``). A failing test's report names the seed.
"""
import random
import sys

import numpy as np
import pytest
from hypothesis import settings

SEED = 0

settings.register_profile("sparseflow", derandomize=True)
settings.load_profile("sparseflow")


@pytest.fixture(autouse=True)
def _seeded_global_generators():
    random.seed(SEED)
    np.random.seed(SEED)
    torch = sys.modules.get("torch")  # not imported here: most tests never need it
    if torch is not None:
        torch.manual_seed(SEED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.failed:
        report.sections.append(("seed", f"global generators (random, numpy, torch) seeded with {SEED}; "
                                        f"Hypothesis derandomized"))
