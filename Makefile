# `make demo` and `make test` work on a fresh machine with Python 3.11+, node and apt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv system-deps lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

# Debian's PostgreSQL for the store tests (as root with apt); elsewhere those tests skip with a reason.
system-deps:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's postgresql…"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "note: not root with apt, so PostgreSQL is not installed; its tests will skip"; fi

demo: venv
	$(BIN)/mlo demo

test: venv system-deps
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/tracking.py

clean:
	rm -rf $(VENV) build .pytest_cache
