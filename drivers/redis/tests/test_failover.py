"""Failover: the primary holding a queue's slot is killed (SIGKILL) mid-run; the driver recovers on its own, and
with ``wait_replicas=1`` no acknowledged post is lost.

A cluster of 3 primaries with a replica each (``--cluster-node-timeout 2000``), started by the test. A producer
thread posts throughout, recording every post (``marconi.tests.history``): acknowledged, failed, or unknown (the
post in flight at the kill; posts the promoted replica stored while it had no replica of its own to confirm them).
Once enough posts are acknowledged the primary is killed; once its replica has taken over, the killed node is
started again on its directory and rejoins as the new replica; once posts are acknowledged again, the producer
stops and an observer reads the queue from its head. The checker finds no acknowledged post missing, none twice,
none out of order. Every step waits on an event or on what the servers report, never on time.

On the same cluster: a slot map gone stale is put right by the MOVED reply of the wrong primary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from marconi.storage import ManualClock, MessageConflict
from marconi.tests import servers
from marconi.tests.history import History, Kind, Outcome, Recorder, body_of, check_observers

from .conftest import CLIENT, open_driver, post
from .test_restart import observe

pytestmark = [pytest.mark.driver("redis"), pytest.mark.own_servers]

BEFORE, AFTER = 30, 10  # acknowledged posts before the kill, and after the killed node rejoined
TIMEOUT = 60.0  # only a bound against hangs
NO_SYNC_DELAY = ("--repl-diskless-sync-delay", "0")  # a replica syncs at once (Redis waits 5 s by default)


def replication(port: int) -> dict[str, str]:
    lines = servers.redis_command(port, "INFO", "replication").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def replicas_in_sync(ports: list[int]) -> int:
    """How many of the nodes are replicas whose link to their primary is up."""
    states = [replication(port) for port in ports]
    return sum(1 for state in states if state.get("role") == "slave" and state.get("master_link_status") == "up")


def describe(cluster: servers.RedisCluster) -> str:
    """Each node's replication state and the end of its log: what a failed wait needs to be understood."""
    parts = []
    for node in cluster.nodes:
        try:
            state = replication(node.port or 0)
            summary = ", ".join(f"{key}={state.get(key)}" for key in ("role", "master_port", "master_link_status"))
        except OSError as error:
            summary = f"unreachable ({error})"
        parts.append(f"{node.name}: {summary}\n{node.log_tail(8)}")
    return "\n".join(parts)


class Producer(threading.Thread):
    """Posts one message at a time until told to stop, whatever the posts raise; counts acknowledgements."""

    def __init__(self, driver) -> None:
        super().__init__(daemon=True)
        self.driver = driver
        self.recorder = Recorder("producer")
        self.acknowledged = 0
        self.stop = threading.Event()
        self.changed = threading.Condition()

    def run(self) -> None:
        sequence = 0
        while not self.stop.is_set():
            values = (("producer", sequence),)
            sequence += 1
            invoke = self.recorder.now()
            try:
                self.driver.message_controller.post("q", [{"ttl": 3600, "body": body_of(values[0])}], CLIENT)
            except MessageConflict as error:  # certainly not posted
                self.recorder.record(Kind.POST, "q", invoke, Outcome.FAIL, values=values, error=str(error))
                continue
            except Exception as error:
                now = self.recorder.now()
                self.recorder.record(Kind.POST, "q", invoke, Outcome.UNKNOWN, now, values=values, error=str(error))
                continue
            self.recorder.record(Kind.POST, "q", invoke, Outcome.OK, values=values)
            with self.changed:
                self.acknowledged += 1
                self.changed.notify_all()

    def wait_for(self, acknowledged: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.acknowledged >= acknowledged, TIMEOUT), (
                f"only {self.acknowledged} posts acknowledged: {self.recorder.ops[-1:]}"
            )


@pytest.fixture(scope="module")
def cluster() -> Iterator[servers.RedisCluster]:
    """3 primaries with a replica each, every replica in sync."""
    with servers.scratch_directory("redis-failover") as directory:
        started = servers.RedisCluster(directory, 3, 1, "--cluster-node-timeout", "2000", *NO_SYNC_DELAY).start()
        try:
            ports = [node.port or 0 for node in started.nodes]
            try:
                servers.wait_until(lambda: replicas_in_sync(ports) == 3, TIMEOUT, "3 replicas in sync")
            except servers.ServerError as error:
                raise servers.ServerError(f"{error}:\n{describe(started)}") from None
            yield started
        finally:
            started.stop()


def test_a_killed_primary_loses_no_acknowledged_post(cluster, redis_uri, sends):
    ports = [node.port or 0 for node in cluster.nodes]
    clock = ManualClock(float(int(time.time())))
    options = {"wait_replicas": 1, "wait_timeout": 2.0, "conflict_timeout": 30.0}
    with open_driver(cluster.uri, clock=clock, **options) as driver:
        driver.queue_controller.upsert("q", {})
        warmup, first = Recorder("warmup"), ("warmup", 0)
        before, invoke = len(sends), warmup.now()
        driver.message_controller.post("q", [{"ttl": 3600, "body": body_of(first)}], CLIENT)
        warmup.record(Kind.POST, "q", invoke, Outcome.OK, values=(first,))
        assert len(sends) - before == 1, "a post and its WAIT go in one round trip"

        client = driver.backend.client_for(driver.keys.queue_base(None, "q"))
        primary_port = client.connection_pool.connection_kwargs["port"]
        primary = next(node for node in cluster.nodes if node.port == primary_port)
        replica_port = next(p for p in ports if replication(p).get("master_port") == str(primary_port))

        producer = Producer(driver)
        producer.start()
        producer.wait_for(BEFORE)
        started = time.monotonic()
        primary.kill()
        servers.wait_until(lambda: replication(replica_port)["role"] == "master", TIMEOUT, "the failover")
        failed_over = time.monotonic()
        primary.start()  # on its directory: it rejoins as the replica of the promoted one
        servers.wait_until(lambda: replication(primary_port).get("master_link_status") == "up", TIMEOUT, "the rejoin")
        rejoined = time.monotonic()
        producer.wait_for(producer.acknowledged + AFTER)
        print(f"\nfailover {failed_over - started:.1f} s, rejoin {rejoined - failed_over:.1f} s, "
              f"acknowledged again {time.monotonic() - rejoined:.1f} s later")  # fmt: skip
        producer.stop.set()
        producer.join(TIMEOUT)

        observer = Recorder("observer")
        observe(driver, observer)
        report = check_observers(History.merge(warmup.ops, producer.recorder.ops, observer.ops))
        assert report.ok, report.summary()
        outcomes = {op.outcome for op in producer.recorder.ops}
        print(f"\nposts: {len(producer.recorder.ops)}, {producer.acknowledged} acknowledged, {outcomes}")


def test_a_stale_slot_map_is_put_right_by_the_moved_reply(cluster, redis_uri, sends):
    """The driver's map sends a queue's calls to the wrong primary: that one answers MOVED (running nothing), the
    driver patches its map, and the call is sent again to the right one."""
    with open_driver(cluster.uri, clock=ManualClock(1_700_000_000.0)) as driver:
        driver.queue_controller.upsert("moved", {})
        try:
            post(driver, "moved", None, 1)
            topology = driver.backend.topology
            slot = key_slot(driver.keys.queue_base(None, "moved").encode())
            owner = topology.nodes_manager.slots_cache[slot][0]
            other = next(node for node in topology.get_primaries() if node.name != owner.name)
            driver.backend.call(topology.get_redis_connection(other), ("PING",))  # connected: only the post counts
            topology.nodes_manager.slots_cache[slot] = [other]
            before = len(sends)
            post(driver, "moved", None, 1)
            assert len(sends) - before == 2, "MOVED from the wrong primary, then the post on the right one"
            assert topology.nodes_manager.slots_cache[slot][0].name == owner.name
            assert [m["body"] for m in driver.message_controller.list("moved").items] == [{"n": 0}, {"n": 0}]
        finally:
            driver.queue_controller.delete("moved")
