"""Producers racing on one queue collide on the unique indexes, and the core's retry loop sorts them out.

Each producer has a driver (a client, a connection pool) of its own. Collisions are forced, not hoped for: one
producer is stopped right after writing its batch, before its commit (its command listener blocks there), so
the others find its documents at their slots. Every post then succeeds in some order, or raises MessageConflict
once the bound has passed and leaves nothing behind; markers are contiguous and each batch is contiguous and in
input order.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from marconi.storage import MessageConflict

from .conftest import STUCK_GUARD, Commands, fresh_clock, open_driver

if TYPE_CHECKING:
    from .. import MongoDriver

pytestmark = pytest.mark.driver("mongodb")

QUEUE = "raced"
MESSAGES = "marconi_messages"


class Background:
    """A call in a thread, keeping its result or exception and how long it took."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.elapsed = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        started = time.monotonic()
        try:
            self.result = call()
        except BaseException as error:
            self.error = error
        finally:
            self.elapsed = time.monotonic() - started
            self.done.set()

    def join(self) -> Any:
        self.thread.join(STUCK_GUARD)
        assert self.done.is_set(), "the call never returned"
        if self.error is not None:
            raise self.error
        return self.result


class PausedAfterInsert(Commands):
    """Blocks its driver's first post right after the batch is inserted, before the commit, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.inserted = threading.Event()
        self.release = threading.Event()
        self.on_success = self._pause

    def _pause(self, event: Any, collection: str) -> None:
        if event.command_name == "insert" and collection == MESSAGES and not self.inserted.is_set():
            self.inserted.set()
            assert self.release.wait(STUCK_GUARD), "the test never released the paused producer"


class CollisionSeen(Commands):
    """Sets ``collided`` once its driver's insert hits another writer's documents (duplicate key, 11000)."""

    def __init__(self) -> None:
        super().__init__()
        self.collided = threading.Event()
        self.on_success = self._check

    def _check(self, event: Any, collection: str) -> None:
        if (
            event.command_name == "insert"
            and collection == MESSAGES
            and any(e.get("code") == 11000 for e in event.reply.get("writeErrors", []))
        ):
            self.collided.set()


@contextmanager
def drivers(uri: str, listeners: list[Commands], **options: Any) -> Iterator[list[MongoDriver]]:
    clock = fresh_clock()
    opened = [open_driver(uri, clock=clock, event_listeners=[listener], **options) for listener in listeners]
    try:
        yield opened
    finally:
        for driver in opened:
            driver.close()


def post(driver: MongoDriver, project: str, bodies: list[Any]) -> list[str]:
    batch = [{"ttl": 600, "body": body} for body in bodies]
    return driver.message_controller.post(QUEUE, batch, str(uuid.uuid4()), project=project)


def positions(driver: MongoDriver, project: str) -> list[tuple[int, str]]:
    """(position, id) of every visible message, in marker order, read with limit-1 pages."""
    messages = driver.message_controller
    seen: list[tuple[int, str]] = []
    marker = None
    queue = driver.store.find_queue(QUEUE, project)
    assert queue is not None
    while True:
        page = messages.list(QUEUE, project=project, marker=marker, limit=1)
        if not page.items:
            break
        [message] = page.items
        number = int(message["id"].rsplit(".", 1)[1])
        doc = driver.store.messages.find_one({"q": queue.id, "n": number})
        assert doc is not None
        seen.append((doc["m"], message["id"]))
        marker = page.marker
    return seen


def assert_batches_contiguous(order: list[str], batches: list[list[str]]) -> None:
    for batch in batches:
        start = order.index(batch[0])
        assert order[start : start + len(batch)] == batch, "a batch was split or reordered"


@pytest.fixture
def project(mongo_uri: str) -> Iterator[str]:
    name = f"race-{uuid.uuid4().hex[:12]}"
    yield name
    with open_driver(mongo_uri) as cleaner:
        for entry in cleaner.queue_controller.list(project=name, limit=100).items:
            cleaner.queue_controller.delete(entry["name"], project=name)


def test_producers_blocked_by_an_uncommitted_batch_collide_retry_and_follow_it(mongo_uri: str, project: str) -> None:
    paused, seen = PausedAfterInsert(), [CollisionSeen(), CollisionSeen()]
    with drivers(mongo_uri, [paused, *seen], heal_after=STUCK_GUARD) as (first, *others):
        first.queue_controller.upsert(QUEUE, {}, project=project)
        leading = Background(lambda: post(first, project, ["a0", "a1", "a2"]))
        assert paused.inserted.wait(STUCK_GUARD)
        racing = [
            Background(functools.partial(post, driver, project, [f"{i}-0", f"{i}-1"]))
            for i, driver in enumerate(others)
        ]
        for listener in seen:  # each one's insert hit the paused batch: the race is forced, not hoped for
            assert listener.collided.wait(STUCK_GUARD)
        assert positions(first, project) == [], "an uncommitted batch is invisible"
        paused.release.set()
        batches = [leading.join(), *(call.join() for call in racing)]
        order = positions(first, project)
    assert [position for position, _ in order] == list(range(1, 8)), "markers are contiguous"
    assert [message_id for _, message_id in order][:3] == batches[0], "the paused batch keeps the markers it took"
    assert_batches_contiguous([message_id for _, message_id in order], batches)


def test_a_post_blocked_past_the_bound_raises_message_conflict_and_posts_nothing(mongo_uri, project) -> None:
    paused, seen = PausedAfterInsert(), CollisionSeen()
    bound = 0.5
    with drivers(mongo_uri, [paused, seen], heal_after=STUCK_GUARD, conflict_timeout=bound) as (first, second):
        first.queue_controller.upsert(QUEUE, {}, project=project)
        leading = Background(lambda: post(first, project, ["a0", "a1"]))
        assert paused.inserted.wait(STUCK_GUARD)
        blocked = Background(lambda: post(second, project, ["b0", "b1"]))
        assert blocked.done.wait(STUCK_GUARD)
        with pytest.raises(MessageConflict):
            blocked.join()
        assert blocked.elapsed >= bound, "MessageConflict comes only once the bound has passed"
        assert seen.collided.is_set()
        paused.release.set()
        posted = leading.join()
        order = positions(first, project)
    assert [message_id for _, message_id in order] == posted, "nothing of the conflicted post is anywhere"
    assert [position for position, _ in order] == [1, 2]


def test_free_running_producers_each_get_contiguous_batches_in_order(mongo_uri: str, project: str) -> None:
    listeners = [CollisionSeen() for _ in range(4)]
    start = threading.Barrier(4)
    # No healing: a producer slow between its insert and its commit is waited for, so markers stay contiguous.
    with drivers(mongo_uri, list(listeners), heal_after=STUCK_GUARD) as opened:
        opened[0].queue_controller.upsert(QUEUE, {}, project=project)

        def produce(i: int, driver: MongoDriver) -> list[list[str]]:
            start.wait(STUCK_GUARD)
            return [post(driver, project, [f"{i}.{b}.{k}" for k in range(1 + (i + b) % 4)]) for b in range(6)]

        calls = [Background(functools.partial(produce, i, d)) for i, d in enumerate(opened)]
        batches = [batch for call in calls for batch in call.join()]
        order = positions(opened[0], project)
    total = sum(len(batch) for batch in batches)
    assert [position for position, _ in order] == list(range(1, total + 1)), "markers are contiguous"
    assert_batches_contiguous([message_id for _, message_id in order], batches)
    collided = sum(listener.collided.is_set() for listener in listeners)
    print(f"\n{collided} of 4 producers collided at least once; {total} messages in {len(batches)} batches")
