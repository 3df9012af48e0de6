"""``marconi verify`` on Redis servers the tests own: a server with AOF (``appendfsync always``) SIGKILLed and
started again on its directory, among killed workers and killed connections; a Redis Cluster whose masters are
killed in turn, each replaced by its replica (``wait_replicas=1``: no acknowledged post may be lost) and then
rejoining as a replica. Any anomaly fails the test; the history is kept in the test's directory.
"""

from __future__ import annotations

import os
import time

import pytest

from marconi.tests import servers
from marconi.tests.verify import expect, faults, runner

pytestmark = [pytest.mark.driver("redis"), pytest.mark.own_servers, pytest.mark.verify]

OPS = int(os.environ.get("MARCONI_VERIFY_OPS") or 20_000)  # as marconi/tests/test_verify.py
HANG_GUARD = 600.0  # only a bound against a stuck run; it ends on its operation count
NO_SYNC_DELAY = ("--repl-diskless-sync-delay", "0")


def test_verify_with_an_aof_server_killed_and_restarted(redis_uri, tmp_path, capsys):
    with servers.scratch_directory("verify-redis-aof") as directory:
        server = servers.redis_server(directory, None, "--appendonly", "yes", "--appendfsync", "always").start()
        try:
            uri = f"redis://127.0.0.1:{server.port}/0"
            kinds = {**faults.available(uri), "restart": faults.RestartServer(server)}
            plan = runner.Plan(uri, ops=OPS, seconds=HANG_GUARD, faults=tuple(sorted(kinds)), fault_every=2.0)
            started = time.monotonic()
            line = expect.clean_run(runner.run(plan, tmp_path / "history.jsonl", kinds), OPS, started)
        finally:
            server.stop()
    with capsys.disabled():
        print(f"\nverify redis AOF restarts: {line}")


def test_verify_with_cluster_masters_failing_over(redis_uri, tmp_path, capsys):
    with servers.scratch_directory("verify-redis-failover") as directory:
        cluster = servers.RedisCluster(directory, 3, 1, "--cluster-node-timeout", "2000", *NO_SYNC_DELAY).start()
        try:
            ports = [node.port or 0 for node in cluster.nodes]
            servers.wait_until(
                lambda: sum(faults.replication(port).get("master_link_status") == "up" for port in ports) == 3,
                60,
                "3 replicas in sync",
            )
            kinds = {"failover": faults.FailOver(cluster), "kill-consumer": faults.KillWorker("consumer")}
            options = {"wait_replicas": 1, "wait_timeout": 2.0, "conflict_timeout": 30.0}
            ops = OPS // 2
            plan = runner.Plan(
                cluster.uri, ops=ops, seconds=HANG_GUARD, faults=tuple(sorted(kinds)), fault_every=3.0, options=options
            )
            started = time.monotonic()
            line = expect.clean_run(runner.run(plan, tmp_path / "history.jsonl", kinds), ops, started)
        finally:
            cluster.stop()
    with capsys.disabled():
        print(f"\nverify redis cluster failovers: {line}")
