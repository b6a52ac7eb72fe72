# Every target sets up what it needs, so a fresh clone works with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv test lint demo bench clean wheel wheel-smoke

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check connector tests bench
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python -m connector.demo

bench: $(STAMP)
	$(BIN)/python -m bench

# The wheel an agency installs (dist/), and CI's check of it: a fresh venv without test
# tools, outside the checkout (.ci/wheel-smoke).
wheel: $(STAMP)
	$(BIN)/pip wheel -q --no-deps -w dist .

wheel-smoke:
	.ci/wheel-smoke

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
