"""Queues of the MongoDB driver: one document each, keyed by incarnation, unique by (project, name).

A queue's incarnation names its messages (``q``), so deleting the queue document makes them unreachable at
once: a queue created again under the name gets a new incarnation and starts empty. The messages and claims
left behind go right after, or in ``gc()`` when the deleting process dies first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from marconi.storage.base import QueueBase
from marconi.storage.hooks import Project, QueueCounts

from .store import QueueState, row, stored_project

if TYPE_CHECKING:
    from . import MongoDriver


def _counts(queue: QueueState, now: float) -> list[dict[str, Any]]:
    """One pass over a queue's messages: the counts of stats, and the positions at both ends."""
    committed = {"$in": [{"$ifNull": ["$x", None]}, [None, *queue.window]]}
    alive = {"$gt": ["$e", now]}
    exists = {"$or": [committed, {"$ne": [{"$type": "$k"}, "missing"]}]}
    visible = {"$and": [committed, {"$gt": ["$m", 0]}, {"$lte": ["$m", queue.counter]}, alive]}
    held = {"$gt": ["$ce", now]}

    def count(condition: dict[str, Any]) -> dict[str, Any]:
        return {"$sum": {"$cond": [condition, 1, 0]}}

    return [
        {"$match": {"q": queue.id}},
        {
            "$group": {
                "_id": None,
                "total": count({"$and": [exists, alive]}),
                "claimed": count(held),
                "free": count({"$and": [visible, {"$not": [held]}]}),
                "oldest": {"$min": {"$cond": [visible, "$m", None]}},
                "newest": {"$max": {"$cond": [visible, "$m", None]}},
            }
        },
    ]


class MongoQueues(QueueBase):
    driver: MongoDriver

    def _upsert(self, name: str, metadata: str, project: Project) -> bool:
        store = self.driver.store
        key = {"p": stored_project(project), "n": name}
        if store.queues.update_one(key, {"$set": {"meta": metadata}}).matched_count:
            return False
        try:
            store.queues.insert_one({"_id": store.next_incarnation(), **key, "meta": metadata, "c": 0, "t": []})
        except DuplicateKeyError:  # created meanwhile by someone else
            store.queues.update_one(key, {"$set": {"meta": metadata}})
            return False
        return True

    def _get(self, name: str, project: Project) -> str | None:
        doc = self.driver.store.queues.find_one({"p": stored_project(project), "n": name}, projection={"meta": 1})
        return None if doc is None else str(doc["meta"])

    def _list(
        self, project: Project, after: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        query: dict[str, Any] = {"p": stored_project(project)}
        if after is not None:
            query["n"] = {"$gt": after}
        fields = {"n": 1, "meta": 1} if detailed else {"n": 1}
        found = self.driver.store.queues.find(query, projection=fields, sort=[("n", 1)], limit=limit)
        return [(doc["n"], doc["meta"] if detailed else None) for doc in found]

    def _delete(self, name: str, project: Project) -> None:
        store = self.driver.store
        doc = store.queues.find_one_and_delete({"p": stored_project(project), "n": name}, projection={"_id": 1})
        if doc is not None:
            store.messages.delete_many({"q": doc["_id"]})
            store.claims.delete_many({"q": doc["_id"]})

    def _stats(self, name: str, project: Project, now: float) -> QueueCounts | None:
        store = self.driver.store
        queue = store.current(name, project, now)
        if queue is None:
            return None
        found = next(iter(store.messages.aggregate(_counts(queue, now))), None)
        if found is None:
            return QueueCounts(queue.id, 0, 0, 0, None, None)
        ends: dict[int, Any] = {}
        if found["oldest"] is not None:
            positions = sorted({found["oldest"], found["newest"]})
            ends = {doc["m"]: doc for doc in store.messages.find({"q": queue.id, "m": {"$in": positions}})}
        oldest, newest = ends.get(found["oldest"]), ends.get(found["newest"])
        return QueueCounts(
            incarnation=queue.id,
            claimed=int(found["claimed"]),
            free=int(found["free"]),
            total=int(found["total"]),
            oldest=row(oldest) if oldest else None,
            newest=row(newest) if newest else None,
        )
