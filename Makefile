# Everyday tasks: `make run` starts a server, `make test` runs the suite.
#
# Everything runs from a virtual environment in .venv, made on first use:
# Debian's and Ubuntu's python3 refuse system-wide pip installs (PEP 668),
# and a venv needs no activation when its programs are called by path.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 9999

# Recipes (and the tests they start) find the venv's programs first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test install lint format server client bench soak clean

# The programs alone (what `make run` needs), or with the test and lint tools.
RUNTIME := $(VENV)/.runtime
DEV := $(VENV)/.dev

run: $(RUNTIME)
	@echo "Starting nexus-server on $(HOST):$(PORT); Ctrl-C stops it."
	@echo "Start a client from another terminal:  $(BIN)/nexus-chat $(HOST) $(PORT)"
	$(BIN)/nexus-server --host $(HOST) --port $(PORT)

# On every core (pytest-xdist, each worker with its own PostgreSQL cluster),
# then the few tests that time themselves by the wall clock, with no
# neighbour on the other cores.
test: $(DEV)
	$(BIN)/python -m pytest -q -n auto -m "not alone"
	$(BIN)/python -m pytest -q -m alone

install: $(DEV)

lint: $(DEV)
	$(BIN)/ruff check nexus tests bench
	$(BIN)/ruff format --check nexus tests bench
	$(BIN)/mypy nexus

format: $(DEV)
	$(BIN)/ruff format nexus tests bench
	$(BIN)/ruff check --fix nexus tests bench

server: run

client: $(RUNTIME)
	$(BIN)/nexus-chat $(HOST) $(PORT)

bench: $(DEV)
	$(BIN)/python -m bench

# Longer crash loops than CI runs.
soak: $(DEV)
	NEXUS_CRASH_ROUNDS=200 $(BIN)/python -m pytest -q -m slow

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .hypothesis

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "make: '$(PYTHON) -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2; \
	  exit 1; }

# Reinstalled when pyproject.toml changes (new dependencies).
$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUNTIME)
