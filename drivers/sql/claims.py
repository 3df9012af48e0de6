"""Claims of the SQL driver: exclusive, leased holds on the oldest eligible messages.

A claim locks the messages it takes (skipping rows other claimers hold right now, where the backend can) and
marks them in the same transaction, so a message is never handed to two live claims. A claimed message lives at
least until the claim's end plus grace; renewing a claim never shortens a message's life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marconi.storage.base import ClaimBase
from marconi.storage.hooks import ClaimRead, ClaimRequest, Project, Renewal, Rows, StoredClaim

from . import queues
from .messages import oldest_eligible
from .queues import QueueRow, message_columns, on_queue, row_of

if TYPE_CHECKING:
    from . import SQLDriver
    from .schema import Tables


def at_least(column: sa.ColumnElement[float], floor: float) -> sa.ColumnElement[float]:
    """``max(column, floor)``, portable."""
    return sa.case((column < floor, floor), else_=column)


class SQLClaims(ClaimBase):
    driver: SQLDriver

    @property
    def _tables(self) -> Tables:
        return self.driver.tables

    def _create(self, request: ClaimRequest) -> Rows | None:
        t = self._tables
        m = t.messages.c
        skip_locked = self.driver.database.skip_locked
        now = request.now

        def work(connection: Connection, row: QueueRow) -> Rows:
            chosen = connection.execute(oldest_eligible(t, row.id, now, request.limit, skip_locked)).all()
            if not chosen:
                return Rows(row.id)
            numbers = [int(r.number) for r in chosen]
            connection.execute(
                sa.insert(t.claims).values(
                    id=request.claim_id, queue_id=row.id, ttl=request.ttl, created=now, expires=request.expires
                )
            )
            connection.execute(
                sa.update(t.messages)
                .where(m.queue_id == row.id, m.number.in_(numbers))
                .values(
                    claim_id=request.claim_id,
                    claim_expires=request.expires,
                    expires=at_least(m.expires, request.message_floor),
                )
            )
            return Rows(row.id, [row_of(r) for r in chosen])

        return on_queue(self.driver.database, t, request.queue, request.project, now, work, write=True, hands_out=True)

    def _get(self, queue: str, project: Project, claim_id: str, now: float) -> ClaimRead | None:
        t = self._tables
        c, m = t.claims.c, t.messages.c

        def work(connection: Connection, row: QueueRow) -> ClaimRead:
            claim = connection.execute(
                sa.select(c.ttl, c.created, c.expires).where(c.id == claim_id, c.queue_id == row.id, c.expires > now)
            ).first()
            if claim is None:
                return ClaimRead(row.id, None)
            held = connection.execute(
                sa.select(*message_columns(t))
                .where(m.claim_id == claim_id, m.queue_id == row.id, m.claim_expires > now, m.expires > now)
                .order_by(m.position)
            ).all()
            stored = StoredClaim(int(claim.ttl), claim.created, claim.expires)
            return ClaimRead(row.id, stored, [row_of(r) for r in held])

        return on_queue(self.driver.database, t, queue, project, now, work, write=False)

    def _update(self, request: Renewal) -> bool | None:
        t = self._tables
        c, m = t.claims.c, t.messages.c
        now, claim_id = request.now, request.claim_id

        def work(connection: Connection, row: QueueRow) -> bool:
            renewed = connection.execute(
                sa.update(t.claims)
                .where(c.id == claim_id, c.queue_id == row.id, c.expires > now)
                .values(ttl=request.ttl, expires=request.expires)
            ).rowcount
            if not renewed:
                return False
            connection.execute(
                sa.update(t.messages)
                .where(m.claim_id == claim_id, m.queue_id == row.id, m.claim_expires > now, m.expires > now)
                .values(claim_expires=request.expires, expires=at_least(m.expires, request.message_floor))
            )
            return True

        return on_queue(self.driver.database, t, request.queue, request.project, now, work, write=True)

    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        t = self._tables
        c, m = t.claims.c, t.messages.c

        def work(connection: Connection) -> None:
            released = connection.execute(
                sa.delete(t.claims).where(c.id == claim_id, c.queue_id.in_(queues.queue_ids(t, queue, project)))
            ).rowcount
            if released:
                connection.execute(
                    sa.update(t.messages).where(m.claim_id == claim_id).values(claim_id=None, claim_expires=None)
                )

        self.driver.database.run(work)
