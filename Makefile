# Two commands for a fresh machine: `make run` (the default benchmark) and `make test` (everything).
# Point the tests at your own servers with e.g. `make test POSTGRESQL=postgresql+psycopg://me@db:5432/marconi`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

SQLITE_FILE ?= $(CURDIR)/.marconi-test.db
POSTGRESQL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
MARIADB ?= mysql+pymysql://root@127.0.0.1:3306/test
URIS ?= memory:// sqlite:// sqlite:///$(SQLITE_FILE) $(POSTGRESQL) $(MARIADB)

.PHONY: run test lint install clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[all,testing,dev,bench]'
	touch $@

install: $(BIN)/.installed

# The main job: the default benchmark, on the embedded SQLite (and the memory driver) plus every other backend it
# can reach, ending with the table (bench-results/ has the JSON and the chart). The conformance summary of a driver
# is `marconi check URI`.
BENCH_OUTPUT ?= bench-results
run: $(BIN)/.installed
	$(BIN)/marconi bench --reachable $(POSTGRESQL) --reachable $(MARIADB) --output $(BENCH_OUTPUT)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every test on every backend in URIS; an unreachable backend fails the run, it is never skipped.
test: lint
	rm -f $(SQLITE_FILE)*
	$(BIN)/pytest --pyargs marconi.tests marconi_drivers marconi_benchmarks $(foreach uri,$(URIS),--marconi-uri=$(uri))

clean:
	rm -rf $(VENV) *.egg-info .marconi-test.db* marconi-check.db* $(BENCH_OUTPUT)
