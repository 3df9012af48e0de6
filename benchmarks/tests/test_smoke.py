"""A tiny workload through the whole harness: every contender of every backend under test, the equivalence
proofs, the history checks, the JSON, the table, the chart, and the clean-up. Nothing here is timed."""

from __future__ import annotations

import json

import redis
import sqlalchemy as sa

from marconi_benchmarks import report
from marconi_benchmarks.cli import bench
from marconi_benchmarks.contenders import backend_of
from marconi_benchmarks.peers.zaqar import project_of
from marconi_benchmarks.workloads import catalogue

TINY = """
[[workload]]
name = "post-10"
measures = "producer"
producers = 1
messages = 30
warmup = 3

[[workload]]
name = "list-10"
measures = "observer"
observers = 1
fill = 25
messages = 40
warmup = 3

[[workload]]
name = "claim-delete"
measures = "consumer"
consumers = 1
messages = 20
warmup = 3

[[workload]]
name = "claim-bulk-delete"
measures = "consumer"
consumers = 1
consume = "claim-bulk-delete"
messages = 20
warmup = 3

[[workload]]
name = "pop-10"
measures = "consumer"
consumers = 1
consume = "pop"
messages = 20
warmup = 3

[[workload]]
name = "mixed"
measures = "consumer"
producers = 1
observers = 1
consumers = 1
messages = 40
warmup = 3

[[workload]]
name = "held-first-page"
measures = "observer"
fixture = "held"
fill = 200
held = 120
observers = 1
first_page = true
include_claimed = false
messages = 30
warmup = 3

[[workload]]
name = "held-claim-delete"
measures = "consumer"
fixture = "held"
fill = 200
held = 120
consumers = 1
messages = 10
warmup = 1
"""

#: The raw floors' round trips per iteration, by design (the driver's are its own business).
FLOOR_ROUND_TRIPS = {
    "sqlite": {"post-10": 4, "list-10": 1, "claim-delete": 14, "claim-bulk-delete": 5, "pop-10": 1},
    "postgresql": {"post-10": 4, "list-10": 1, "claim-delete": 11, "claim-bulk-delete": 2, "pop-10": 1},
    "mysql": {"post-10": 4, "list-10": 1, "claim-delete": 14, "claim-bulk-delete": 5, "pop-10": 3},
    "redis": {"post-10": 1, "list-10": 1, "claim-delete": 11, "claim-bulk-delete": 2, "pop-10": 1},
    "mongodb": {"post-10": 3, "list-10": 2, "claim-delete": 25, "claim-bulk-delete": 7, "pop-10": 5},
}


#: Runs whose validity depends on timing, because the contender does not keep the promise checked there: Zaqar's
#: observers page from a marker that is a message id, ranked afresh on every page, so a consumer deleting that
#: message sends the observer back to the head of the queue (a duplicate), and one at the head repeats it.
UNPROMISED = {("zaqar@Redis", "mixed")}


def test_the_whole_harness_on_a_tiny_workload(bench_uris, tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    workloads = catalogue(path)
    output = tmp_path / "out"

    results = bench(bench_uris, [], workloads, 2, frozenset({"driver", "floor", "peer"}), output, progress=False)

    data = json.loads((output / "bench.json").read_text())
    labels = {c["label"]: c for c in data["contenders"]}
    backends = {backend_of(uri) for uri in bench_uris}
    assert {c["backend"] for c in data["contenders"]} == backends
    assert not data["skipped"], "every backend named must run"
    for backend in backends - {"memory"}:
        roles = {c["role"] for c in data["contenders"] if c["backend"] == backend}
        assert {"driver", "floor"} <= roles
        floor = next(c for c in data["contenders"] if c["backend"] == backend and c["role"] == "floor")
        assert data["equivalence"][floor["label"]] == {"proven": True, "problems": []}
        assert floor["facts"]["durability"] and floor["facts"]["server"]
        if backend in ("sqlite", "postgresql", "mysql"):
            assert floor["facts"]["commit_ms"] > 0
    if "postgresql" in backends:
        assert any(c["name"] == "pgmq" for c in data["contenders"]), "pgmq is PostgreSQL's peer"
    if "redis" in backends:
        zaqar = next(c for c in data["contenders"] if c["name"] == "zaqar")
        assert zaqar["role"] == "peer" and zaqar["facts"]["zaqar"] == "23.0.1" and zaqar["facts"]["ipc_us"] > 0
        redis_uri = next(uri for uri in bench_uris if backend_of(uri) == "redis")
        assert zaqar["facts"]["database"] == redis.Redis.from_url(redis_uri).connection_pool.connection_kwargs["db"]

    # Every contender ran every workload it can, twice, alternating, and every run passed the history check.
    runs = data["runs"]
    invalid = [
        (r["contender"], r["workload"], r["anomalies"], r["errors"])
        for r in runs
        if not r["valid"] and (r["contender"], r["workload"]) not in UNPROMISED
    ]
    assert runs and not invalid, invalid
    for workload in workloads:
        mine = [run for run in runs if run["workload"] == workload.name]
        contenders = [run["contender"] for run in mine]
        assert contenders[: len(contenders) // 2] == contenders[len(contenders) // 2 :], "A B A B, not A A B B"
        assert all(run["rates"][workload.measures] > 0 for run in mine), [
            (r["contender"], r["workload"], r["rates"]) for r in mine
        ]
    checked = {run["contender"]: run["checked"] for run in runs if run["workload"] == "mixed"}
    assert all(stats.get("observers") and stats.get("claimers") for stats in checked.values())

    # Round trips are counted at the DBAPI: the floors' are what their design says.
    summary = {(s["workload"], s["contender"]): s for s in data["summary"]}
    for label, contender in labels.items():
        expected = FLOOR_ROUND_TRIPS.get(contender["backend"], {}) if contender["role"] == "floor" else {}
        for workload, trips in expected.items():
            assert summary[(workload, label)]["round_trips"]["unit"] == trips, (label, workload)
        if contender["role"] == "driver" and contender["backend"] != "memory":
            assert summary[("post-10", label)]["round_trips"]["post"] >= 1, label

    # The outputs: a table with a row per workload and backend, the Markdown copy, a PNG.
    table = report.text_table(results)
    lines = [line for line in table.splitlines() if not ("Redis" in line and line.startswith("mixed "))]
    assert "INVALID" not in "\n".join(lines) and table.count("VALID") == len(workloads) * len(backends)
    assert (output / "bench.md").read_text().startswith("| workload |")
    assert (output / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Nothing of the run is left on the servers.
    prefix = results.contenders[0].prefix
    for uri in bench_uris:
        if backend_of(uri) in ("postgresql", "mysql"):
            engine = sa.create_engine(uri)
            try:
                with engine.connect() as connection:
                    left = [t for t in sa.inspect(connection).get_table_names() if t.startswith(prefix)]
                    if backend_of(uri) == "postgresql":
                        queues = connection.execute(
                            sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'pgmq' AND tablename LIKE :p"),
                            {"p": f"%{prefix}%"},
                        ).scalar()
                        assert queues == 0
            finally:
                engine.dispose()
            assert left == []
        if backend_of(uri) == "redis":
            client = redis.Redis.from_url(uri)
            try:
                assert list(client.scan_iter(match=f"{prefix}:*")) == []
                assert list(client.scan_iter(match=f"{project_of(prefix)}.*")) == []  # Zaqar's
                indexed = client.zrange("msgset_index", 0, -1)  # Zaqar's index of every queue's message set
                assert not [key for key in indexed if isinstance(key, bytes) and key.startswith(prefix.encode())]
            finally:
                client.close()
        if backend_of(uri) == "mongodb":
            import pymongo

            mongo: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(uri)
            try:
                names = mongo.get_default_database("marconi").list_collection_names()
                assert [name for name in names if name.startswith(prefix)] == []
            finally:
                mongo.close()
