"""Messages of the MongoDB driver: posts by the commit protocol of ``store``, pages by marker, deletes, pop.

A post writes its whole batch, uncommitted, at the slots after the queue's counter and commits it by moving the
counter (``Store.append``): the batch becomes visible at once and after everything already visible. A page
reads the counter first and shows only committed messages up to it.
"""

from __future__ import annotations

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
    Rows,
)

from .store import Document, QueueState, row

if TYPE_CHECKING:
    from . import MongoDriver


def held_filter(claim_id: str | None, now: float) -> dict[str, Any]:
    """Unclaimed (no live claim holds it) when ``claim_id`` is None, else held by that live claim."""
    return {"ce": {"$lte": now}} if claim_id is None else {"ci": claim_id, "ce": {"$gt": now}}


def numbers_of(queue: QueueState, refs: list[MessageRef]) -> list[int]:
    return sorted({number for incarnation, number in refs if incarnation == queue.id})


class MongoMessages(MessageBase):
    driver: MongoDriver

    def _post(self, request: PostRequest) -> Posted | None:
        store = self.driver.store
        queue = store.find_queue(request.queue, request.project)
        if queue is None:
            return None
        numbers, _ = store.append(queue, request.now, request.messages, request.client)
        return Posted(queue.id, numbers)

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> Rows | None:
        store = self.driver.store
        target = store.find_queue(queue, project)
        if target is None:
            return None
        numbers = numbers_of(target, refs)
        if not numbers:
            return Rows(target.id)
        found = store.messages.find({"q": target.id, "n": {"$in": numbers}})
        return Rows(target.id, [row(doc) for doc in found if target.exists(doc) and doc["e"] > now])

    def _list(self, request: ListRequest) -> Listed | None:
        store = self.driver.store
        now = request.now
        queue = store.current(request.queue, request.project, now)
        if queue is None:
            return None

        def shown(doc: Document) -> bool:
            if not queue.visible(doc) or not doc["e"] > now:
                return False
            if request.hide_client is not None and doc["u"] == request.hide_client:
                return False
            return request.include_claimed or not doc["ce"] > now

        page = store.scan({"q": queue.id}, request.after, queue.counter, request.limit, shown)
        # The counter was read before the page: every position up to it had been committed.
        return Listed(queue.id, [row(doc, position=True) for doc in page], queue.counter)

    def _delete(self, request: MessageDelete) -> Holder | None:
        store = self.driver.store
        queue = store.find_queue(request.queue, request.project)
        incarnation, number = request.ref
        if queue is None or incarnation != queue.id:
            return None
        target = {"q": queue.id, "n": number, "e": {"$gt": request.now}}
        condition = {**target, **queue.exists_filter(), **held_filter(request.claim_id, request.now)}
        if store.messages.delete_one(condition).deleted_count:
            return None
        doc = store.messages.find_one(target, projection={"x": 1, "k": 1, "ci": 1, "ce": 1})
        if doc is None or not queue.exists(doc):
            return None
        lease = doc.get("ce") or 0
        return Holder(doc.get("ci"), lease if lease > 0 else None)

    def _bulk_delete(self, request: BulkDelete) -> BulkDeleted | None:
        store = self.driver.store
        queue = store.find_queue(request.queue, request.project)
        if queue is None:
            return None
        numbers = numbers_of(queue, request.refs)
        deleted = 0
        if numbers:
            condition = {
                "q": queue.id,
                "n": {"$in": numbers},
                "e": {"$gt": request.now},
                **queue.exists_filter(),
                **held_filter(request.claim_id, request.now),
            }
            deleted = store.messages.delete_many(condition).deleted_count
        if deleted or request.claim_id is None:
            return BulkDeleted(deleted)
        live = store.claims.find_one({"_id": request.claim_id, "q": queue.id, "e": {"$gt": request.now}}, {"_id": 1})
        return BulkDeleted(0, claim_live=live is not None)

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> Rows | None:
        store = self.driver.store
        target = store.current(queue, project, now)
        if target is None:
            return None
        taken = store.take(target, now, limit, store.remove_picked)
        return Rows(target.id, [row(doc) for doc in taken])
