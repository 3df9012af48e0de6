"""What an operation costs the server does not grow with the messages queued or claimed ahead of its work.

Measured as the Redis commands a script runs (``INFO commandstats`` counts those run inside scripts too), on a
server these tests start, so no other client's commands are counted. A claim or a pop of 10 runs exactly as many
commands behind 5,000 messages claimed at the head, or with 5,000 queued behind it, as on a short queue: claims
take from the index of eligible messages, not from a scan of the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

import pytest

from marconi.storage import ManualClock
from marconi.tests import servers

from .conftest import open_driver, post

if TYPE_CHECKING:
    from .. import RedisDriver

pytestmark = [pytest.mark.driver("redis"), pytest.mark.own_servers]

DEEP = 5_000
NOT_COUNTED = {"evalsha", "eval", "config|resetstat", "info", "config"}


@pytest.fixture
def driver(own_server: servers.Server, redis_uri: str) -> Iterator[RedisDriver]:
    with open_driver(f"redis://127.0.0.1:{own_server.port}/0", clock=ManualClock(1_700_000_000.0)) as opened:
        yield opened
    servers.redis_command(own_server.port or 0, "FLUSHALL")  # the server is this module's own


def commands_run(driver: RedisDriver, call: Callable[[], object]) -> int:
    """How many Redis commands ``call`` made the server run (inside scripts included)."""
    port = driver.backend.target.port or 0
    servers.redis_command(port, "CONFIG", "RESETSTAT")
    call()
    total = 0
    for line in servers.redis_command(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line.removeprefix("cmdstat_").partition(":")
            if name not in NOT_COUNTED:
                total += int(stats.split(",")[0].removeprefix("calls="))
    return total


def fill(driver: RedisDriver, queue: str, n: int) -> None:
    for _ in range(n // 100):
        post(driver, queue, None, 100)


def claim_all(driver: RedisDriver, queue: str, n: int) -> None:
    for _ in range(n // 100):
        driver.claim_controller.create(queue, {"ttl": 3600}, limit=100)


@pytest.fixture
def queues(driver: RedisDriver) -> dict[str, str]:
    """A short queue, one with DEEP messages claimed at its head, and one with DEEP queued: 20 eligible in each
    (at the head of the last)."""
    made = {"short": "short", "claimed_head": "claimed-head", "deep": "deep"}
    for name in made.values():
        driver.queue_controller.upsert(name, {})
    fill(driver, "claimed-head", DEEP)
    claim_all(driver, "claimed-head", DEEP)
    for name in made.values():
        post(driver, name, None, 20)
    fill(driver, "deep", DEEP)
    return made


def costs(driver: RedisDriver, queues: dict[str, str], operation: Callable[[str], object]) -> dict[str, int]:
    """The commands ``operation`` runs on each kind of queue."""
    return {kind: commands_run(driver, partial(operation, queue)) for kind, queue in queues.items()}


def test_a_claim_costs_the_same_behind_many_claimed_and_before_many_queued(driver, queues):
    found = costs(driver, queues, lambda queue: driver.claim_controller.create(queue, {"ttl": 60}, limit=10))
    print(f"\ncommands run by a claim of 10: {found}")
    assert found["claimed_head"] == found["short"] == found["deep"]


def test_a_pop_costs_the_same_behind_many_claimed_and_before_many_queued(driver, queues):
    found = costs(driver, queues, lambda queue: driver.message_controller.pop(queue, 10))
    assert found["claimed_head"] == found["short"] == found["deep"]


def test_a_page_of_unclaimed_messages_costs_the_same_behind_many_claimed(driver, queues):
    found = costs(driver, queues, lambda queue: driver.message_controller.list(queue, limit=10))
    assert found["claimed_head"] == found["short"] == found["deep"]


def test_stats_cost_the_same_on_a_deep_queue(driver, queues):
    found = costs(driver, queues, lambda queue: driver.queue_controller.stats(queue))
    assert found["claimed_head"] == found["short"] == found["deep"]
