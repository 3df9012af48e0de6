# Two commands for a fresh machine: `make run` (the default benchmark) and `make test` (everything).
# Point the tests at your own servers with e.g. `make test POSTGRESQL=postgresql+psycopg://me@db:5432/marconi`,
# or run exactly some drivers with `make test URIS="sqlite:////tmp/x.db redis://me@host:6379/5"`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

SQLITE_FILE ?= $(CURDIR)/.marconi-test.db
POSTGRESQL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
MARIADB ?= mysql+pymysql://root@127.0.0.1:3306/test
REDIS ?= redis://127.0.0.1:6379/1
# The verify runs kill every connection to their database: they get databases of their own (created if missing).
POSTGRESQL_VERIFY ?= postgresql+psycopg://postgres@127.0.0.1:5432/marconi_verify
MARIADB_VERIFY ?= mysql+pymysql://root@127.0.0.1:3306/marconi_verify
REDIS_VERIFY ?= redis://127.0.0.1:6379/2
# Operations per URI in the verify runs of `make test` (half without faults, half with; the memory driver and an
# in-memory SQLite, whose workers are threads, all without): 100,000 on those two and 20,000 on the others, the
# full sizes (a few of the operations asked for are not recorded as checked ones, hence the margins). The 20,000
# cost a whole `make test` about 1.4x the time of 6,000 on a quiet machine (347 s against 248 s, one run each);
# a quick local run: `make test VERIFY_OPS=2000 VERIFY_OPS_EMBEDDED=10000`.
VERIFY_OPS ?= 20400
VERIFY_OPS_EMBEDDED ?= 105000
# A MongoDB server of your own (e.g. mongodb://host:27017/marconi_test?replicaSet=rs0); unset, the tests start a
# SecantusDB wire server themselves.
MARCONI_MONGODB_URI ?= {secantusdb}
# Parts of `make test` run side by side, each on its own backend, each printing its output whole when it ends.
JOBS ?= 6

SUITE := $(BIN)/pytest -q --pyargs marconi.tests marconi_drivers -m "not verify"
# `marconi verify` runs (marconi/tests/test_verify.py and the drivers' own, on servers they start): parts of their
# own, so they run beside the suites.
VERIFY_SUITE := $(BIN)/pytest -q -m verify --pyargs marconi.tests marconi_drivers
VERIFY = env MARCONI_VERIFY_OPS=$(VERIFY_OPS) $(VERIFY_SUITE)
SERVERS := $(BIN)/python -m marconi.tests.servers
ifeq ($(MARCONI_MONGODB_URI),{secantusdb})
WITH_MONGODB := $(SERVERS) --with secantusdb --
endif
# The suites first, then the verify runs, whose worker processes would crowd the suites' CPU if they started
# together (an order that started them first took 10 minutes where this one takes 6).
PARTS := embedded sqlite postgresql mariadb redis redis-cluster mongodb bench \
	verify-embedded verify-sqlite verify-postgresql verify-mariadb verify-redis verify-mongodb
ifdef URIS
PARTS := uris
endif

.PHONY: run test lint install clean $(PARTS:%=test-%)

# Zaqar's own Redis driver (Redis's peer in the benchmark) gets a virtualenv of its own, once per machine, in
# ~/.cache/marconi-bench (or $MARCONI_ZAQAR_VENV), from benchmarks/peers/zaqar-requirements.txt: the benchmark's
# tests then need no network.
$(BIN)/.installed: setup.cfg pyproject.toml benchmarks/peers/zaqar-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[all,testing,dev,bench]'
	$(BIN)/python -m marconi_benchmarks.peers.zaqar
	touch $@

install: $(BIN)/.installed

# The main job: the default benchmark, on the embedded SQLite (and the memory driver) plus every other backend it
# can reach, ending with the table (bench-results/ has the JSON and the chart). The conformance summary of a driver
# is `marconi check URI`.
BENCH_OUTPUT ?= bench-results
run: $(BIN)/.installed
	$(BIN)/marconi bench --reachable $(POSTGRESQL) --reachable $(MARIADB) --reachable $(REDIS) --output $(BENCH_OUTPUT)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every test on every backend; an unreachable backend fails the run, it is never skipped. Each part is one
# pytest run on one backend (the driver-independent tests run once, in the embedded part).
test: lint
	@$(MAKE) --no-print-directory --keep-going -j$(JOBS) --output-sync=target $(PARTS:%=test-%)

test-embedded:
	$(SUITE) --marconi-uri=memory:// --marconi-uri=sqlite://
test-sqlite:
	rm -f $(SQLITE_FILE)*
	$(SUITE) --marconi-drivers-only --marconi-uri=sqlite:///$(SQLITE_FILE)
test-postgresql:
	$(SUITE) --marconi-drivers-only --marconi-uri=$(POSTGRESQL)
test-mariadb:
	$(SUITE) --marconi-drivers-only --marconi-uri=$(MARIADB)
test-redis:
	$(SUITE) --marconi-drivers-only --marconi-uri=$(REDIS)
# The tests that start servers of their own (failover, AOF restart, ...) run once, in the redis part.
test-redis-cluster:
	$(SERVERS) --with redis-cluster -- $(SUITE) --marconi-drivers-only -m "not own_servers and not verify" \
		--marconi-uri={redis-cluster}
test-mongodb:
	$(WITH_MONGODB) $(SUITE) --marconi-drivers-only '--marconi-uri=$(MARCONI_MONGODB_URI)'
# The benchmark's own tests: a tiny workload through the whole harness (every contender of every backend, the
# checks, the JSON, the chart), and planted-bug drivers and floors caught. The harness makes its SQLite file
# itself; MongoDB is a SecantusDB of the part's own unless MARCONI_MONGODB_URI names a server.
test-bench:
	$(WITH_MONGODB) $(BIN)/pytest -q --pyargs marconi_benchmarks --marconi-uri=memory:// --marconi-uri=sqlite:// \
		--marconi-uri=$(POSTGRESQL) --marconi-uri=$(MARIADB) --marconi-uri=$(REDIS) '--marconi-uri=$(MARCONI_MONGODB_URI)'
test-uris:
	$(BIN)/pytest -q --pyargs marconi.tests marconi_drivers marconi_benchmarks $(foreach uri,$(URIS),--marconi-uri=$(uri))
# The verify runs (VERIFY_OPS above), half of them with every fault the backend can take. The redis part's own
# servers include a Redis with AOF restarted and a Redis Cluster failing over; the mongodb part's include a
# SecantusDB restarted.
test-verify-embedded:
	env MARCONI_VERIFY_OPS=$(VERIFY_OPS_EMBEDDED) $(VERIFY_SUITE) --marconi-uri=memory:// --marconi-uri=sqlite://
test-verify-sqlite:
	rm -f $(SQLITE_FILE)-verify*
	$(VERIFY) --marconi-drivers-only --marconi-uri=sqlite:///$(SQLITE_FILE)-verify
test-verify-postgresql:
	$(SERVERS) --database $(POSTGRESQL_VERIFY) -- $(VERIFY) --marconi-drivers-only --marconi-uri=$(POSTGRESQL_VERIFY)
test-verify-mariadb:
	$(SERVERS) --database $(MARIADB_VERIFY) -- $(VERIFY) --marconi-drivers-only --marconi-uri=$(MARIADB_VERIFY)
test-verify-redis:
	$(VERIFY) --marconi-drivers-only --marconi-uri=$(REDIS_VERIFY)
test-verify-mongodb:
	$(WITH_MONGODB) $(VERIFY) --marconi-drivers-only '--marconi-uri=$(MARCONI_MONGODB_URI)'

clean:
	rm -rf $(VENV) *.egg-info .marconi-test.db* marconi-check.db* $(BENCH_OUTPUT)
