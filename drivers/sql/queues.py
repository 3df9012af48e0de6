"""Queues of the SQL driver, and the queue-row steps the other controllers share.

A queue row carries the queue's incarnation (its id) and its two counters. Whoever moves a counter holds the
row's lock until commit, so positions (markers) are handed out in commit order: the observer guarantee.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from marconi.storage.base import QueueBase
from marconi.storage.hooks import Project, QueueCounts, Row

if TYPE_CHECKING:
    from . import SQLDriver
    from .engine import Database
    from .schema import Tables

T = TypeVar("T")

_CHUNK = 500  # rows per promotion UPDATE


def stored_project(project: Project) -> str:
    """Project None is stored as '', which no caller can name."""
    return "" if project is None else project


@dataclass(frozen=True)
class QueueRow:
    id: int
    last_position: int
    last_number: int
    next_due: float | None

    def due(self, now: float) -> bool:
        return self.next_due is not None and self.next_due <= now


def _state_columns(tables: Tables) -> list[sa.ColumnElement[Any]]:
    q = tables.queues.c
    return [q.id, q.last_position, q.last_number, q.next_due]


def _row(row: Any) -> QueueRow:
    return QueueRow(int(row.id), int(row.last_position), int(row.last_number), row.next_due)


def named(tables: Tables, name: str, project: Project) -> sa.ColumnElement[bool]:
    q = tables.queues.c
    return sa.and_(q.project == stored_project(project), q.name == name)


def queue_ids(tables: Tables, name: str, project: Project) -> sa.Select[Any]:
    """``SELECT id`` of the named queue, for ``queue_id IN (...)`` conditions."""
    return sa.select(tables.queues.c.id).where(named(tables, name, project))


def find(connection: Connection, tables: Tables, name: str, project: Project) -> QueueRow | None:
    row = connection.execute(sa.select(*_state_columns(tables)).where(named(tables, name, project))).first()
    return None if row is None else _row(row)


def lock(connection: Connection, tables: Tables, condition: sa.ColumnElement[bool]) -> QueueRow | None:
    """The queue row, locked until commit (SQLite: the whole database already is)."""
    query = sa.select(*_state_columns(tables)).where(condition).with_for_update()
    row = connection.execute(query).first()
    return None if row is None else _row(row)


def due_messages(
    connection: Connection, tables: Tables, queue_id: int, base: int, now: float
) -> tuple[int, float | None]:
    """Give due delayed messages positions ``base+1..``, in order of due time then posting order.

    The caller holds the queue row's lock and stores the new counter. Returns how many were promoted and the
    earliest due time among the delayed messages left.
    """
    m = tables.messages.c
    delayed = sa.and_(m.queue_id == queue_id, m.position.is_(None), m.expires > now)
    numbers = list(
        connection.execute(
            sa.select(m.number).where(delayed, m.visible_at <= now).order_by(m.visible_at, m.number)
        ).scalars()
    )
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        positions = {number: base + start + offset + 1 for offset, number in enumerate(chunk)}
        connection.execute(
            sa.update(tables.messages)
            .where(m.queue_id == queue_id, m.number.in_(chunk))
            .values(position=sa.case(positions, value=m.number))
        )
    next_due = connection.execute(sa.select(sa.func.min(m.visible_at)).where(delayed, m.visible_at > now)).scalar()
    return len(numbers), next_due


def promote(connection: Connection, tables: Tables, condition: sa.ColumnElement[bool], now: float) -> QueueRow | None:
    """Lock the queue row and promote its due delayed messages; the fresh row, or None if it is gone."""
    queue = lock(connection, tables, condition)
    if queue is None or not queue.due(now):
        return queue
    promoted, next_due = due_messages(connection, tables, queue.id, queue.last_position, now)
    last_position = queue.last_position + promoted
    connection.execute(
        sa.update(tables.queues)
        .where(tables.queues.c.id == queue.id)
        .values(last_position=last_position, next_due=next_due)
    )
    return QueueRow(queue.id, last_position, queue.last_number, next_due)


class _Promote:
    """A read found due delayed messages: the work reruns in a write transaction that promotes them first."""


_PROMOTE = _Promote()


def on_queue(
    database: Database,
    tables: Tables,
    name: str,
    project: Project,
    now: float,
    work: Callable[[Connection, QueueRow], T],
    *,
    write: bool,
    hands_out: bool = False,
) -> T | None:
    """Run ``work`` on the queue as it is now, due delayed messages promoted; None if there is no such queue.

    ``hands_out``: ``work`` hands out the oldest eligible messages (claim, pop). On MySQL-family these take turns
    on the queue row's lock, with each other and with posts: there a locking read sees a post's rows commit one by
    one, and SKIP LOCKED passes over rows another claim merely looked at, so claims running side by side can take
    younger messages first. PostgreSQL claims side by side (its locking reads use the statement's snapshot, and
    SKIP LOCKED skips only what others take); SQLite has one writer anyway.
    """
    take_turns = hands_out and database.kind == "mysql"

    def attempt(connection: Connection, may_promote: bool) -> T | _Promote | None:
        if take_turns:
            queue = lock(connection, tables, named(tables, name, project))
        else:
            queue = find(connection, tables, name, project)
        if queue is not None and queue.due(now):
            if not may_promote:
                return _PROMOTE
            queue = promote(connection, tables, named(tables, name, project), now)
        if queue is None:
            return None
        return work(connection, queue)

    if not write:
        result = database.run(lambda connection: attempt(connection, False), write=False)
        if not isinstance(result, _Promote):
            return result
    written = database.run(lambda connection: attempt(connection, True), write=True)
    assert not isinstance(written, _Promote)
    return written


def row_of(row: Any) -> Row:
    """A messages row (``message_columns``) as the base wants it."""
    position = None if row.position is None else int(row.position)
    return Row(int(row.number), row.body, row.created, row.expires, row.claim_id, row.claim_expires, position)


def message_columns(tables: Tables) -> list[sa.ColumnElement[Any]]:
    m = tables.messages.c
    return [m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position]


class SQLQueues(QueueBase):
    driver: SQLDriver

    @property
    def _tables(self) -> Tables:
        return self.driver.tables

    def _upsert(self, name: str, metadata: str, project: Project) -> bool:
        t = self._tables
        update = sa.update(t.queues).where(named(t, name, project)).values(metadata=metadata)

        def work(connection: Connection) -> bool:
            if connection.execute(update).rowcount:
                return False
            try:
                with connection.begin_nested():
                    connection.execute(
                        sa.insert(t.queues).values(project=stored_project(project), name=name, metadata=metadata)
                    )
                return True
            except exc.IntegrityError:  # created meanwhile by someone else
                connection.execute(update)
                return False

        return self.driver.database.run(work)

    def _get(self, name: str, project: Project) -> str | None:
        t = self._tables
        query = sa.select(t.queues.c.metadata).where(named(t, name, project))
        metadata = self.driver.database.run(lambda connection: connection.execute(query).scalar(), write=False)
        return None if metadata is None else str(metadata)

    def _list(
        self, project: Project, marker: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        q = self._tables.queues.c
        columns = [q.name, q.metadata] if detailed else [q.name]
        query = sa.select(*columns).where(q.project == stored_project(project))
        if marker is not None:
            query = query.where(q.name > marker)
        query = query.order_by(q.name).limit(limit)

        def work(connection: Connection) -> list[tuple[str, str | None]]:
            rows = connection.execute(query).all()
            return [(row.name, row.metadata if detailed else None) for row in rows]

        return self.driver.database.run(work, write=False)

    def _delete(self, name: str, project: Project) -> None:
        t = self._tables

        def work(connection: Connection) -> None:
            queue = lock(connection, t, named(t, name, project))
            if queue is None:
                return
            connection.execute(sa.delete(t.messages).where(t.messages.c.queue_id == queue.id))
            connection.execute(sa.delete(t.claims).where(t.claims.c.queue_id == queue.id))
            connection.execute(sa.delete(t.queues).where(t.queues.c.id == queue.id))

        self.driver.database.run(work)

    def _stats(self, name: str, project: Project, now: float) -> QueueCounts | None:
        t = self._tables
        m = t.messages.c

        def work(connection: Connection, queue: QueueRow) -> QueueCounts:
            mine = m.queue_id == queue.id

            def count(*conditions: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
                return sa.select(sa.func.count()).select_from(t.messages).where(mine, *conditions).scalar_subquery()

            total, claimed, delayed = connection.execute(
                sa.select(
                    count(m.expires > now),
                    count(m.claim_expires > now),  # a live claim's messages outlive it: no expiry test needed
                    count(m.position.is_(None), m.expires > now),
                )
            ).one()
            visible = sa.select(*message_columns(t)).where(mine, m.position > 0, m.expires > now).limit(1)
            oldest = connection.execute(visible.order_by(m.position)).first()
            newest = connection.execute(visible.order_by(m.position.desc())).first() if oldest else None
            return QueueCounts(
                incarnation=queue.id,
                claimed=int(claimed),
                free=int(total) - int(claimed) - int(delayed),
                total=int(total),
                oldest=row_of(oldest) if oldest else None,
                newest=row_of(newest) if newest else None,
            )

        return on_queue(self.driver.database, t, name, project, now, work, write=False)
