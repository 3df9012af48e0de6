"""A writer that inserted its batch and died before its commit leaves the slots after the counter taken.

The dead writer is a real one: a process posting through the driver, killed by its own command listener right
after the server acknowledged its insert. The next post collides with the dead batch, waits ``heal_after``
(retrying with backoff, in the core's loop), moves the counter past it and succeeds, well within the bound; the
dead batch never becomes visible, observers miss and repeat nothing, and ``gc()`` removes what it left.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from marconi.storage.hooks import Outgoing
from marconi.tests.plugin import drain

from .conftest import STUCK_GUARD, open_driver, post

if TYPE_CHECKING:
    from .. import MongoDriver

pytestmark = pytest.mark.driver("mongodb")

QUEUE = "stalled"
DIED = 17

#: Posts three "ghost" messages and dies (os._exit) as soon as the server acknowledges their insert.
DYING_WRITER = textwrap.dedent(
    """
    import os, sys, uuid
    from pymongo import monitoring
    from marconi.storage import load

    class DieAfterInsert(monitoring.CommandListener):
        armed = False
        inserts = set()
        def started(self, event):
            if self.armed and event.command_name == "insert" and event.command["insert"].endswith("messages"):
                self.inserts.add(event.request_id)
        def failed(self, event): pass
        def succeeded(self, event):
            if event.request_id in self.inserts:
                os._exit({died})

    uri, project, queue = sys.argv[1:4]
    listener = DieAfterInsert()
    driver = load(uri, event_listeners=[listener])
    listener.armed = True
    ghosts = [{{"ttl": 600, "body": f"ghost-{{i}}"}} for i in range(3)]
    driver.message_controller.post(queue, ghosts, uuid.uuid4(), project=project)
    os._exit(0)
    """
).format(died=DIED)


def bodies(messages: list[dict[str, object]]) -> list[object]:
    return [message["body"] for message in messages]


def test_a_writer_dead_before_its_commit_is_healed_and_never_seen(mongo_uri: str, project: str, clock) -> None:
    heal_after, bound = 0.3, 10.0
    with open_driver(mongo_uri, clock=clock, heal_after=heal_after, conflict_timeout=bound) as driver:
        driver.queue_controller.upsert(QUEUE, {}, project=project)
        post(driver, QUEUE, project, ["a0", "a1"])
        seen_early, marker = drain(driver.message_controller, QUEUE, project)
        assert bodies(seen_early) == ["a0", "a1"]

        writer = subprocess.run(
            [sys.executable, "-c", DYING_WRITER, mongo_uri, project, QUEUE], timeout=STUCK_GUARD, check=False
        )
        assert writer.returncode == DIED, "the writer did not die between its insert and its commit"
        queue = driver.store.find_queue(QUEUE, project)
        assert queue is not None and queue.counter == 2
        ghosts = list(driver.store.messages.find({"q": queue.id, "n": {"$gt": queue.counter}}))
        assert len(ghosts) == 3, "the dead writer's batch sits right after the counter"

        started = time.monotonic()
        posted = post(driver, QUEUE, project, ["b0", "b1"])
        elapsed = time.monotonic() - started
        print(f"\nthe post after the dead writer took {elapsed:.2f} s (heal_after {heal_after} s, bound {bound} s)")
        assert elapsed >= heal_after, "the counter moved on before the stall was old enough"

        seen_late, _ = drain(driver.message_controller, QUEUE, project, marker=marker)
        assert bodies(seen_late) == ["b0", "b1"], "the observer sees what followed, once, and no ghost"
        everything, _ = drain(driver.message_controller, QUEUE, project, limit=1)
        assert bodies(everything) == ["a0", "a1", "b0", "b1"]
        assert [m["id"] for m in everything[2:]] == posted
        assert driver.queue_controller.stats(QUEUE, project=project)["messages"]["total"] == 4

        driver.gc()
        assert driver.store.messages.count_documents({"q": queue.id, "b": {"$regex": "ghost"}}) == 0
        assert bodies(drain(driver.message_controller, QUEUE, project)[0]) == ["a0", "a1", "b0", "b1"]


def test_a_stale_writer_cannot_reuse_markers_behind_observers(driver: MongoDriver, project: str) -> None:
    """A writer that read the counter, stalled, and wrote where expired, reaped messages used to be: its
    documents stay invisible (its txn was never committed) and its commit fails; then it is cleaned up."""
    driver.queue_controller.upsert(QUEUE, {}, project=project)
    stale = driver.store.find_queue(QUEUE, project)
    assert stale is not None
    post(driver, QUEUE, project, ["old0", "old1"])
    seen, marker = drain(driver.message_controller, QUEUE, project)
    assert bodies(seen) == ["old0", "old1"]
    driver.store.messages.delete_many({"q": stale.id})  # reaped, as a TTL monitor would
    with pytest.raises(Exception) as raised:  # the stale writer's attempt, with the counter it read
        driver.store.append(stale, driver.clock.now(), _outgoing(["stale0", "stale1"], driver.clock.now()), "c")
    assert type(raised.value).__name__ == "Contention"
    assert drain(driver.message_controller, QUEUE, project)[0] == []
    assert drain(driver.message_controller, QUEUE, project, marker=marker)[0] == []
    assert driver.store.messages.count_documents({"q": stale.id}) == 0, "the defeated attempt cleaned up"


def _outgoing(texts: list[str], now: float) -> list[Outgoing]:
    return [Outgoing(f'"{text}"', now + 600, now, False) for text in texts]


@pytest.fixture
def project() -> str:
    return f"stalled-{uuid.uuid4().hex[:12]}"
