"""Round trips per operation: the design's budget, exactly.

Counted as redis-py connection writes (``send_packed_command``: a command, or a pipeline of them, written at once
and then every reply read), not with MONITOR. Every operation on messages and claims is one script in one round
trip, on a single server and on a cluster alike; each count is taken after a warm-up, so the connection is open
and the server has the scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from .conftest import CLIENT, Sends, post

if TYPE_CHECKING:
    from .. import RedisDriver

pytestmark = pytest.mark.driver("redis")

QUEUE = "counted"


def count(sends: Sends, call: Callable[[], object], label: str) -> int:
    """Round trips made by ``call``, printed with what each carried."""
    before = len(sends)
    call()
    made = sends.writes[before:]
    print(f"\n{label}: {len(made)} round trip(s)")
    for write in made:
        print(f"    {write}")
    return len(made)


@pytest.fixture
def queue(driver: RedisDriver, project: str) -> str:
    driver.queue_controller.upsert(QUEUE, {}, project=project)
    post(driver, QUEUE, project, 1)  # warm: scripts loaded, and a connection open to every server
    for client in driver.backend.primaries():
        driver.backend.call(client, ("PING",))
    return QUEUE


def test_post_of_10_messages(driver, queue, project, sends):
    assert count(sends, lambda: post(driver, queue, project, 10), "post 10") == 1


def test_post_promoting_due_delayed_messages(driver, queue, project, sends, clock):
    post(driver, queue, project, 3, delay=5)
    clock.advance(10)
    assert count(sends, lambda: post(driver, queue, project, 10), "post 10, promoting 3") == 1


def test_list_page(driver, queue, project, sends):
    post(driver, queue, project, 20)
    messages = driver.message_controller
    for claimed in (False, True):
        page = lambda claimed=claimed: messages.list(queue, project=project, limit=10, include_claimed=claimed)  # noqa: E731
        assert count(sends, page, f"list page (include_claimed={claimed})") == 1


def test_list_page_that_skips_filtered_messages(driver, queue, project, sends):
    post(driver, queue, project, 30)
    driver.claim_controller.create(queue, {"ttl": 60}, project=project, limit=25)
    page = lambda: driver.message_controller.list(queue, project=project, limit=10, echo=False, client_uuid=CLIENT)  # noqa: E731
    assert count(sends, page, "list page, everything hidden") == 1


def test_get_and_bulk_get(driver, queue, project, sends):
    ids = post(driver, queue, project, 5)
    messages = driver.message_controller
    assert count(sends, lambda: messages.get(queue, ids[0], project=project), "get") == 1
    assert count(sends, lambda: messages.bulk_get(queue, ids, project=project), "bulk get 5") == 1


def test_claim_of_10_messages(driver, queue, project, sends):
    post(driver, queue, project, 20)
    claims = driver.claim_controller
    assert count(sends, lambda: claims.create(queue, {"ttl": 60}, project=project, limit=10), "claim 10") == 1
    assert count(sends, lambda: claims.create(queue, {"ttl": 60}, project=project, limit=100), "claim rest") == 1
    assert count(sends, lambda: claims.create(queue, {"ttl": 60}, project=project), "claim of nothing") == 1


def test_claim_get_update_and_release(driver, queue, project, sends):
    post(driver, queue, project, 5)
    claims = driver.claim_controller
    claim_id, _ = claims.create(queue, {"ttl": 60}, project=project)
    assert count(sends, lambda: claims.get(queue, claim_id, project=project), "claim get") == 1
    assert count(sends, lambda: claims.update(queue, claim_id, {"ttl": 90}, project=project), "claim update") == 1
    assert count(sends, lambda: claims.delete(queue, claim_id, project=project), "claim release") == 1


def test_delete_without_and_with_a_claim(driver, queue, project, sends):
    free, held = post(driver, queue, project, 2)
    messages = driver.message_controller
    assert count(sends, lambda: messages.delete(queue, free, project=project), "delete") == 1
    claim_id, _ = driver.claim_controller.create(queue, {"ttl": 60}, project=project)
    deleting = lambda: messages.delete(queue, held, project=project, claim=claim_id)  # noqa: E731
    assert count(sends, deleting, "delete with claim") == 1


def test_bulk_delete_without_and_with_a_claim(driver, queue, project, sends):
    ids = post(driver, queue, project, 10)
    messages = driver.message_controller
    assert count(sends, lambda: messages.bulk_delete(queue, ids[:5], project=project), "bulk delete 5") == 1
    claim_id, held = driver.claim_controller.create(queue, {"ttl": 60}, project=project)
    held_ids = [message["id"] for message in held]
    deleting = lambda: messages.bulk_delete(queue, held_ids, project=project, claim=claim_id)  # noqa: E731
    assert count(sends, deleting, "bulk delete with claim") == 1


def test_pop(driver, queue, project, sends):
    post(driver, queue, project, 10)
    assert count(sends, lambda: driver.message_controller.pop(queue, 5, project=project), "pop 5") == 1


def test_stats(driver, queue, project, sends):
    post(driver, queue, project, 10)
    assert count(sends, lambda: driver.queue_controller.stats(queue, project=project), "stats") == 1


def test_queue_calls(driver, queue, project, sends):
    """Queue calls touch two slots (the queue's and its project's index); creation also draws an incarnation."""
    queues = driver.queue_controller
    assert count(sends, lambda: queues.get(queue, project=project), "queue get") == 1
    assert count(sends, lambda: queues.upsert("another", {}, project=project), "queue create") == 3
    assert count(sends, lambda: queues.upsert("another", {"a": 1}, project=project), "queue update") == 3
    servers = {id(driver.backend.client_for(driver.keys.queue(project, name)[0])) for name in (queue, "another")}
    # the index, then each server holding a listed queue confirms it exists
    assert count(sends, lambda: queues.list(project=project), "queue list") == 1 + len(servers)
    assert count(sends, lambda: queues.delete("another", project=project), "queue delete") == 2
