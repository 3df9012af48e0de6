"""Claims of the MongoDB driver: exclusive, leased holds on the oldest eligible messages.

A claim picks the oldest eligible messages from the claim index, then takes each with an update guarded by the
claim state it was picked in, so a message another claim took meanwhile is left alone; when fewer were taken
than picked it reads back which are its own and picks again from what is left, so losing races to competing
consumers does not make a claim come back short while eligible messages wait. A claimed message lives at least
until the claim's end plus grace; renewing never shortens a message's life.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marconi.storage.base import ClaimBase
from marconi.storage.hooks import ClaimRead, ClaimRequest, Project, Renewal, Rows, StoredClaim

from .store import HELD, as_date, row

if TYPE_CHECKING:
    from . import MongoDriver


class MongoClaims(ClaimBase):
    driver: MongoDriver

    def _create(self, request: ClaimRequest) -> Rows | None:
        store = self.driver.store
        queue = store.current(request.queue, request.project, request.now)
        if queue is None:
            return None
        hold = {
            "$set": {"ci": request.claim_id, "ce": request.expires},
            "$max": {"e": request.message_floor, "r": as_date(request.message_floor)},
        }
        chosen = store.take(
            queue, request.now, request.limit, lambda picked: store.hold(queue, picked, request.claim_id, hold)
        )
        if chosen:
            store.claims.insert_one(
                {
                    "_id": request.claim_id,
                    "q": queue.id,
                    "ttl": request.ttl,
                    "c": request.now,
                    "e": request.expires,
                    "r": as_date(request.expires),
                }
            )
        return Rows(queue.id, [row(doc) for doc in chosen])

    def _get(self, queue: str, project: Project, claim_id: str, now: float) -> ClaimRead | None:
        store = self.driver.store
        target = store.find_queue(queue, project)
        if target is None:
            return None
        claim = store.claims.find_one({"_id": claim_id, "q": target.id})
        if claim is None or not claim["e"] > now:
            return ClaimRead(target.id, None)
        held = [
            doc
            for doc in store.messages.find({"q": target.id, "ci": claim_id}, hint=HELD)
            if doc["ce"] > now and doc["e"] > now
        ]
        held.sort(key=lambda doc: doc["m"])
        return ClaimRead(target.id, StoredClaim(int(claim["ttl"]), claim["c"], claim["e"]), [row(doc) for doc in held])

    def _update(self, request: Renewal) -> bool | None:
        store = self.driver.store
        queue = store.find_queue(request.queue, request.project)
        if queue is None:
            return None
        renewed = store.claims.find_one_and_update(
            {"_id": request.claim_id, "q": queue.id, "e": {"$gt": request.now}},
            {"$set": {"ttl": request.ttl, "e": request.expires, "r": as_date(request.expires)}},
            projection={"_id": 1},
        )
        if renewed is None:
            return False
        store.messages.update_many(
            {"q": queue.id, "ci": request.claim_id, "ce": {"$gt": request.now}},
            {
                "$set": {"ce": request.expires},
                "$max": {"e": request.message_floor, "r": as_date(request.message_floor)},
            },
            hint=HELD,
        )
        return True

    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        store = self.driver.store
        target = store.find_queue(queue, project)
        if target is None:
            return
        # Messages first: a claim document never outlives the hold it records while the messages say held.
        store.messages.update_many(
            {"q": target.id, "ci": claim_id}, {"$set": {"ce": 0}, "$unset": {"ci": ""}}, hint=HELD
        )
        store.claims.delete_one({"_id": claim_id, "q": target.id})
