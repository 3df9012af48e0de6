"""Messages of the SQL driver: atomic posts whose markers follow commit order, listing, deletes, pop.

A post takes its queue row's lock while it moves the queue's counters and inserts the whole batch in the same
transaction, so producers on one queue commit in marker order and an observer paging with markers never skips
a message that commits later behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marconi.storage import tokens
from marconi.storage.base import MessageBase, MessageRef, Position, Project, StoredMessage
from marconi.storage.errors import MessageConflict, MessageIsClaimed, MessageNotClaimedBy, QueueDoesNotExist
from marconi.storage.validation import NewMessage

from . import queues
from .queues import QueueRow, message_columns, named, on_queue, stored_message

if TYPE_CHECKING:
    from . import SQLDriver
    from .schema import Tables

_INSERT_CHUNK = 1000  # rows per INSERT: keeps every statement under the backends' bound-parameter limits
_DELETE_ATTEMPTS = 3


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

    def _post(
        self, queue: str, project: Project, messages: list[NewMessage], client_uuid: str, now: float
    ) -> list[str]:
        visible = sum(1 for new in messages if new.delay == 0)
        delays = [now + new.delay for new in messages if new.delay > 0]
        first_due = min(delays) if delays else None

        def work(connection: Connection) -> list[str]:
            start, queue_row = self._take_counters(connection, queue, project, len(messages), visible, first_due, now)
            return self._insert(connection, queue_row, start, messages, client_uuid, now)

        def conflict(detail: str) -> MessageConflict:
            return MessageConflict(queue, project, detail)

        return self.driver.database.run(work, conflict=conflict)

    def _take_counters(
        self,
        connection: Connection,
        queue: str,
        project: Project,
        count: int,
        visible: int,
        first_due: float | None,
        now: float,
    ) -> tuple[int, QueueRow]:
        """Lock the queue row and reserve ``count`` numbers and ``visible`` positions, promoting due messages first.

        Returns the last position before the batch's and the queue row as it is after the batch.
        """
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
                raise QueueDoesNotExist(queue, project)
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
            raise QueueDoesNotExist(queue, project)
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

    def _insert(
        self,
        connection: Connection,
        queue: QueueRow,
        start: int,
        messages: list[NewMessage],
        client_uuid: str,
        now: float,
    ) -> list[str]:
        number = queue.last_number - len(messages)
        position = start
        rows: list[dict[str, Any]] = []
        for new in messages:
            number += 1
            if new.delay == 0:
                position += 1
            rows.append(
                {
                    "queue_id": queue.id,
                    "number": number,
                    "position": position if new.delay == 0 else None,
                    "client": client_uuid,
                    "body": new.body,
                    "created": now,
                    "expires": now + new.ttl,
                    "visible_at": now + new.delay,
                    "claim_id": None,
                    "claim_expires": None,
                }
            )
        for first in range(0, len(rows), _INSERT_CHUNK):
            connection.execute(sa.insert(self._tables.messages).values(rows[first : first + _INSERT_CHUNK]))
        return [tokens.encode_pair(queue.id, row["number"]) for row in rows]

    # -- reads ---------------------------------------------------------------------------------------------------

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> list[StoredMessage]:
        t = self._tables
        m = t.messages.c

        def work(connection: Connection, row: QueueRow) -> list[StoredMessage]:
            numbers = [number for incarnation, number in refs if incarnation == row.id]
            if not numbers:
                return []
            query = sa.select(*message_columns(t)).where(m.queue_id == row.id, m.number.in_(numbers), m.expires > now)
            found = {int(r.number): stored_message(row.id, r, now) for r in connection.execute(query)}
            return [found[number] for number in numbers if number in found]

        return on_queue(self.driver.database, t, queue, project, now, work, write=False)

    def _list(
        self,
        queue: str,
        project: Project,
        after: Position | None,
        limit: int,
        hide_from: str | None,
        include_claimed: bool,
        now: float,
    ) -> tuple[list[StoredMessage], str]:
        t = self._tables
        m = t.messages.c

        def work(connection: Connection, row: QueueRow) -> tuple[list[StoredMessage], str]:
            start = after[1] if after is not None and after[0] == row.id else 0
            query = sa.select(m.position, *message_columns(t)).where(
                m.queue_id == row.id, m.position > start, m.expires > now
            )
            if not include_claimed:
                query = query.where(unclaimed(t, now))
            if hide_from is not None:
                query = query.where(m.client != hide_from)
            page = connection.execute(query.order_by(m.position).limit(limit)).all()
            if len(page) == limit:
                end = int(page[-1].position)
            else:
                # A short page examined the whole queue as of the counter read before it: every position up to
                # that counter had committed with it (READ COMMITTED), so the marker may move past all of them.
                end = max(start, row.last_position, int(page[-1].position) if page else 0)
            return [stored_message(row.id, r, now) for r in page], tokens.encode_pair(row.id, end)

        return on_queue(self.driver.database, t, queue, project, now, work, write=False)

    # -- deletes -------------------------------------------------------------------------------------------------

    def _delete(
        self, queue: str, project: Project, ref: MessageRef, message_id: str, claim: str | None, now: float
    ) -> None:
        t = self._tables
        m = t.messages.c
        incarnation, number = ref
        target = sa.and_(
            m.queue_id == incarnation,
            m.number == number,
            m.queue_id.in_(queues.queue_ids(t, queue, project)),
            m.expires > now,
        )
        held = sa.and_(m.claim_id == claim, m.claim_expires > now) if claim is not None else unclaimed(t, now)
        delete = sa.delete(t.messages).where(target, held)
        inspect = sa.select(m.claim_id, m.claim_expires).where(target)

        def work(connection: Connection) -> None:
            for _ in range(_DELETE_ATTEMPTS):
                if connection.execute(delete).rowcount:
                    return
                row = connection.execute(inspect).first()
                if row is None:  # missing, expired, or not in this queue: nothing to do
                    return
                holder = row.claim_id if row.claim_expires is not None and row.claim_expires > now else None
                if holder is not None and claim is None:
                    raise MessageIsClaimed(message_id)
                if claim is not None and claim != holder:
                    raise MessageNotClaimedBy(message_id, claim)
                # Its claim changed between the two statements: try the delete again.

        self.driver.database.run(work)

    def _bulk_delete(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> None:
        t = self._tables
        m = t.messages.c

        def work(connection: Connection) -> None:
            row = queues.find(connection, t, queue, project)
            numbers = [number for incarnation, number in refs if row is not None and incarnation == row.id]
            if row is None or not numbers:
                return
            mine = sa.and_(m.queue_id == row.id, m.number.in_(numbers))
            # Lock in primary-key order, so concurrent bulk deletes cannot deadlock one another.
            locked = list(
                connection.execute(
                    sa.select(m.number)
                    .where(mine, m.expires > now, unclaimed(t, now))
                    .order_by(m.number)
                    .with_for_update()
                ).scalars()
            )
            if locked:
                connection.execute(sa.delete(t.messages).where(m.queue_id == row.id, m.number.in_(locked)))

        self.driver.database.run(work)

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> list[StoredMessage]:
        t = self._tables
        m = t.messages.c
        skip_locked = self.driver.database.skip_locked

        def work(connection: Connection, row: QueueRow) -> list[StoredMessage]:
            chosen = connection.execute(oldest_eligible(t, row.id, now, limit, skip_locked)).all()
            if chosen:
                numbers = [int(r.number) for r in chosen]
                connection.execute(sa.delete(t.messages).where(m.queue_id == row.id, m.number.in_(numbers)))
            return [stored_message(row.id, r, now) for r in chosen]

        return on_queue(self.driver.database, t, queue, project, now, work, write=True, hands_out=True)
