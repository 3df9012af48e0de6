"""Markers follow commit order, shown deterministically: a producer is paused inside its transaction.

Producer A is stopped right after its INSERT, before its commit. Producer B, on another driver, then posts to
the same queue: it must wait for A (proved by the backend: B's session is seen waiting on a lock, or SQLite's
write lock is seen taken), so it cannot commit a later marker first; an observer meanwhile sees neither. Once A
is released, the observer, continuing from the marker it got during the pause, sees A's messages, then B's,
each once. A post kept waiting past ``conflict_timeout`` raises MessageConflict and writes nothing.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from marconi.storage import ManualClock, MessageConflict

from .conftest import kind, open_driver

if TYPE_CHECKING:
    from .. import SQLDriver

pytestmark = pytest.mark.driver("sqlalchemy")

QUEUE = "ordered"
STUCK_GUARD = 60.0  # seconds before a test gives up waiting for a state it expects; never asserted on


class Pause:
    """Stops one driver's call after its INSERT into ``table`` (the messages table unless changed), until released.

    It watches the driver's statements (``Database.listen``) and blocks inside the call, between that statement
    and the commit: the transaction is open, its locks held.
    """

    def __init__(self, driver: SQLDriver) -> None:
        self.driver = driver
        self.inserted = threading.Event()
        self.release = threading.Event()
        self.table = driver.tables.messages.name

    def __call__(self, phase: str, sql: str, connection: Any) -> None:
        if phase == "after" and f"INSERT INTO {self.table} " in sql:
            self.inserted.set()
            assert self.release.wait(STUCK_GUARD), "the test never released the paused producer"

    @contextmanager
    def installed(self) -> Iterator[Pause]:
        self.driver.database.listen(self, pauses=True)
        try:
            yield self
        finally:
            self.release.set()
            self.driver.database.unlisten(self, pauses=True)


class Background:
    """A call in a thread, keeping its result or exception."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.result = call()
        except BaseException as error:
            self.error = error
        finally:
            self.done.set()

    def join(self) -> Any:
        self.thread.join(STUCK_GUARD)
        assert self.done.is_set(), "the call never returned"
        if self.error is not None:
            raise self.error
        return self.result


def post(driver: SQLDriver, project: str, bodies: list[Any]) -> list[str]:
    batch = [{"ttl": 600, "body": body} for body in bodies]
    return driver.message_controller.post(QUEUE, batch, str(uuid.uuid4()), project=project)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STUCK_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.01)


def session_id(raw: Any) -> Any:
    """The backend's id of a DBAPI connection's session."""
    if hasattr(raw, "info") and hasattr(raw.info, "backend_pid"):
        return raw.info.backend_pid  # psycopg 3
    if hasattr(raw, "thread_id"):
        return raw.thread_id()  # PyMySQL
    return None


@contextmanager
def watched(driver: SQLDriver) -> Iterator[dict[str, Any]]:
    """Notes the backend session of the driver's first statement, and whether it has begun a transaction."""
    seen: dict[str, Any] = {}

    def on_statement(phase: str, sql: str, connection: Any) -> None:
        if phase == "before":
            seen.setdefault("session", session_id(connection))
            if sql.startswith("BEGIN"):  # SQLite: the next thing is to wait for the write lock
                seen.setdefault("begun", True)

    driver.database.listen(on_statement)
    try:
        yield seen
    finally:
        driver.database.unlisten(on_statement)


def waiting_on_a_lock(probe: SQLDriver, session: Any) -> bool:
    """Whether the backend reports ``session`` as waiting for a lock held by another transaction, right now.

    PostgreSQL: pg_stat_activity. MySQL-family: the live transaction list of SHOW ENGINE INNODB STATUS, not
    information_schema.innodb_trx, which is a cache that a reader polling it faster than every 100 ms keeps
    from ever being refreshed.
    """
    with probe.engine.connect() as connection:
        if kind(probe) == "postgresql":
            query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND wait_event_type = 'Lock'")
            return bool(connection.execute(query, {"pid": session}).scalar())
        status = str(connection.execute(sa.text("SHOW ENGINE INNODB STATUS")).one()[2])
    for transaction in status.split("---TRANSACTION")[1:]:
        thread = re.search(r"thread id (\d+),", transaction)
        if thread is not None and int(thread.group(1)) == session:
            return "LOCK WAIT" in transaction
    return False


def sqlite_write_lock_is_taken(driver: SQLDriver) -> bool:
    """Whether a writer would have to wait right now (another transaction holds SQLite's write lock)."""
    database = driver.engine.url.database
    assert database
    connection = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        return "locked" in str(error)
    finally:
        connection.close()
    connection.close()
    return False


@pytest.fixture
def shared(driver: SQLDriver) -> SQLDriver:
    if "multiprocess" not in driver.capabilities:
        pytest.skip(f"{driver.uri}: each driver has its own in-memory database, so two producers cannot share it")
    return driver


def test_markers_follow_commit_order(shared: SQLDriver, sql_uri: str, project: str) -> None:
    observer = shared
    observer.queue_controller.upsert(QUEUE, {}, project=project)
    post(observer, project, ["before"])
    seen, marker = [], None
    page = observer.message_controller.list(QUEUE, project=project)
    seen += [m["body"] for m in page.items]
    marker = page.marker
    assert seen == ["before"]

    with open_driver(sql_uri) as a_driver, open_driver(sql_uri) as b_driver, Pause(a_driver).installed() as pause:
        a = Background(lambda: post(a_driver, project, ["a1", "a2", "a3"]))
        wait_for(pause.inserted.is_set, "producer A's INSERT")
        with watched(b_driver) as b_seen:
            b = Background(lambda: post(b_driver, project, ["b1", "b2"]))
            if kind(shared) == "sqlite":
                wait_for(lambda: "begun" in b_seen or b.done.is_set(), "producer B about to begin its transaction")
                assert sqlite_write_lock_is_taken(shared), "A's uncommitted post must hold the write lock"
            else:
                wait_for(lambda: "session" in b_seen or b.done.is_set(), "producer B's first statement")
                wait_for(
                    lambda: b.done.is_set() or waiting_on_a_lock(shared, b_seen["session"]),
                    "producer B waiting for A's lock",
                )
            assert not b.done.is_set(), f"B's post returned while A had not committed: {b.error or b.result}"

            # While A is paused: neither A's nor B's messages are visible, and the marker does not move past them.
            during = observer.message_controller.list(QUEUE, project=project, marker=marker)
            assert during.items == []
            marker = during.marker

            pause.release.set()
            a_ids = a.join()
            b_ids = b.join()

    rest = []
    while True:
        page = observer.message_controller.list(QUEUE, project=project, marker=marker, limit=2)
        if not page.items:
            break
        rest += page.items
        marker = page.marker
    assert [m["body"] for m in rest] == ["a1", "a2", "a3", "b1", "b2"]
    assert [m["id"] for m in rest] == a_ids + b_ids


def test_a_post_kept_waiting_past_the_conflict_timeout_writes_nothing(
    driver: SQLDriver, sql_uri: str, project: str
) -> None:
    driver.queue_controller.upsert(QUEUE, {}, project=project)
    if "multiprocess" in driver.capabilities:
        holder, contender = open_driver(sql_uri), open_driver(sql_uri, conflict_timeout=1)
    else:  # one in-memory database: two threads of one driver, serialised by its lock
        holder = contender = open_driver(sql_uri, conflict_timeout=1)
        holder.queue_controller.upsert(QUEUE, {}, project=project)
    try:
        with Pause(holder).installed() as pause:
            a = Background(lambda: post(holder, project, ["held"]))
            wait_for(pause.inserted.is_set, "the holder's INSERT")
            with pytest.raises(MessageConflict):
                post(contender, project, ["refused"])
            pause.release.set()
            a.join()
        listed = [m["body"] for m in holder.message_controller.list(QUEUE, project=project, limit=100).items]
        assert listed == ["held"]
        assert holder.queue_controller.stats(QUEUE, project=project)["messages"]["total"] == 1
        # The queue is not wedged: the refused producer can post once the holder has committed.
        post(contender, project, ["later"])
        listed = [m["body"] for m in holder.message_controller.list(QUEUE, project=project, limit=100).items]
        assert listed == ["held", "later"]
    finally:
        holder.close()
        contender.close()


def test_claims_never_hand_out_a_message_another_claim_holds(shared: SQLDriver, sql_uri: str, project: str) -> None:
    """A claim paused before commit holds its messages; a concurrent claim gets the next ones.

    PostgreSQL claims side by side (SKIP LOCKED); MySQL-family and SQLite claims take turns on a lock.
    """
    clock = ManualClock()
    shared.queue_controller.upsert(QUEUE, {}, project=project)
    post(shared, project, list(range(6)))
    with open_driver(sql_uri, clock=clock) as first, open_driver(sql_uri, clock=clock) as second:
        pause = Pause(first)
        pause.table = first.tables.claims.name  # stop after the claim row is inserted, messages locked
        with pause.installed():
            a = Background(lambda: first.claim_controller.create(QUEUE, {"ttl": 60}, project=project, limit=3))
            wait_for(pause.inserted.is_set, "the first claim's INSERT")
            if kind(shared) == "postgresql":  # SKIP LOCKED: the second claim does not wait, it takes the next ones
                b_id, b_messages = second.claim_controller.create(QUEUE, {"ttl": 60}, project=project, limit=3)
                pause.release.set()
            elif kind(shared) == "sqlite":
                assert sqlite_write_lock_is_taken(shared)
                pause.release.set()
                b_id, b_messages = second.claim_controller.create(QUEUE, {"ttl": 60}, project=project, limit=3)
            else:  # MySQL-family: the second claim waits for its turn on the queue row
                with watched(second) as b_seen:
                    b = Background(lambda: second.claim_controller.create(QUEUE, {"ttl": 60}, project=project, limit=3))
                    wait_for(lambda: "session" in b_seen or b.done.is_set(), "the second claim's first statement")
                    wait_for(
                        lambda: b.done.is_set() or waiting_on_a_lock(shared, b_seen["session"]),
                        "the second claim waiting for its turn",
                    )
                    assert not b.done.is_set(), f"the second claim did not wait: {b.error or b.result}"
                    pause.release.set()
                    b_id, b_messages = b.join()
            a_id, a_messages = a.join()
    a_bodies = [m["body"] for m in a_messages]
    b_bodies = [m["body"] for m in b_messages]
    assert a_bodies == [0, 1, 2]
    assert b_bodies == [3, 4, 5]
    assert a_id != b_id


def test_a_post_waiting_for_a_pooled_connection_past_the_conflict_timeout_writes_nothing(
    driver: SQLDriver, sql_uri: str, project: str
) -> None:
    if driver.database.in_memory:
        pytest.skip("an in-memory database has one connection and no pool; its lock is tested above")
    driver.queue_controller.upsert(QUEUE, {}, project=project)
    with open_driver(sql_uri, conflict_timeout=1, pool_size=1, max_overflow=0) as small:
        with Pause(small).installed() as pause:
            a = Background(lambda: post(small, project, ["held"]))
            wait_for(pause.inserted.is_set, "the holder's INSERT")
            with pytest.raises(MessageConflict):
                post(small, project, ["refused"])
            pause.release.set()
            a.join()
    assert [m["body"] for m in driver.message_controller.list(QUEUE, project=project).items] == ["held"]


def test_a_deadlock_is_retried_and_both_transactions_commit(driver: SQLDriver, project: str) -> None:
    """Two transactions lock two queue rows in opposite orders: the backend kills one, the core's retry loop
    (``DriverBase.call``) reruns it. The rerun waits for the other to have committed: a rerun that ran at once could
    take its first row again before the other, woken by the abort, had taken it, and deadlock a second time."""
    if kind(driver) == "sqlite":
        pytest.skip("SQLite writers never deadlock: BEGIN IMMEDIATE serialises them")
    for name in ("left", "right"):
        driver.queue_controller.upsert(name, {}, project=project)
    both_hold_one = threading.Barrier(2)
    attempts = {"left": 0, "right": 0}
    workers: dict[str, Background] = {}

    def bump(session: Any, name: str) -> None:
        session.run("queue_update", metadata='{"touched":true}', project=project, name=name)

    def work(first: str, second: str) -> Callable[[Any], str]:
        def run(session: Any) -> str:
            attempts[first] += 1
            if attempts[first] > 1:  # the victim's rerun: once the other has committed
                assert workers[second].done.wait(STUCK_GUARD), "the other transaction never ended"
            bump(session, first)
            if attempts[first] == 1:
                both_hold_one.wait(STUCK_GUARD)  # only the first attempt: a rerun goes straight through
            bump(session, second)
            return first

        return run

    def transaction(first: str, second: str) -> str:
        result: str = driver.call("test", lambda: driver.database.transaction(work(first, second)), idempotent=False)
        return result

    one = workers["left"] = Background(lambda: transaction("left", "right"))
    other = workers["right"] = Background(lambda: transaction("right", "left"))
    assert {one.join(), other.join()} == {"left", "right"}
    assert sorted(attempts.values()) == [1, 2], "exactly one of them was chosen as the victim and rerun"
    assert driver.queue_controller.get("left", project=project) == {"touched": True}
