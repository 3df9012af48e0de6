"""Messages of the SQL driver: atomic posts whose markers follow commit order, pages, deletes, pop.

A post takes its queue row's lock while it moves the queue's counters and inserts the whole batch in the same
transaction, so producers on one queue commit in marker order and an observer paging with markers never skips
a message that commits later behind it. A page reads the queue's counter in the same statement as its
messages. Deletes are single statements that check the queue and the claim in their WHERE clause.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from marconi.storage.base import MessageBase
from marconi.storage.hooks import (
    BulkDelete,
    BulkDeleted,
    Holder,
    Listed,
    ListRequest,
    MessageDelete,
    MessageRef,
    Posted,
    PostRequest,
    Project,
    Row,
    Rows,
)

from .queues import QueueRow, due, named, promote, promoted, row_of, rows_of

if TYPE_CHECKING:
    from . import SQLDriver
    from .engine import Database, Session


def by_position(rows: list[Row]) -> list[Row]:
    """Rows a statement returned in no particular order (RETURNING), in position order."""
    return sorted(rows, key=lambda row: row.position or 0)


def page_of(records: list[tuple[Any, ...]]) -> tuple[tuple[Any, ...] | None, list[Row]]:
    """A page statement's queue row (the record without a body; None: no such queue) and its messages."""
    queue = None
    rows = []
    for record in records:
        if record[1] is None:
            queue = record
        else:
            rows.append(row_of(record))
    return queue, rows


class Locking:
    """A claim or pop that took nothing: lapsed claims or due messages call for the path under the queue's lock."""


LOCKING = Locking()


def take_side_by_side(database: Database, statement: str, parameters: dict[str, Any]) -> Rows | Locking | None:
    """PostgreSQL's claim or pop in one statement (``sql/postgresql.sql``): the messages it took; None if there is
    no such queue; LOCKING when it took nothing because lapsed claims or due messages call for the locking path."""
    found = database.alone(statement, **parameters).rows
    if not found:
        return None
    queue_id, next_due, lapsed = found[0][:3]
    if lapsed or due(next_due, parameters["now"]):
        return LOCKING
    return Rows(int(queue_id), by_position(rows_of(found, 3)))


def take(
    session: Session, name: str, project: Project, now: float, limit: int, looked: bool = False
) -> tuple[QueueRow, list[Row]] | None:
    """Under the queue row's lock: promote due messages, clear lapsed claims, and lock the oldest eligible
    messages (up to ``limit``, by position). None if there is no such queue. Claims and pops start here.
    ``looked``: this transaction has looked for eligible messages and found none; only lapsed claims or due
    messages can change that."""
    if "queue_take" in session.database.statements:  # the turn and the messages in one statement (MariaDB/MySQL)
        found = session.run("queue_take", now=now, limit=limit, **named(name, project)).rows
        turn, looked = next((record for record in found if record[0] is not None), None), True
    else:
        found, turn = [], session.run("queue_turn", now=now, **named(name, project)).first()
    if turn is None:
        return None
    queue = QueueRow.of(turn)
    lapsed = bool(turn[4])
    if looked and not (lapsed or queue.due(now)):
        return queue, by_position(rows_of(found, 5))
    queue = promote(session, queue, now)
    if lapsed:
        session.run("lapsed_claims_clear", queue_id=queue.id, now=now)
    chosen = session.run("eligible_lock", queue_id=queue.id, now=now, limit=limit).rows
    return queue, [row_of(record) for record in chosen]


#: The values of each row ``_insert`` hands message_insert, in order.
INSERTED = ("queue_id", "number", "position", "client", "body", "created", "expires", "visible_at")


class SQLMessages(MessageBase):
    driver: SQLDriver

    # -- post ----------------------------------------------------------------------------------------------------

    def _post(self, request: PostRequest) -> Posted | None:
        database = self.driver.database
        count = len(request.messages)
        if database.kind == "postgresql":
            posted = database.alone("post", **self._batch(request)).first()
            if posted is not None:
                queue_id, last_number = posted
                return Posted(int(queue_id), list(range(last_number - count + 1, last_number + 1)))
            # The queue is missing, or a delayed message is due: the general path below tells which.
        elif database.kind == "sqlite":

            def advance_then_insert(session: Session) -> Posted | None:
                after = session.run("post_advance", **self._counts(request)).first()
                if after is None:  # missing, or a promotion due
                    return self._post_locked(session, request)
                queue = QueueRow(int(after[0]), int(after[1]), int(after[2]), None)
                return self._insert(session, queue, request)

            return database.transaction(advance_then_insert)
        return database.transaction(lambda session: self._post_locked(session, request))

    @staticmethod
    def _counts(request: PostRequest) -> dict[str, Any]:
        return {
            "visible": request.visible,
            "count": len(request.messages),
            "first_due": request.first_due,
            "now": request.now,
            **named(request.queue, request.project),
        }

    def _batch(self, request: PostRequest) -> dict[str, Any]:
        """The parameters of PostgreSQL's one-statement post: the batch as arrays, in input order."""
        ranks: list[int | None] = []
        visible = 0
        for message in request.messages:
            visible += not message.delayed
            ranks.append(None if message.delayed else visible)
        return {
            **self._counts(request),
            "client": request.client,
            "ordinals": list(range(1, len(request.messages) + 1)),
            "ranks": ranks,
            "bodies": [message.body for message in request.messages],
            "expirations": [message.expires for message in request.messages],
            "visible_ats": [message.visible_at for message in request.messages],
        }

    def _post_locked(self, session: Session, request: PostRequest) -> Posted | None:
        """Lock the queue row, promote what is due, advance the counters, insert the batch."""
        queue = promoted(session, request.queue, request.project, request.now)
        if queue is None:
            return None
        pending = [when for when in (queue.next_due, request.first_due) if when is not None]
        after = QueueRow(
            queue.id,
            queue.last_position + request.visible,
            queue.last_number + len(request.messages),
            min(pending) if pending else None,
        )
        session.run(
            "queue_advance",
            queue_id=after.id,
            last_position=after.last_position,
            last_number=after.last_number,
            next_due=after.next_due,
        )
        return self._insert(session, after, request)

    @staticmethod
    def _insert(session: Session, queue: QueueRow, request: PostRequest) -> Posted:
        """Insert the batch numbered and placed just before the counters of ``queue`` (as advanced); each row's
        values in the order of message_insert's VALUES (``INSERTED``)."""
        first = queue.last_number - len(request.messages) + 1
        numbers = list(range(first, queue.last_number + 1))
        position = queue.last_position - request.visible
        queue_id, client, now = queue.id, request.client, request.now
        rows = []
        for number, message in zip(numbers, request.messages, strict=True):
            if not message.delayed:
                position += 1
            placed = None if message.delayed else position
            rows.append((queue_id, number, placed, client, message.body, now, message.expires, message.visible_at))
        session.insert("message_insert", rows)
        return Posted(queue.id, numbers)

    # -- reads ---------------------------------------------------------------------------------------------------

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> Rows | None:
        numbers = sorted({number for _, number in refs})
        found = self.driver.database.read("messages_by_number", numbers=numbers, now=now, **named(queue, project))
        if not found.rows:
            return None
        return Rows(int(found.rows[0][0]), rows_of(found.rows, 2))

    def _list(self, request: ListRequest) -> Listed | None:
        database = self.driver.database
        # An unclaimed page leaves out, where it can, the messages whose claim ended without being cleared.
        full = "page" if request.include_claimed else "page_unclaimed_lapsed"
        params = {
            "after": request.after,
            "now": request.now,
            "hide": request.hide_client or "",
            "limit": request.limit,
            **named(request.queue, request.project),
        }
        queue, page = page_of(database.read("page" if request.include_claimed else "page_unclaimed", **params).rows)
        if queue is not None and queue[3] is not None and queue[3] <= request.now:  # a claim ended, not cleared
            queue, page = page_of(database.read(full, **params).rows)
        if queue is not None and due(queue[2], request.now):

            def promote_then_read(session: Session) -> list[tuple[Any, ...]]:
                promoted(session, request.queue, request.project, request.now)
                return session.run(full, **params).rows

            queue, page = page_of(database.transaction(promote_then_read))
        if queue is None:
            return None
        # The counter came from the same statement as the page: every position up to it was visible to it.
        return Listed(int(queue[0]), by_position(page)[: request.limit], int(queue[6]))

    # -- deletes -------------------------------------------------------------------------------------------------

    def _delete(self, request: MessageDelete) -> Holder | None:
        database = self.driver.database
        incarnation, number = request.ref
        target = {"incarnation": incarnation, "number": number, "now": request.now}
        target.update(named(request.queue, request.project))
        if request.claim_id is None:
            deleted = database.read("message_delete_unclaimed", **target).rowcount
        else:
            deleted = database.read("message_delete_held", claim_id=request.claim_id, **target).rowcount
        if deleted:
            return None
        holder = database.read("message_holder", **target).first()
        return None if holder is None else Holder(holder[0], holder[1])

    def _bulk_delete(self, request: BulkDelete) -> BulkDeleted | None:
        database = self.driver.database
        by_incarnation: dict[int, list[int]] = defaultdict(list)
        for incarnation, number in request.refs:
            by_incarnation[incarnation].append(number)
        common = {"now": request.now, **named(request.queue, request.project)}
        if request.claim_id is not None:
            common["claim_id"] = request.claim_id
        statement = "messages_delete_unclaimed" if request.claim_id is None else "messages_delete_held"
        deleted = sum(
            database.read(statement, incarnation=incarnation, numbers=sorted(numbers), **common).rowcount
            for incarnation, numbers in by_incarnation.items()
        )
        if request.claim_id is None or deleted:
            return BulkDeleted(deleted)
        alive = database.read("claim_alive", **common).first()
        return None if alive is None else BulkDeleted(0, claim_live=alive[1] is not None)

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> Rows | None:
        database = self.driver.database
        if database.kind == "postgresql":
            popped = take_side_by_side(database, "pop", {"now": now, "limit": limit, **named(queue, project)})
            if not isinstance(popped, Locking):
                return popped

        def pop_under_lock(session: Session) -> Rows | None:
            if "pop_quick" in database.statements:  # SQLite: the messages taken in one statement, most times
                quick = session.run("pop_quick", now=now, limit=limit, **named(queue, project)).rows
                if quick:
                    return Rows(int(quick[0][0]), by_position(rows_of(quick, 1)))
            taken = take(session, queue, project, now, limit, looked="pop_quick" in database.statements)
            if taken is None:
                return None
            queue_row, chosen = taken
            if chosen:
                session.run("messages_remove", queue_id=queue_row.id, numbers=[row.number for row in chosen])
            return Rows(queue_row.id, chosen)

        return database.transaction(pop_under_lock)
