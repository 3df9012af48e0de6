"""Queues of the SQL driver, and the queue-row steps the other controllers share.

A queue row carries the queue's incarnation (its id) and its two counters. Whoever moves a counter holds the
row's lock until commit, so positions (markers) are handed out in commit order: the observer guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from marconi.storage.base import QueueBase
from marconi.storage.hooks import Project, QueueCounts, Row

if TYPE_CHECKING:
    from . import SQLDriver
    from .engine import Session


def stored_project(project: Project) -> str:
    """Project None is stored as '', which no caller can name."""
    return "" if project is None else project


def named(name: str, project: Project) -> dict[str, Any]:
    """The parameters that name a queue in every statement."""
    return {"project": stored_project(project), "name": name}


def row_of(values: Sequence[Any]) -> Row:
    """A message as statements select it: number, body, created, expires, claim_id, claim_expires, position."""
    number, body, created, expires, claim_id, claim_expires, position = values
    place = None if position is None else int(position)
    return Row(int(number), body, created, expires, claim_id, claim_expires, place)


def rows_of(records: Iterable[Sequence[Any]], start: int) -> list[Row]:
    """The messages of joined records whose message columns begin at ``start`` (None where none joined)."""
    return [row_of(record[start : start + 7]) for record in records if record[start] is not None]


@dataclass(frozen=True)
class QueueRow:
    """A queue row as locked by ``queue_lock``."""

    id: int
    last_position: int
    last_number: int
    next_due: float | None

    @classmethod
    def of(cls, values: Sequence[Any]) -> QueueRow:
        return cls(int(values[0]), int(values[1]), int(values[2]), values[3])

    def due(self, now: float) -> bool:
        return self.next_due is not None and self.next_due <= now


def due(next_due: float | None, now: float) -> bool:
    """Whether delayed messages wait for their positions (a read then runs the promoting path instead)."""
    return next_due is not None and next_due <= now


def lock(session: Session, name: str, project: Project) -> QueueRow | None:
    """The queue row, locked until commit (SQLite: the whole database already is); None if there is none."""
    found = session.run("queue_lock", **named(name, project)).first()
    return None if found is None else QueueRow.of(found)


def promote(session: Session, queue: QueueRow, now: float) -> QueueRow:
    """Give due delayed messages positions after the last, in order of due time then posting order; the queue
    row as it is then. The caller holds the queue row's lock."""
    if not queue.due(now):
        return queue
    numbers = [int(number) for (number,) in session.run("due_messages", queue_id=queue.id, now=now).rows]
    if numbers:
        places = [
            {"queue_id": queue.id, "number": number, "position": queue.last_position + offset}
            for offset, number in enumerate(numbers, start=1)
        ]
        session.many("message_place", places)
    next_due = session.run("next_due", queue_id=queue.id, now=now).rows[0][0]
    last_position = queue.last_position + len(numbers)
    session.run("queue_promoted", queue_id=queue.id, last_position=last_position, next_due=next_due)
    return QueueRow(queue.id, last_position, queue.last_number, next_due)


def promoted(session: Session, name: str, project: Project, now: float) -> QueueRow | None:
    """Lock the queue row and promote its due delayed messages; None if there is no such queue."""
    queue = lock(session, name, project)
    return None if queue is None else promote(session, queue, now)


class SQLQueues(QueueBase):
    driver: SQLDriver

    def _upsert(self, name: str, metadata: str, project: Project) -> bool:
        database = self.driver.database
        for _ in range(3):  # update, else insert, else (created meanwhile) update
            if database.read("queue_update", metadata=metadata, **named(name, project)).rowcount:
                return False
            try:
                database.read("queue_insert", metadata=metadata, **named(name, project))
                return True
            except database.dbapi_error as error:
                if not self.driver.database.is_unique_violation(error):
                    raise
        return False

    def _get(self, name: str, project: Project) -> str | None:
        found = self.driver.database.read("queue_metadata", **named(name, project)).first()
        return None if found is None else str(found[0])

    def _list(
        self, project: Project, after: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        statement = "queue_names_detailed" if detailed else "queue_names"
        found = self.driver.database.read(statement, project=stored_project(project), after=after or "", limit=limit)
        return [(str(entry_name), metadata) for entry_name, metadata in found.rows]

    def _delete(self, name: str, project: Project) -> None:
        def work(session: Session) -> None:
            queue = lock(session, name, project)
            if queue is not None:
                session.run("queue_drop_messages", queue_id=queue.id)
                session.run("queue_drop_claims", queue_id=queue.id)
                session.run("queue_drop", queue_id=queue.id)

        self.driver.database.transaction(work)

    def _stats(self, name: str, project: Project, now: float) -> QueueCounts | None:
        database = self.driver.database
        found = database.read("queue_stats", now=now, **named(name, project)).first()
        if found is not None and due(found[1], now):

            def work(session: Session) -> tuple[Any, ...] | None:
                promoted(session, name, project, now)
                return session.run("queue_stats", now=now, **named(name, project)).first()

            found = database.transaction(work)
        if found is None:
            return None
        queue_id, _, total, claimed, delayed, oldest, oldest_created, newest, newest_created = found

        def end(number: Any, created: Any) -> Row | None:
            return None if number is None else Row(int(number), "", created, created)

        return QueueCounts(
            incarnation=int(queue_id),
            claimed=int(claimed),
            free=int(total) - int(claimed) - int(delayed),
            total=int(total),
            oldest=end(oldest, oldest_created),
            newest=end(newest, newest_created),
        )
