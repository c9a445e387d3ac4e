# justice-linkage: every target sets itself up from a bare machine (creates .venv on first use).
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
DEMO      ?= demo
PERSONS   ?= 2000

.PHONY: demo test test-fast bench lint typecheck fmt clean venv venv-demo

# Each target installs what it needs (pyproject.toml's extras follow the zones, docs/install.md):
#   make demo      .[all]                    link + release + synth, no Spark, no test tools
#   make test      .[all,spark,bench,dev]    everything CI checks: Spark, the public benchmark sets
# The stamps remember what is installed; editing pyproject.toml reinstalls.
venv: $(VENV)/.installed-test
venv-demo: $(VENV)/.installed-demo

# The token HMAC has an optional C extension over OpenSSL (src/linkage/tokens/_hmac64.c). Where a C
# compiler and OpenSSL's headers can be had it is built (tests then check both HMAC paths); without them
# the install still succeeds and uses the pure-Python path. On Debian the headers are installed here.
TEST_EXTRAS := all,spark,bench,dev
DEMO_EXTRAS := all
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define install
	if command -v dpkg >/dev/null && ! dpkg -s libssl-dev >/dev/null 2>&1; then \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q libssl-dev) \
		|| echo "note: no OpenSSL headers; the pure-Python HMAC path will be used"; fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(1)]'
	touch $@
endef

$(VENV)/.installed-test: pyproject.toml src/linkage/tokens/_hmac64.c
	# tests/test_report_browser.py renders report.html in Debian's chromium (driven by playwright)
	if command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; fi
	$(call install,$(TEST_EXTRAS))

$(VENV)/.installed-demo: pyproject.toml src/linkage/tokens/_hmac64.c
	$(call install,$(DEMO_EXTRAS))

## demo: synthetic data through the whole chain, embedded DuckDB (see README)
demo: $(if $(wildcard $(VENV)/.installed-test),$(VENV)/.installed-test,$(VENV)/.installed-demo)
	DEMO=$(DEMO) PERSONS=$(PERSONS) BIN=$(BIN) bash scripts/demo.sh

## test: lint, type check and the full suite, slow tests included (what CI runs)
test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --timeout 900

## test-fast: skip tests marked slow
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2 -m "not slow"

## bench: benchmarks; machine-readable results in scripts/results/
bench: $(VENV)/.installed-test
	$(BIN)/python scripts/bench_pseudonymise.py --rows 1000000 --rows 4000000
	$(BIN)/python scripts/bench_link.py --persons 40000 --persons 400000
	$(BIN)/python scripts/bench_scale.py
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python scripts/bench_accuracy.py

## lint: ruff and the type checker (mypy over src/, configured in pyproject.toml)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

fmt: $(VENV)/.installed-test
	$(BIN)/ruff check --fix src tests scripts
	$(BIN)/ruff format src tests scripts

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache .hypothesis
