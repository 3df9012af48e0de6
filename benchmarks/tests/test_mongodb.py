"""MongoDB's contenders through the whole harness, on workloads small enough for the test server (a wire-protocol
server in Python, slow): the floor's proof of equivalence, the history checks, the commands per operation the
floor's design gives, the conflicts of 4 producers on one queue tallied and noted, nothing left behind; and a
floor with a planted bug failing its proof."""

from __future__ import annotations

import json

import pymongo

from marconi_benchmarks import report
from marconi_benchmarks.cli import bench
from marconi_benchmarks.contenders import run_prefix
from marconi_benchmarks.floors.mongodb import MongoFloor
from marconi_benchmarks.mongodb_client import MongoDriverClient, drop_collections
from marconi_benchmarks.workloads import catalogue

from .planted import ReversingMongoFloor, proof_fails
from .test_smoke import TINY

#: test_smoke's workloads that MongoDB runs, and two of its own: a first page behind held messages (the floor reads
#: the claim index) and 4 producers on one queue.
SHARED = ("post-10", "claim-bulk-delete", "pop-10")
OWN = """
[[workload]]
name = "held-first-page"
measures = "observer"
fill = 40
held = 20
observers = 1
first_page = true
include_claimed = false
messages = 20
warmup = 3

[[workload]]
name = "post-4-producers"
measures = "producer"
producers = 4
messages = 10
warmup = 2
"""

#: The floor's commands per iteration, by design (see floors/mongodb.py).
FLOOR_COMMANDS = {"post-10": 3, "claim-bulk-delete": 7, "pop-10": 5, "held-first-page": 3}


def test_the_harness_on_mongodb(mongo_uri, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "own.toml").write_text(OWN)
    shared = [workload for workload in catalogue(tmp_path / "tiny.toml") if workload.name in SHARED]
    workloads = shared + catalogue(tmp_path / "own.toml")
    # One repetition: the alternation is test_smoke's business.
    results = bench([mongo_uri], [], workloads, 1, frozenset({"driver", "floor", "peer"}), tmp_path, progress=False)

    data = json.loads((tmp_path / "bench.json").read_text())
    assert {c["role"] for c in data["contenders"]} == {"driver", "floor"}
    assert data["equivalence"]["pymongo@MongoDB"] == {"proven": True, "problems": []}
    invalid = [(r["contender"], r["workload"], r["anomalies"], r["errors"]) for r in data["runs"] if not r["valid"]]
    assert data["runs"] and not invalid, invalid
    summary = {(s["workload"], s["contender"]): s for s in data["summary"]}
    for workload, commands in FLOOR_COMMANDS.items():
        assert summary[(workload, "pymongo@MongoDB")]["round_trips"]["unit"] == commands, workload
    for label in ("mongodb@MongoDB", "pymongo@MongoDB"):
        tallies = summary[("post-4-producers", label)]["tallies"]
        assert tallies["posts"] == 4 * (2 + 1), tallies  # producers x (warm-up + timed posts)
        assert tallies["post_retries"] >= 0
        assert any(note.startswith(f"{label} on post-4-producers: ") for note in report.notes(results))

    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(mongo_uri)
    try:
        prefix = results.contenders[0].prefix
        left = [n for n in client.get_default_database("marconi").list_collection_names() if n.startswith(prefix)]
        assert left == []
    finally:
        client.close()


def test_a_floor_with_a_planted_bug_fails_its_proof(mongo_uri):
    """The table marks a floor that fails its proof INVALID (``report.Row.check``); the history check catching a
    planted floor is test_redis's (the same harness)."""
    prefix = run_prefix()
    MongoFloor.prepare(mongo_uri, prefix)
    try:
        proof_fails(*(cls(mongo_uri, prefix) for cls in (MongoDriverClient, MongoFloor, ReversingMongoFloor)))
    finally:
        drop_collections(mongo_uri, prefix)
