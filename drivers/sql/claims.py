"""Claims of the SQL driver: exclusive, leased holds on the oldest eligible messages.

A claim locks the messages it takes (skipping rows other claimers hold right now, where the backend can) and
marks them in the same transaction, so a message is never handed to two live claims. A claimed message lives at
least until the claim's end plus grace; renewing a claim never shortens a message's life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marconi.storage import tokens
from marconi.storage.base import ClaimBase, Project, StoredClaim, StoredMessage
from marconi.storage.validation import ClaimTerms

from . import queues
from .messages import oldest_eligible
from .queues import QueueRow, message_columns, on_queue, stored_message

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

    def _create(
        self, queue: str, project: Project, terms: ClaimTerms, limit: int, now: float
    ) -> tuple[str | None, list[StoredMessage]]:
        t = self._tables
        m = t.messages.c
        skip_locked = self.driver.database.skip_locked
        expires = now + terms.ttl
        floor = expires + terms.grace

        def work(connection: Connection, row: QueueRow) -> tuple[str | None, list[StoredMessage]]:
            chosen = connection.execute(oldest_eligible(t, row.id, now, limit, skip_locked)).all()
            if not chosen:
                return None, []
            claim_id = tokens.new_claim_id()
            numbers = [int(r.number) for r in chosen]
            connection.execute(
                sa.insert(t.claims).values(id=claim_id, queue_id=row.id, ttl=terms.ttl, created=now, expires=expires)
            )
            connection.execute(
                sa.update(t.messages)
                .where(m.queue_id == row.id, m.number.in_(numbers))
                .values(claim_id=claim_id, claim_expires=expires, expires=at_least(m.expires, floor))
            )
            return claim_id, [
                StoredMessage(
                    tokens.encode_pair(row.id, int(r.number)), r.body, r.created, max(r.expires, floor), claim_id
                )
                for r in chosen
            ]

        return on_queue(self.driver.database, t, queue, project, now, work, write=True, hands_out=True)

    def _get(
        self, queue: str, project: Project, claim_id: str, now: float
    ) -> tuple[StoredClaim, list[StoredMessage]] | None:
        t = self._tables
        c, m = t.claims.c, t.messages.c

        def work(connection: Connection, row: QueueRow) -> tuple[StoredClaim, list[StoredMessage]] | None:
            claim = connection.execute(
                sa.select(c.ttl, c.created).where(c.id == claim_id, c.queue_id == row.id, c.expires > now)
            ).first()
            if claim is None:
                return None
            held = connection.execute(
                sa.select(*message_columns(t))
                .where(m.claim_id == claim_id, m.queue_id == row.id, m.claim_expires > now, m.expires > now)
                .order_by(m.position)
            ).all()
            return StoredClaim(claim_id, int(claim.ttl), claim.created), [stored_message(row.id, r, now) for r in held]

        return on_queue(self.driver.database, t, queue, project, now, work, write=False)

    def _update(self, queue: str, project: Project, claim_id: str, terms: ClaimTerms, now: float) -> bool:
        t = self._tables
        c, m = t.claims.c, t.messages.c
        expires = now + terms.ttl
        floor = expires + terms.grace

        def work(connection: Connection, row: QueueRow) -> bool:
            renewed = connection.execute(
                sa.update(t.claims)
                .where(c.id == claim_id, c.queue_id == row.id, c.expires > now)
                .values(ttl=terms.ttl, expires=expires)
            ).rowcount
            if not renewed:
                return False
            connection.execute(
                sa.update(t.messages)
                .where(m.claim_id == claim_id, m.queue_id == row.id, m.claim_expires > now, m.expires > now)
                .values(claim_expires=expires, expires=at_least(m.expires, floor))
            )
            return True

        return on_queue(self.driver.database, t, queue, project, now, work, write=True)

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
