"""Messages of the Redis driver: each hook is one script, one round trip (a post with ``wait_replicas`` adds its
WAIT to the same write)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marconi.storage.base import MessageBase
from marconi.storage.errors import BackendError
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

from .replies import rows

if TYPE_CHECKING:
    from . import RedisDriver


def flat_refs(refs: list[MessageRef]) -> list[int]:
    return [part for ref in refs for part in ref]


class RedisMessages(MessageBase):
    driver: RedisDriver

    def _post(self, request: PostRequest) -> Posted | None:
        driver = self.driver
        args: list[Any] = [request.now, request.client]
        for message in request.messages:
            args += [message.body, message.expires, message.visible_at if message.delayed else ""]
        replicas = driver.options["wait_replicas"]
        then = [("WAIT", replicas, round(driver.options["wait_timeout"] * 1000))] if replicas else []
        replies = driver.backend.run("post", driver.keys.queue(request.project, request.queue), args, then)
        posted = replies[0]
        if posted is None:
            return None
        if replicas and replies[1] < replicas:
            raise BackendError(
                f"post to {request.queue!r}: stored on the primary, but only {replies[1]} of {replicas} replica(s) "
                f"confirmed it within {driver.options['wait_timeout']:g} s; it may be lost if the primary fails"
            )
        incarnation, first = int(posted[0]), int(posted[1])
        return Posted(incarnation, list(range(first, first + len(request.messages))))

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> Rows | None:
        reply = self.driver.on_queue("bulk_get", queue, project, [now, *flat_refs(refs)])
        return None if reply is None else rows(reply)

    def _list(self, request: ListRequest) -> Listed | None:
        args = [request.now, request.after, request.limit, request.hide_client or "", int(request.include_claimed)]
        reply = self.driver.on_queue("list", request.queue, request.project, args)
        if reply is None:
            return None
        found = rows(reply, skip=2)
        return Listed(found.incarnation, found.rows, int(reply[1]))

    def _delete(self, request: MessageDelete) -> Holder | None:
        incarnation, number = request.ref
        args = [request.now, incarnation, number, request.claim_id or ""]
        reply = self.driver.on_queue("delete", request.queue, request.project, args)
        if reply is None:
            return None
        claim_id, claim_expires = reply
        return Holder(claim_id or None, float(claim_expires) if claim_id else None)

    def _bulk_delete(self, request: BulkDelete) -> BulkDeleted | None:
        args = [request.now, request.claim_id or "", *flat_refs(request.refs)]
        reply = self.driver.on_queue("bulk_delete", request.queue, request.project, args)
        return None if reply is None else BulkDeleted(int(reply[0]), bool(reply[1]))

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> Rows | None:
        reply = self.driver.on_queue("pop", queue, project, [now, limit])
        return None if reply is None else rows(reply)
