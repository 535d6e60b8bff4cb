# The two commands of the README's quick start, and what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# make demo PORT=8081
PORT ?= 8080

.PHONY: install demo test lint check bench bench-deps bench-prefect clean

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

# The benchmark suite (bench/README.md): ≤ 15 min on 2 cores; bench/results/report.md and PNGs.
# The results are written (and reported) even when a scenario failed; the exit status says so.
bench-deps: install
	$(BIN)/pip install --quiet -e '.[bench]' -c constraints.txt

bench: bench-deps
	$(BIN)/python bench/suite.py; status=$$?; \
	$(BIN)/python bench/report.py && $(BIN)/python bench/plots.py && exit $$status

# The same scenarios on Prefect's flow.serve (bench/prefect_suite.py installs Prefect into
# bench/.venv-prefect), then one table with both; runs the dockyard suite first if needed.
bench-prefect: bench-deps
	test -f bench/results/dockyard.json || $(BIN)/python bench/suite.py || true
	$(BIN)/python bench/prefect_suite.py; status=$$?; \
	$(BIN)/python bench/report.py && $(BIN)/python bench/plots.py && exit $$status

clean:
	rm -rf $(VENV) .dockyard .pytest_cache
