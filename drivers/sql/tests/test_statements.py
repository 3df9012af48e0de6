"""The statements and round trips each hot call sends, per backend: the design's budget, exactly.

Counted by watching the driver's sessions (``Database.listen`` with ``engine.Counter``): statements are what the
backend executes apart from transaction control (BEGIN, COMMIT, ROLLBACK, session settings); round trips are
network exchanges, transaction control included.
SQLite runs in this process: its "round trips" are calls into the library, listed for completeness.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from marconi.storage.clock import ManualClock

from ..engine import Counter
from ..messages import INSERTED
from .conftest import kind

if TYPE_CHECKING:
    from .. import SQLDriver

pytestmark = pytest.mark.driver("sqlalchemy")

CLIENT = str(uuid.uuid4())

#: post of 10 messages. PostgreSQL: one statement (advance the counters, insert the batch numbered from them).
#: SQLite: advance with UPDATE ... RETURNING, one INSERT of the batch. MariaDB/MySQL: lock the queue row, advance,
#: one multi-row INSERT (no BEGIN: the first statement of a transaction begins it).
POST_10 = {"sqlite": (2, 4), "postgresql": (1, 1), "mysql": (3, 4)}
#: one page: the queue's counter and the page in one statement, outside any transaction.
LIST_PAGE = {"sqlite": (1, 1), "postgresql": (1, 1), "mysql": (1, 1)}
#: claim of 10. PostgreSQL: one statement (take the oldest eligible past what others hold, record the claim).
#: SQLite: mark the eligible messages with UPDATE ... RETURNING, record the claim. MariaDB/MySQL: the turn
#: and the messages in one locking read, mark them, record the claim (no BEGIN: the first statement begins).
CLAIM_10 = {"sqlite": (2, 4), "postgresql": (1, 1), "mysql": (3, 4)}
#: delete of a message, unclaimed or with its claim: one DELETE that checks queue and claim in its WHERE clause.
DELETE = {"sqlite": (1, 1), "postgresql": (1, 1), "mysql": (1, 1)}
#: deletion of a claim's 10 messages in one call.
BULK_DELETE = {"sqlite": (1, 1), "postgresql": (1, 1), "mysql": (1, 1)}
#: pop of 10. PostgreSQL: one statement. SQLite: DELETE ... RETURNING in a write transaction.
#: MariaDB/MySQL: the turn and the messages in one locking read, then delete them.
POP_10 = {"sqlite": (1, 3), "postgresql": (1, 1), "mysql": (2, 3)}


@contextmanager
def counting(driver: SQLDriver) -> Iterator[Counter]:
    counter = Counter()
    driver.database.listen(counter)
    try:
        yield counter
    finally:
        driver.database.unlisten(counter)


def count(driver: SQLDriver, call: Callable[[], object], label: str) -> tuple[int, int]:
    with counting(driver) as counter:
        call()
    sent = f"{len(counter.statements)} statement(s), {counter.round_trips} round trip(s)"
    print(f"\n{driver.uri} [{kind(driver)}] {label}: {sent}")
    for statement in counter.statements:
        print(f"    {statement[:160]}")
    return len(counter.statements), counter.round_trips


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
    listed = driver.message_controller.list(queue, project=project, limit=100).items
    assert [m["body"] for m in listed] == [{"n": 0}] + [{"n": i} for i in range(10)]


def test_post_promoting_due_delayed_messages_stays_one_transaction(driver, queue, project, clock) -> None:
    """Not a budget, a check that the slow path (promotion) is taken only when something is due."""
    driver.message_controller.post(queue, [{"ttl": 300, "body": 0, "delay": 5}], CLIENT, project=project)
    assert count(driver, lambda: post(driver, queue, project, 10), "post 10, delayed not due") == POST_10[kind(driver)]
    clock.advance(10)
    promoting = count(driver, lambda: post(driver, queue, project, 10), "post 10, promoting")
    assert promoting[0] > POST_10[kind(driver)][0]
    listed = [m["body"] for m in driver.message_controller.list(queue, project=project, limit=100).items]
    batch = [{"n": i} for i in range(10)]
    assert listed == [*batch, 0, *batch], "the due message takes its place before the batch"


def test_a_posts_rows_hold_their_values_in_the_order_of_the_insert(driver: SQLDriver) -> None:
    assert tuple(driver.database.statements["message_insert"].row_names) == INSERTED


def test_postgresqls_pages_write_their_limit_as_a_checked_number(driver: SQLDriver) -> None:
    """So that PostgreSQL keeps their plan (a bound LIMIT makes every page planned anew); nothing else changes."""
    statements = driver.database.statements
    if driver.database.kind != "postgresql":
        assert not any(statements[name].literal_limit for name in statements)
        return
    text, params = statements["page_unclaimed"].render({"limit": 7, "after": 0})
    assert "LIMIT 7" in text and "%(limit)s" not in text and params == {"limit": 7, "after": 0}
    for cached in (1, 7):  # True and 7.0 are keys equal to these: refused all the same
        statements["page"].render({"limit": cached})
    for bad in (0, 101, True, "7 OR 1=1", 7.0):
        with pytest.raises(ValueError, match="limit must be an int"):
            statements["page"].render({"limit": bad})
    assert "LIMIT %(limit)s" in statements["page_unclaimed_lapsed"].render({"limit": 7})[0]


def test_list_page(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 20)
    page = driver.message_controller.list(queue, project=project, limit=10)
    listing = lambda: driver.message_controller.list(queue, project=project, limit=10)  # noqa: E731
    assert count(driver, listing, "list page") == LIST_PAGE[kind(driver)]
    following = driver.message_controller.list(queue, project=project, marker=page.marker, limit=10)
    assert len(following.items) == 10


def test_an_unclaimed_page_reads_again_while_a_claim_has_ended_uncleared(
    driver: SQLDriver, queue: str, project: str, clock: ManualClock
) -> None:
    """The page's statement also says whether a claim has ended in the queue without being cleared: only then is
    the page read again with those messages (a second statement), and they are on it."""
    posted = post(driver, queue, project, 3)
    driver.claim_controller.create(queue, {"ttl": 10}, project=project, limit=2)
    listing = lambda: driver.message_controller.list(queue, project=project, limit=10)  # noqa: E731
    assert count(driver, listing, "unclaimed page, a live claim") == LIST_PAGE[kind(driver)]
    assert [message["id"] for message in listing().items] == posted[2:]
    clock.advance(10)
    statements, _ = count(driver, listing, "unclaimed page, a claim ended")
    assert statements == LIST_PAGE[kind(driver)][0] + 1
    assert [message["id"] for message in listing().items] == posted


def test_claim_of_10_messages(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 20)
    claims = driver.claim_controller
    claiming = lambda: claims.create(queue, {"ttl": 60}, project=project, limit=10)  # noqa: E731
    assert count(driver, claiming, "claim 10") == CLAIM_10[kind(driver)]
    claim_id, messages = claims.create(queue, {"ttl": 60}, project=project, limit=10)
    assert claim_id is not None and len(messages) == 10


def test_claim_of_an_empty_queue_records_no_claim(driver: SQLDriver, queue: str, project: str) -> None:
    claims = driver.claim_controller
    with counting(driver) as counter:
        assert claims.create(queue, {"ttl": 60}, project=project) == (None, [])
    assert len(counter.statements) <= CLAIM_10[kind(driver)][0]
    queues, claims_table = driver.tables.queues, driver.tables.claims
    mine = claims_table.join(queues, claims_table.c.queue_id == queues.c.id)
    with driver.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(mine).where(queues.c.project == project)
        assert connection.execute(query).scalar() == 0


def test_delete_of_a_message(driver: SQLDriver, queue: str, project: str) -> None:
    message_id = post(driver, queue, project, 1)[0]
    messages = driver.message_controller
    assert count(driver, lambda: messages.delete(queue, message_id, project=project), "delete") == DELETE[kind(driver)]
    assert messages.bulk_get(queue, [message_id], project=project) == []


def test_delete_with_its_claim(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 1)
    claim_id, claimed = driver.claim_controller.create(queue, {"ttl": 60}, project=project)
    messages = driver.message_controller
    deleting = lambda: messages.delete(queue, claimed[0]["id"], project=project, claim=claim_id)  # noqa: E731
    assert count(driver, deleting, "delete with claim") == DELETE[kind(driver)]


def test_bulk_delete_of_a_claims_messages(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 10)
    claim_id, claimed = driver.claim_controller.create(queue, {"ttl": 60}, project=project, limit=10)
    messages = driver.message_controller
    ids = [m["id"] for m in claimed]
    deleting = lambda: messages.bulk_delete(queue, ids, project=project, claim=claim_id)  # noqa: E731
    assert count(driver, deleting, "bulk delete under the claim") == BULK_DELETE[kind(driver)]
    assert messages.bulk_get(queue, ids, project=project) == []


def test_pop_of_10_messages(driver: SQLDriver, queue: str, project: str) -> None:
    post(driver, queue, project, 20)
    popping = lambda: driver.message_controller.pop(queue, limit=10, project=project)  # noqa: E731
    assert count(driver, popping, "pop 10") == POP_10[kind(driver)]
