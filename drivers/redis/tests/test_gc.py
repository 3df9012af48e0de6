"""gc() keeps memory bounded without anyone listing a queue: expired messages and claims leave every key.

Each test has a key prefix of its own: ``gc()`` collects every queue under its driver's prefix, on every server
of a cluster, so its counts are this test's alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from marconi.storage import ManualClock

from .. import GC_CHUNK
from ..keys import QUEUE_KEYS
from .conftest import open_driver, post

if TYPE_CHECKING:
    from .. import RedisDriver

pytestmark = pytest.mark.driver("redis")


@pytest.fixture
def driver(redis_uri: str, clock: ManualClock, project: str) -> Iterator[RedisDriver]:
    with open_driver(redis_uri, clock=clock, key_prefix=f"gc-{project}") as opened:
        yield opened
        for entry in opened.queue_controller.list(project=project, limit=100).items:
            opened.queue_controller.delete(entry["name"], project=project)
        counter = opened.keys.incarnations()  # the prefix's last key
        opened.backend.command(counter, "DEL", counter)


def sizes(driver, project: str, queue: str) -> dict[str, int]:
    """How many entries each of the queue's keys (but its ``q`` hash) holds."""
    found = {}
    for suffix, key in zip(QUEUE_KEYS[1:], driver.keys.queue(project, queue)[1:], strict=True):
        kind = driver.backend.command(key, "TYPE", key)
        found[suffix] = (
            0 if kind == "none" else int(driver.backend.command(key, {"hash": "HLEN"}.get(kind, "ZCARD"), key))
        )
    return found


def test_gc_empties_every_key_of_expired_messages_and_claims(driver, project, clock):
    queues = driver.queue_controller
    queues.upsert("q", {}, project=project)
    post(driver, "q", project, 30, ttl=10)
    post(driver, "q", project, 5, ttl=10, delay=20)  # dies before it is due
    driver.claim_controller.create("q", {"ttl": 5}, project=project, limit=10)
    driver.claim_controller.create("q", {"ttl": 5, "grace": 0}, project=project, limit=10)
    assert sizes(driver, project, "q")["b"] == 35
    clock.advance(30)
    assert driver.gc() == 35 + 2
    assert set(sizes(driver, project, "q").values()) == {0}, "nothing expired is left behind in any key"
    assert queues.stats("q", project=project)["messages"]["total"] == 0


def test_gc_leaves_the_living_alone(driver, project, clock):
    queues = driver.queue_controller
    queues.upsert("q", {}, project=project)
    keep = post(driver, "q", project, 3, ttl=1000)
    post(driver, "q", project, 3, ttl=10)
    claim_id, held = driver.claim_controller.create("q", {"ttl": 500}, project=project, limit=1)
    clock.advance(10)
    assert driver.gc() == 3
    assert sizes(driver, project, "q") == {
        "b": 3, "s": 3, "v": 3, "e": 2, "c": 1, "x": 3, "d": 0, "dx": 0, "h": 1, "k": 1
    }  # fmt: skip
    assert [m["id"] for m in held] == keep[:1]
    assert driver.claim_controller.get("q", claim_id, project=project)[0]["id"] == claim_id


def test_gc_of_a_backlog_larger_than_its_chunk_removes_all_of_it(driver, project, clock):
    driver.queue_controller.upsert("q", {}, project=project)
    for _ in range(GC_CHUNK // 100 + 3):
        post(driver, "q", project, 100, ttl=10)
    clock.advance(10)
    assert driver.gc() == (GC_CHUNK // 100 + 3) * 100
    assert sizes(driver, project, "q")["x"] == 0


def test_gc_collects_queues_of_every_project_on_every_server(driver, project, clock):
    names = [f"q{i}" for i in range(12)]  # on a cluster, spread over its primaries
    for name in names:
        driver.queue_controller.upsert(name, {}, project=project)
        post(driver, name, project, 2, ttl=10)
    other = project + "-other"
    driver.queue_controller.upsert("q", {}, project=other)
    post(driver, "q", other, 1, ttl=10)
    try:
        clock.advance(10)
        assert driver.gc() == 2 * len(names) + 1
        assert all(sizes(driver, project, name)["b"] == 0 for name in names)
    finally:
        driver.queue_controller.delete("q", project=other)
