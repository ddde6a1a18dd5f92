# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin

.PHONY: install demo test lint typecheck bench drills clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/flowdesk demo

test: install lint
	$(PY) -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(PY) -m bench.run

# Crash, outage and burst drills against private servers; prints lost/duplicated per drill.
drills: install
	$(PY) -m drills.run $(DRILLS_ARGS)

clean:
	rm -rf $(VENV) .flowdesk .mypy_cache .ruff_cache .pytest_cache
