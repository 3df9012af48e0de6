"""Claims of the Redis driver: each hook is one script, one round trip. A claim costs O(log n + limit): eligible
and claimed messages are indexed apart, and a claim that expired gives its messages back inside the next script
that needs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marconi.storage.base import ClaimBase
from marconi.storage.hooks import ClaimRead, ClaimRequest, Project, Renewal, Rows, StoredClaim

from .replies import rows

if TYPE_CHECKING:
    from . import RedisDriver


class RedisClaims(ClaimBase):
    driver: RedisDriver

    def _create(self, request: ClaimRequest) -> Rows | None:
        args = [request.now, request.claim_id, request.ttl, request.expires, request.message_floor, request.limit]
        reply = self.driver.on_queue("claim", request.queue, request.project, args)
        return None if reply is None else rows(reply)

    def _get(self, queue: str, project: Project, claim_id: str, now: float) -> ClaimRead | None:
        reply = self.driver.on_queue("claim_get", queue, project, [now, claim_id])
        if reply is None:
            return None
        if len(reply) == 1:
            return ClaimRead(int(reply[0]), None)
        ttl, created, expires = reply[1]
        held = rows(reply, skip=2)
        return ClaimRead(
            held.incarnation,
            StoredClaim(int(ttl), float(created), float(expires)),
            sorted(held.rows, key=lambda held_row: held_row.position or 0),
        )

    def _update(self, request: Renewal) -> bool | None:
        args = [request.now, request.claim_id, request.ttl, request.expires, request.message_floor]
        reply = self.driver.on_queue("claim_update", request.queue, request.project, args)
        return None if reply is None else bool(reply)

    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        self.driver.on_queue("claim_release", queue, project, [now, claim_id])
