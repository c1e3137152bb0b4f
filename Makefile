# Two commands matter: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --constraint requirements/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit test-integration bench up down status clean

install: $(STAMP)

# Re-run only when the dependency declarations change: installing twice is a no-op.
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel setuptools
	$(PIP) --quiet --editable '.[test]'
	@touch $@

# The main job: stack + functions up, champions trained if missing, the labelled
# stream in, the live view on (Ctrl-C stops the stream; the stack keeps running).
demo: install
	$(BIN)/triptych demo

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
