# The two commands of the README's quick start, and what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# make demo PORT=8081
PORT ?= 8080

.PHONY: install demo test lint check bench clean

# Runtime dependencies at the versions the runtime image gets (constraints.txt, scripts/lock).
$(BIN)/dockyard: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -c constraints.txt
	touch $(BIN)/dockyard

install: $(BIN)/dockyard

# Serve the examples on http://127.0.0.1:$(PORT) (state in .dockyard/state.db); Ctrl+C drains and stops.
demo: install
	$(BIN)/dockyard serve --config examples/dockyard.yaml --port $(PORT)

# scripts/test: $(BIN)/python -m pytest -n 2 --dist loadfile
test: install
	VENV=$(VENV) scripts/test

# scripts/check: ruff, ruff format, mypy, import-linter, import cycles (what CI runs too).
lint: install
	VENV=$(VENV) scripts/check

check: lint

bench: install
	$(BIN)/python bench/serve_overhead.py

clean:
	rm -rf $(VENV) .dockyard .pytest_cache
