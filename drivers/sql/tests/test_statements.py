"""The number of SQL statements each hot call sends, per dialect: the design's budget, exactly.

Counted with SQLAlchemy's ``before_cursor_execute`` event, so transaction control (BEGIN, COMMIT; SQLite's
``BEGIN IMMEDIATE`` goes straight to the DBAPI connection) is not counted, as on the servers, whose drivers
begin transactions implicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event

from .conftest import kind

if TYPE_CHECKING:
    from .. import SQLDriver

pytestmark = pytest.mark.driver("sqlalchemy")

CLIENT = str(uuid.uuid4())

#: post of 10 messages: lock-and-bump the queue counters (UPDATE ... RETURNING, or SELECT ... FOR UPDATE then
#: UPDATE where the dialect has no UPDATE ... RETURNING), then one multi-row INSERT.
POST_10 = {"sqlite": 2, "postgresql": 2, "mysql": 3}
#: one page: the queue row (id, counter, next due time), then the page.
LIST_PAGE = 2
#: claim of 10: the queue row, the eligible messages locked, the claim row, one UPDATE of the messages.
CLAIM_10 = 4
#: delete of an unclaimed message: one DELETE that checks the queue and the claim in its WHERE clause.
DELETE = 1


@contextmanager
def counting(driver: SQLDriver) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(driver.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(driver.engine, "before_cursor_execute", record)


def count(driver: SQLDriver, call: Callable[[], object], label: str) -> int:
    with counting(driver) as statements:
        call()
    print(f"\n{driver.uri} [{kind(driver)}] {label}: {len(statements)} statement(s)")
    for statement in statements:
        print(f"    {statement[:160]}")
    return len(statements)


@pytest.fixture
def queue(driver: SQLDriver, project: str) -> str:
    driver.queue_controller.upsert("counted", {}, project=project)
    return "counted"


def post(driver: SQLDriver, queue: str, project: str, n: int) -> list[str]:
    batch = [{"ttl": 300, "body": {"n": i}} for i in range(n)]
    return driver.message_controller.post(queue, batch, CLIENT, project=project)


def test_post_of_10_messages(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 1)  # warm: the engine is connected, the queue has messages
    assert count(driver, lambda: post(driver, queue, project, 10), "post 10") == POST_10[kind(driver)]


def test_post_promoting_due_delayed_messages_stays_one_transaction(driver, queue, project, clock) -> None:
    """Not a budget, a check that the slow path (promotion) is taken only when something is due."""
    driver.message_controller.post(queue, [{"ttl": 300, "body": 0, "delay": 5}], CLIENT, project=project)
    assert count(driver, lambda: post(driver, queue, project, 10), "post 10, delayed not due") == POST_10[kind(driver)]
    clock.advance(10)
    assert count(driver, lambda: post(driver, queue, project, 10), "post 10, promoting") > POST_10[kind(driver)]
    listed = [m["body"] for m in driver.message_controller.list(queue, project=project, limit=100).items]
    batch = [{"n": i} for i in range(10)]
    assert listed == [*batch, 0, *batch], "the due message takes its place before the batch"


def test_list_page(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 20)
    page = driver.message_controller.list(queue, project=project, limit=10)
    assert count(driver, lambda: driver.message_controller.list(queue, project=project, limit=10), "list page") == (
        LIST_PAGE
    )
    following = driver.message_controller.list(queue, project=project, marker=page.marker, limit=10)
    assert len(following.items) == 10


def test_claim_of_10_messages(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 20)
    claims = driver.claim_controller
    assert count(driver, lambda: claims.create(queue, {"ttl": 60}, project=project, limit=10), "claim 10") == CLAIM_10
    claim_id, messages = claims.create(queue, {"ttl": 60}, project=project, limit=10)
    assert claim_id is not None and len(messages) == 10


def test_claim_of_an_empty_queue_writes_nothing(driver: SQLDriver, queue: str, project: str) -> None:
    claims = driver.claim_controller
    with counting(driver) as statements:
        assert claims.create(queue, {"ttl": 60}, project=project) == (None, [])
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"]


def test_delete_of_a_message(driver: SQLDriver, queue: str, project: str) -> None:
    message_id = post(driver, queue, project, 1)[0]
    messages = driver.message_controller
    assert count(driver, lambda: messages.delete(queue, message_id, project=project), "delete") == DELETE
    assert messages.bulk_get(queue, [message_id], project=project) == []


def test_delete_with_its_claim(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 1)
    claim_id, claimed = driver.claim_controller.create(queue, {"ttl": 60}, project=project)
    messages = driver.message_controller
    deleting = lambda: messages.delete(queue, claimed[0]["id"], project=project, claim=claim_id)  # noqa: E731
    assert count(driver, deleting, "delete with claim") == DELETE
