# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist workers for `make test` (TEST_WORKERS=0: one process, as `.venv/bin/pytest` runs).
TEST_WORKERS ?= 2

.PHONY: build demo run test lint bench live-bench delivery-bench sample chaos clean

# The install builds the compiled detector core too (setup.py), or says why it uses pure Python.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Rebuild the compiled core when a compiled module's source changed since it was built.
build: $(STAMP)
	@$(BIN)/python -c "import detector, sys; sys.exit(bool(detector.stale_core_modules()))" \
		|| $(BIN)/python setup.py --quiet build_ext --inplace

demo: build
	$(BIN)/arbwatch demo --duration 30

run: build
	$(BIN)/arbwatch run

test: build
	$(BIN)/ruff check detector bot tests scripts
	$(BIN)/ruff format --check detector bot tests scripts
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check --fix detector bot tests scripts
	$(BIN)/ruff format detector bot tests scripts

bench: build
	$(BIN)/arbwatch bench

# The scripts need the venv's Python: `make live-bench LOAD=high`, `make delivery-bench USERS=10000`.
LOAD ?= normal
USERS ?= 2000

live-bench: build
	$(BIN)/python scripts/live_bench.py --load $(LOAD)

delivery-bench: build
	$(BIN)/python scripts/delivery_bench.py --users $(USERS)

chaos: build
	$(BIN)/python scripts/chaos.py --kills 20

sample: build
	$(BIN)/python scripts/make_sample.py samples/sample.jsonl.gz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info build
	find detector -name "*.so" -delete
