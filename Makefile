# Everyday tasks. `make install` once, then `make server` and `make client`.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 9999

.PHONY: install test lint format server client bench soak clean

install:
	$(PYTHON) -m pip install -e '.[dev]'

test:
	$(PYTHON) -m pytest -q

lint:
	ruff check nexus tests bench
	ruff format --check nexus tests bench
	mypy nexus

format:
	ruff format nexus tests bench
	ruff check --fix nexus tests bench

server:
	nexus-server --host $(HOST) --port $(PORT)

client:
	nexus-chat $(HOST) $(PORT)

bench:
	$(PYTHON) -m bench

# Longer crash loops than CI runs.
soak:
	NEXUS_CRASH_ROUNDS=200 $(PYTHON) -m pytest -q -m slow

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
