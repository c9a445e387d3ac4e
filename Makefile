# justice-linkage: every target sets itself up from a bare machine (creates .venv on first use).
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
DEMO      ?= demo
PERSONS   ?= 2000

.PHONY: demo test test-fast bench lint fmt clean venv

venv: $(STAMP)

# The token HMAC is a C extension over OpenSSL (src/linkage/tokens/_hmac64.c): building it needs a C
# compiler and OpenSSL's headers, installed here on Debian/Ubuntu when missing (sudo unless root).
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml src/linkage/tokens/_hmac64.c
	if command -v dpkg >/dev/null && ! dpkg -s libssl-dev >/dev/null 2>&1; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q libssl-dev; fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,spark]'
	touch $(STAMP)

## demo: synthetic data through the whole chain, embedded DuckDB (see README)
demo: $(STAMP)
	DEMO=$(DEMO) PERSONS=$(PERSONS) BIN=$(BIN) bash scripts/demo.sh

## test: the full suite, slow tests included (what CI runs)
test: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/python -m pytest -n 2 --timeout 900

## test-fast: skip tests marked slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow"

## bench: benchmarks; machine-readable results in scripts/results/
bench: $(STAMP)
	$(BIN)/python scripts/bench_pseudonymise.py --rows 1000000 --rows 4000000
	$(BIN)/python scripts/bench_link.py --persons 40000 --persons 400000
	$(BIN)/python scripts/bench_scale.py
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python scripts/bench_accuracy.py

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache .hypothesis
