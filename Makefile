# One-command entry points. `make test` and `make demo` set the machine up themselves.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.setup-done
SHELL   := /bin/bash

.PHONY: setup test test-all demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup_system.sh
	bash scripts/setup_system.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e .
	$(PY) -m verif.tools check
	touch $(STAMP)

# The regression CI runs: everything but the long sweeps marked `slow`.
test: setup
	$(PY) -m pytest -n 2 -q -rs -m "not slow" $(PYTEST_ARGS)

# Everything, the slow sweeps included.
test-all: setup
	$(PY) -m pytest -n 2 -q -rs $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/sparseflow demo $(DEMO_ARGS)

clean:
	rm -rf build .pytest_cache
