# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo run test lint bench live-bench delivery-bench sample chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/arbwatch demo --duration 30

run: $(STAMP)
	$(BIN)/arbwatch run

test: $(STAMP)
	$(BIN)/ruff check detector bot tests scripts
	$(BIN)/ruff format --check detector bot tests scripts
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check --fix detector bot tests scripts
	$(BIN)/ruff format detector bot tests scripts

bench: $(STAMP)
	$(BIN)/arbwatch bench

# The scripts need the venv's Python: `make live-bench LOAD=high`, `make delivery-bench USERS=10000`.
LOAD ?= normal
USERS ?= 2000

live-bench: $(STAMP)
	$(BIN)/python scripts/live_bench.py --load $(LOAD)

delivery-bench: $(STAMP)
	$(BIN)/python scripts/delivery_bench.py --users $(USERS)

chaos: $(STAMP)
	$(BIN)/python scripts/chaos.py --kills 20

sample: $(STAMP)
	$(BIN)/python scripts/make_sample.py samples/sample.jsonl.gz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
