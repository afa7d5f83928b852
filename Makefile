# The README's commands. Each target installs what it needs first, so both
# work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VS     := $(BIN)/vitalstream
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit lint bench stack-up stack-down clean vendor-js

setup: $(VENV)/.installed system-packages kafka-jars

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system-packages:
	bash docker/native/install-system-packages.sh

kafka-jars: $(VENV)/.installed
	$(BIN)/python -c "from pathlib import Path; from streams.ops.kafka import ensure_kafka_jars; ensure_kafka_jars(Path('docker/kafka/lib'))"

# Starts the native stack, runs unit + integration tests, stops the stack even when tests fail.
test: setup
	$(VS) stack run -- $(BIN)/pytest tests $(PYTEST_ARGS)

# Unit tests only: no services needed.
test-unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# Starts the stack, runs gateway + worker + simulated devices for a bounded time,
# prints what was read back from InfluxDB, stops everything.
demo: setup
	$(VS) demo

bench: setup
	$(VS) stack run -- $(BIN)/python -m benchmarks

stack-up: setup
	$(VS) stack up

stack-down:
	$(VS) stack down

# Pinned, so a new release of either cannot turn CI red on its own.
lint: $(VENV)/.installed
	$(BIN)/pip install -q ruff==0.17.6 mypy==2.4.1
	$(BIN)/ruff check analytics devices streams tests benchmarks
	$(BIN)/mypy

# The console's browser libraries (uPlot, idiomorph) from npm, pinned and hash-checked, into the package
# (committed: no npm and no CDN needed at install or run time).
vendor-js:
	$(PYTHON) -m streams.console.vendor

clean: stack-down
	rm -rf .stack
