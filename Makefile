# Two commands matter: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs the ~250 packages (6.7 GB with torch's CUDA wheels) in about half a
# minute where pip took six: parallel downloads, no per-file bytecode compile.
UV := $(BIN)/uv pip install --python $(BIN)/python --constraint requirements/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install lint demo test test-unit test-integration bench up down status clean

install: $(STAMP)

# Re-run only when the dependency declarations change: installing twice is a no-op.
# MinIO compiles from source (minutes, once) in the background while pip downloads:
# `triptych up` waits for that build and shows its progress (src/triptych/stack/prebuild.py).
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@PYTHONPATH=src nohup $(PYTHON) -m triptych.stack.prebuild >/dev/null 2>&1 &
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" uv
	@echo "installing the Python packages with uv (torch and its CUDA libraries are most of it: under a minute on a fast link)"
	$(UV) --editable '.[test]'
	@touch $@

# The main job: stack + functions up, champions trained if missing, the labelled
# stream in, the live view on (Ctrl-C stops the stream; the stack keeps running).
demo: install
	$(BIN)/triptych demo

# The lint gate, CI's first step (no server starts): ruff's linter and formatter,
# mypy (strict on sdk, contracts, observe, stats), the import-linter layers, the docs site.
LINTED := src dash_app tests functions projects infra
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy src/triptych dash_app
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: install
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

test-integration: install
	$(BIN)/pytest tests/integration

# Throughput, latency by stage, CPU and memory per process, on the running stack
# (`make up` and champions first; `triptych bench --help` for sizes and backends).
bench: install
	$(BIN)/triptych bench

up: install
	$(BIN)/triptych up

down: install
	$(BIN)/triptych down

status: install
	$(BIN)/triptych status

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
