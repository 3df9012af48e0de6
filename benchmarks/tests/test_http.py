"""The HTTP contenders through the whole harness: a driver behind ``marconi serve`` against the same driver
called directly, on a SQLite file of the test's own: the proof of equivalence across the transport, the history
checks, one HTTP request per operation, the server stopped and the tables dropped after; a client with a planted
bug failing the proof; a store the server cannot share refused up front."""

from __future__ import annotations

import http.client
import json

import pytest
import sqlalchemy as sa

from marconi.storage import StorageError
from marconi_benchmarks.cli import bench
from marconi_benchmarks.contenders import contenders_for, run_prefix
from marconi_benchmarks.http_client import Direct, HTTPClient
from marconi_benchmarks.workloads import catalogue

from .planted import ReversingPosts, proof_fails
from .test_smoke import TINY

SHARED = ("post-10", "list-10", "claim-delete")
#: HTTP requests per iteration: one per operation (a claim of 10 and its 10 deletes are 11).
REQUESTS = {"post-10": 1, "list-10": 1, "claim-delete": 11}


class ReversingHTTP(ReversingPosts, HTTPClient):
    pass


def test_the_harness_over_http(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    workloads = [workload for workload in catalogue(tmp_path / "tiny.toml") if workload.name in SHARED]
    uri = f"http+sqlite:///{tmp_path}/served.db"
    results = bench([uri], [], workloads, 1, frozenset({"driver", "floor", "peer"}), tmp_path, progress=False)

    data = json.loads((tmp_path / "bench.json").read_text())
    assert [c["label"] for c in data["contenders"]] == ["http@HTTP/SQLite", "direct@HTTP/SQLite"]
    assert data["equivalence"]["direct@HTTP/SQLite"] == {"proven": True, "problems": []}
    invalid = [(r["contender"], r["workload"], r["anomalies"], r["errors"]) for r in data["runs"] if not r["valid"]]
    assert data["runs"] and not invalid, invalid
    summary = {(s["workload"], s["contender"]): s for s in data["summary"]}
    for workload, requests in REQUESTS.items():
        assert summary[(workload, "http@HTTP/SQLite")]["round_trips"]["unit"] == requests, workload

    port = results.contenders[0].options["port"]
    with pytest.raises(ConnectionRefusedError):  # the server is gone
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/v2/ping")
    engine = sa.create_engine(f"sqlite:///{tmp_path}/served.db")
    try:
        prefix = results.contenders[0].prefix
        assert [t for t in sa.inspect(engine).get_table_names() if t.startswith(prefix)] == []
    finally:
        engine.dispose()


def test_a_client_with_a_planted_bug_fails_its_proof(tmp_path):
    uri, prefix = f"http+sqlite:///{tmp_path}/served.db", run_prefix()
    (contender, _) = contenders_for(uri, prefix)
    HTTPClient.prepare(uri, prefix, **contender.options)
    try:
        port = contender.options["port"]
        proof_fails(HTTPClient(uri, prefix, port), Direct(uri, prefix), ReversingHTTP(uri, prefix, port))
    finally:
        HTTPClient.cleanup(uri, prefix)


def test_a_store_the_server_cannot_share_is_refused(tmp_path):
    with pytest.raises(StorageError, match="must share a store"):
        bench(["http+memory://"], [], [], 1, frozenset({"driver", "floor"}), tmp_path, progress=False)
