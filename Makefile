# The two commands: `make demo` and `make test`. Each creates or updates .venv as needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint system-deps clean bench bench-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/mailer demo

system-deps:
	bash scripts/system-deps.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: system-deps $(VENV)/.installed-test lint
	$(BIN)/pytest

bench-deps:
	bash scripts/bench-deps.sh

# Every benchmark (~17 min); `make bench BENCH_ARGS=--quick` runs in about 2 minutes.
bench: bench-deps $(VENV)/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache
