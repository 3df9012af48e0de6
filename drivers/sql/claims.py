"""Claims of the SQL driver: exclusive, leased holds on the oldest eligible messages.

A claim locks the messages it takes and marks them in the same transaction, so a message is never handed to
two live claims. On PostgreSQL claims run side by side, each passing over rows the others hold right now (SKIP
LOCKED); on MariaDB/MySQL and SQLite they take turns on the queue row (see ``sql/mysql.sql`` for why). Either
way they scan only the index of messages no claim holds, so their cost does not grow with a claimed head, and
messages whose claim has ended are made eligible again inside the claim (or by gc). A claimed message lives at
least until the claim's end plus grace; renewing a claim never shortens a message's life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marconi.storage.base import ClaimBase
from marconi.storage.hooks import ClaimRead, ClaimRequest, Project, Renewal, Rows, StoredClaim

from .messages import Locking, by_position, take, take_side_by_side
from .queues import named, rows_of

if TYPE_CHECKING:
    from . import SQLDriver
    from .engine import Session


class SQLClaims(ClaimBase):
    driver: SQLDriver

    def _create(self, request: ClaimRequest) -> Rows | None:
        database = self.driver.database
        now = request.now
        if database.kind == "postgresql":
            parameters = {
                "claim_id": request.claim_id,
                "ttl": request.ttl,
                "expires": request.expires,
                "floor": request.message_floor,
                "limit": request.limit,
                "now": now,
                **named(request.queue, request.project),
            }
            taken = take_side_by_side(database, "claim", parameters)
            if not isinstance(taken, Locking):
                return taken

        def record(session: Session, queue_id: int) -> None:
            session.run(
                "claim_insert",
                claim_id=request.claim_id,
                queue_id=queue_id,
                ttl=request.ttl,
                now=now,
                expires=request.expires,
            )

        def claim_under_lock(session: Session) -> Rows | None:
            if "claim_quick" in database.statements:  # SQLite: the messages taken in one statement, most times
                quick = session.run(
                    "claim_quick",
                    claim_id=request.claim_id,
                    expires=request.expires,
                    floor=request.message_floor,
                    limit=request.limit,
                    now=now,
                    **named(request.queue, request.project),
                ).rows
                if quick:
                    record(session, int(quick[0][0]))
                    return Rows(int(quick[0][0]), by_position(rows_of(quick, 1)))
            looked = "claim_quick" in database.statements
            found = take(session, request.queue, request.project, now, request.limit, looked)
            if found is None:
                return None
            queue, chosen = found
            if chosen:
                session.run(
                    "messages_take",
                    queue_id=queue.id,
                    numbers=[row.number for row in chosen],
                    claim_id=request.claim_id,
                    expires=request.expires,
                    floor=request.message_floor,
                )
                record(session, queue.id)
            return Rows(queue.id, chosen)

        return database.transaction(claim_under_lock)

    def _get(self, queue: str, project: Project, claim_id: str, now: float) -> ClaimRead | None:
        found = self.driver.database.read("claim_read", claim_id=claim_id, now=now, **named(queue, project)).rows
        if not found:
            return None
        queue_id, _, ttl, created, expires = found[0][:5]
        if ttl is None:
            return ClaimRead(int(queue_id), None)
        return ClaimRead(int(queue_id), StoredClaim(int(ttl), created, expires), by_position(rows_of(found, 5)))

    def _update(self, request: Renewal) -> bool | None:
        database = self.driver.database
        parameters = {
            "claim_id": request.claim_id,
            "ttl": request.ttl,
            "expires": request.expires,
            "floor": request.message_floor,
            "now": request.now,
            **named(request.queue, request.project),
        }
        if database.kind == "postgresql":
            queue_id, renewed = database.read("claim_update", **parameters).rows[0]
            return None if queue_id is None else bool(renewed)

        def renew(session: Session) -> bool | None:
            if not session.run("claim_renew", **parameters).rowcount:
                return (
                    None
                    if session.run("queue_state", **named(request.queue, request.project)).first() is None
                    else False
                )
            session.run("claim_extend", **parameters)
            return True

        return database.transaction(renew)

    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        database = self.driver.database
        if database.kind == "postgresql":
            database.read("claim_delete", claim_id=claim_id, **named(queue, project))
            return

        def release(session: Session) -> None:
            if session.run("claim_remove", claim_id=claim_id, **named(queue, project)).rowcount:
                session.run("claim_release", claim_id=claim_id)

        database.transaction(release)
