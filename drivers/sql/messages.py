"""Messages of the SQL driver: atomic posts whose markers follow commit order, listing, deletes, pop.

A post takes its queue row's lock while it moves the queue's counters and inserts the whole batch in the same
transaction, so producers on one queue commit in marker order and an observer paging with markers never skips
a message that commits later behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

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
    Rows,
)

from . import queues
from .queues import QueueRow, message_columns, named, on_queue, row_of

if TYPE_CHECKING:
    from . import SQLDriver
    from .schema import Tables

_INSERT_CHUNK = 1000  # rows per INSERT: keeps every statement under the backends' bound-parameter limits


def unclaimed(tables: Tables, now: float) -> sa.ColumnElement[bool]:
    m = tables.messages.c
    return sa.or_(m.claim_expires.is_(None), m.claim_expires <= now)


def eligible(tables: Tables, queue_id: int, now: float) -> sa.ColumnElement[bool]:
    """Free to be claimed or popped: visible, unexpired, not held by a live claim."""
    m = tables.messages.c
    return sa.and_(m.queue_id == queue_id, m.position > 0, m.expires > now, unclaimed(tables, now))


def oldest_eligible(tables: Tables, queue_id: int, now: float, limit: int, skip_locked: bool) -> sa.Select[Any]:
    """The oldest ``limit`` eligible messages, locked until commit; rows other transactions hold are skipped.

    On MySQL-family the scan is pinned to the position index: a plan that sorts would lock every eligible row it
    read until commit, and concurrent claimers would skip messages nobody takes, handing out younger ones first.
    """
    m = tables.messages.c
    hint = f"FORCE INDEX ({tables.prefix}messages_position)"
    return (
        sa.select(*message_columns(tables))
        .with_hint(tables.messages, hint, "mysql")
        .with_hint(tables.messages, hint, "mariadb")
        .where(eligible(tables, queue_id, now))
        .order_by(m.position)
        .limit(limit)
        .with_for_update(skip_locked=skip_locked)
    )


class SQLMessages(MessageBase):
    driver: SQLDriver

    @property
    def _tables(self) -> Tables:
        return self.driver.tables

    # -- post ----------------------------------------------------------------------------------------------------

    def _post(self, request: PostRequest) -> Posted | None:
        def work(connection: Connection) -> Posted | None:
            taken = self._take_counters(connection, request)
            if taken is None:
                return None
            start, queue_row = taken
            return self._insert(connection, queue_row, start, request)

        return self.driver.database.run(work)

    def _take_counters(self, connection: Connection, request: PostRequest) -> tuple[int, QueueRow] | None:
        """Lock the queue row and reserve the batch's numbers and positions, promoting due messages first.

        Returns the last position before the batch's and the queue row as it is after the batch; None if there
        is no such queue.
        """
        queue, project, now = request.queue, request.project, request.now
        count, visible, first_due = len(request.messages), request.visible, request.first_due
        t = self._tables
        q = t.queues.c
        if self.driver.database.update_returning:
            values: dict[str, Any] = {"last_position": q.last_position + visible, "last_number": q.last_number + count}
            if first_due is not None:
                values["next_due"] = sa.case(
                    (sa.or_(q.next_due.is_(None), q.next_due > first_due), first_due), else_=q.next_due
                )
            row = connection.execute(
                sa.update(t.queues)
                .where(named(t, queue, project))
                .values(values)
                .returning(q.id, q.last_position, q.last_number, q.next_due)
            ).first()
            if row is None:
                return None
            after = QueueRow(int(row.id), int(row.last_position), int(row.last_number), row.next_due)
            start = after.last_position - visible
            if not after.due(now):  # next_due <= now after the update only if it was before
                return start, after
            # Due delayed messages take the positions before the batch's.
            promoted, next_due = queues.due_messages(connection, t, after.id, start, now)
            pending = [due for due in (next_due, first_due) if due is not None]
            next_due = min(pending) if pending else None
            after = QueueRow(after.id, after.last_position + promoted, after.last_number, next_due)
            connection.execute(
                sa.update(t.queues)
                .where(q.id == after.id)
                .values(last_position=after.last_position, next_due=after.next_due)
            )
            return start + promoted, after
        before = queues.lock(connection, t, named(t, queue, project))
        if before is None:
            return None
        start, next_due = before.last_position, before.next_due
        if before.due(now):
            promoted, next_due = queues.due_messages(connection, t, before.id, start, now)
            start += promoted
        if first_due is not None and (next_due is None or next_due > first_due):
            next_due = first_due
        after = QueueRow(before.id, start + visible, before.last_number + count, next_due)
        connection.execute(
            sa.update(t.queues)
            .where(q.id == before.id)
            .values(last_position=after.last_position, last_number=after.last_number, next_due=after.next_due)
        )
        return start, after

    def _insert(self, connection: Connection, queue: QueueRow, start: int, request: PostRequest) -> Posted:
        number = queue.last_number - len(request.messages)
        position = start
        rows: list[dict[str, Any]] = []
        for new in request.messages:
            number += 1
            if not new.delayed:
                position += 1
            rows.append(
                {
                    "queue_id": queue.id,
                    "number": number,
                    "position": None if new.delayed else position,
                    "client": request.client,
                    "body": new.body,
                    "created": request.now,
                    "expires": new.expires,
                    "visible_at": new.visible_at,
                    "claim_id": None,
                    "claim_expires": None,
                }
            )
        for first in range(0, len(rows), _INSERT_CHUNK):
            connection.execute(sa.insert(self._tables.messages).values(rows[first : first + _INSERT_CHUNK]))
        return Posted(queue.id, [row["number"] for row in rows])

    # -- reads ---------------------------------------------------------------------------------------------------

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> Rows | None:
        t = self._tables
        m = t.messages.c

        def work(connection: Connection, row: QueueRow) -> Rows:
            numbers = [number for incarnation, number in refs if incarnation == row.id]
            if not numbers:
                return Rows(row.id)
            query = sa.select(*message_columns(t)).where(m.queue_id == row.id, m.number.in_(numbers), m.expires > now)
            return Rows(row.id, [row_of(r) for r in connection.execute(query)])

        return on_queue(self.driver.database, t, queue, project, now, work, write=False)

    def _list(self, request: ListRequest) -> Listed | None:
        t = self._tables
        m = t.messages.c
        now = request.now

        def work(connection: Connection, row: QueueRow) -> Listed:
            query = sa.select(*message_columns(t)).where(
                m.queue_id == row.id, m.position > request.after, m.expires > now
            )
            if not request.include_claimed:
                query = query.where(unclaimed(t, now))
            if request.hide_client is not None:
                query = query.where(m.client != request.hide_client)
            page = connection.execute(query.order_by(m.position).limit(request.limit)).all()
            # The counter was read before the page (READ COMMITTED): every position up to it had committed.
            return Listed(row.id, [row_of(r) for r in page], row.last_position)

        return on_queue(self.driver.database, t, request.queue, request.project, now, work, write=False)

    # -- deletes -------------------------------------------------------------------------------------------------

    def _delete(self, request: MessageDelete) -> Holder | None:
        t = self._tables
        m = t.messages.c
        incarnation, number = request.ref
        claim, now = request.claim_id, request.now
        target = sa.and_(
            m.queue_id == incarnation,
            m.number == number,
            m.queue_id.in_(queues.queue_ids(t, request.queue, request.project)),
            m.expires > now,
        )
        held = sa.and_(m.claim_id == claim, m.claim_expires > now) if claim is not None else unclaimed(t, now)
        delete = sa.delete(t.messages).where(target, held)
        inspect = sa.select(m.claim_id, m.claim_expires).where(target)

        def work(connection: Connection) -> Holder | None:
            if connection.execute(delete).rowcount:
                return None
            row = connection.execute(inspect).first()
            return None if row is None else Holder(row.claim_id, row.claim_expires)

        return self.driver.database.run(work)

    def _bulk_delete(self, request: BulkDelete) -> BulkDeleted | None:
        t = self._tables
        m, c = t.messages.c, t.claims.c
        now, claim = request.now, request.claim_id

        def work(connection: Connection) -> BulkDeleted | None:
            row = queues.find(connection, t, request.queue, request.project)
            if row is None:
                return None
            numbers = [number for incarnation, number in request.refs if incarnation == row.id]
            held = unclaimed(t, now) if claim is None else sa.and_(m.claim_id == claim, m.claim_expires > now)
            # Lock in primary-key order, so concurrent bulk deletes cannot deadlock one another.
            locked = (
                list(
                    connection.execute(
                        sa.select(m.number)
                        .where(m.queue_id == row.id, m.number.in_(numbers), m.expires > now, held)
                        .order_by(m.number)
                        .with_for_update()
                    ).scalars()
                )
                if numbers
                else []
            )
            if locked:
                connection.execute(sa.delete(t.messages).where(m.queue_id == row.id, m.number.in_(locked)))
                return BulkDeleted(len(locked))
            if claim is None:
                return BulkDeleted(0)
            live = connection.execute(
                sa.select(c.id).where(c.id == claim, c.queue_id == row.id, c.expires > now)
            ).first()
            return BulkDeleted(0, claim_live=live is not None)

        return self.driver.database.run(work)

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> Rows | None:
        t = self._tables
        m = t.messages.c
        skip_locked = self.driver.database.skip_locked

        def work(connection: Connection, row: QueueRow) -> Rows:
            chosen = connection.execute(oldest_eligible(t, row.id, now, limit, skip_locked)).all()
            if chosen:
                numbers = [int(r.number) for r in chosen]
                connection.execute(sa.delete(t.messages).where(m.queue_id == row.id, m.number.in_(numbers)))
            return Rows(row.id, [row_of(r) for r in chosen])

        return on_queue(self.driver.database, t, queue, project, now, work, write=True, hands_out=True)
