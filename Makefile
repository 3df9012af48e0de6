# Two commands for a fresh machine: `make run` (the main job on the embedded default) and `make test` (everything).
# Point the tests at your own servers with e.g. `make test POSTGRESQL=postgresql+psycopg://me@db:5432/marconi`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

SQLITE_FILE ?= $(CURDIR)/.marconi-test.db
POSTGRESQL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
MARIADB ?= mysql+pymysql://root@127.0.0.1:3306/test
REDIS ?= redis://127.0.0.1:6379/1
URIS ?= memory:// sqlite:// sqlite:///$(SQLITE_FILE) $(POSTGRESQL) $(MARIADB) $(REDIS)

# The MongoDB driver: the conformance suite and its own tests on a SecantusDB the servers wrapper starts, or on
# $(MARCONI_MONGODB_URI) when it is set (e.g. a real mongod: mongodb://host:27017/marconi_test?replicaSet=rs0).
MONGODB_TESTS := --pyargs marconi.tests.conformance marconi.tests.transport marconi_drivers.mongodb
ifdef MARCONI_MONGODB_URI
MONGODB_RUN = $(BIN)/pytest $(MONGODB_TESTS) '--marconi-uri=$(MARCONI_MONGODB_URI)'
else
MONGODB_RUN = $(BIN)/python -m marconi.tests.servers --with secantusdb -- $(BIN)/pytest $(MONGODB_TESTS) --marconi-uri={secantusdb}
endif

.PHONY: run test lint install clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[all,testing,dev]'
	touch $@

install: $(BIN)/.installed

# The main job: the conformance suite against SQLite (a file next to this Makefile), with a summary.
run: $(BIN)/.installed
	rm -f $(CURDIR)/marconi-check.db*
	$(BIN)/marconi check sqlite:///$(CURDIR)/marconi-check.db

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every test on every backend in URIS; an unreachable backend fails the run, it is never skipped. Then the suite
# again on a 3-master Redis Cluster it starts (the tests that start servers of their own ran once already).
test: lint
	rm -f $(SQLITE_FILE)*
	$(BIN)/pytest --pyargs marconi.tests marconi_drivers $(foreach uri,$(URIS),--marconi-uri=$(uri))
	$(MONGODB_RUN)
	$(BIN)/python -m marconi.tests.servers --with redis-cluster -- $(BIN)/pytest --pyargs marconi.tests.conformance \
		marconi_drivers.redis -m "not own_servers" --marconi-uri={redis-cluster}

clean:
	rm -rf $(VENV) *.egg-info .marconi-test.db* marconi-check.db*
