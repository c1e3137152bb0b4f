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
# MinIO compiles from source (minutes, once) in the background while pip downloads:
# `triptych up` waits for that build and shows its progress (src/triptych/stack/prebuild.py).
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@PYTHONPATH=src nohup $(PYTHON) -m triptych.stack.prebuild >/dev/null 2>&1 &
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel setuptools
	@echo "installing the Python packages (torch is the big one: a few minutes the first time)"
	set -o pipefail; $(PIP) --progress-bar off --editable '.[test]' | awk '/^Collecting/ {print; fflush()} /^Successfully installed/ {print "installed " NF - 2 " packages"} /^Installing collected/ {print "unpacking them (torch is ~3 GB: a few minutes, quiet)"; fflush()}'
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
