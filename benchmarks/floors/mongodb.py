"""The raw floor on MongoDB: pymongo on the MongoDB driver's own collections and documents, keeping its guarantees
without multi-document transactions by the same commit protocol (``drivers/mongodb/store.py``), in as few commands
as that protocol allows.

- post (3 commands): read the queue's counter and window; insert the batch, uncommitted (tagged with a fresh txn),
  at the slots after the counter; commit by moving the counter from where it was read and recording the txn.
  Competing producers collide on the unique indexes or on the counter and try again (with the core's jittered
  backoff); every 16th commit first materializes the window, as the driver does.
- page (2): the queue, then one ranged, sorted read: on the claim index when claimed messages are left out
  (unclaimed ones, then those whose claim ended), on the marker index otherwise; read past in doubling chunks
  only if something read was not to be shown.
- claim (5): the queue; the oldest unclaimed and lapsed messages (two reads of the claim index, as the driver);
  one ``update_many`` taking those no live claim holds; the claim document.
- delete (2): the queue (its name must still own the incarnation), one ``delete_one``/``delete_many`` with the
  claim condition in its filter.
- pop (5): as a claim, under a claim id of its own nobody learns, then one ``delete_many`` of what it took.

What it does not do: delayed messages (it posts none and expects none due), hidden clients, and healing a queue
whose writer died between insert and commit (the driver's ``heal_after``; the benchmark kills no writer).
"""

from __future__ import annotations

import builtins
import json
import math
import time
from typing import Any

from bson import ObjectId
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from marconi.storage.failures import DEFAULT_CONFLICT_TIMEOUT, Attempts
from marconi.storage.tokens import decode_pair, encode_pair, new_claim_id

from ..contenders import (
    CLAIM_GRACE,
    CLAIM_TTL,
    CLIENT_UUID,
    MESSAGE_TTL,
    PROJECT,
    Client,
    Item,
    encode,
    open_driver,
    page_marker,
)
from ..mongodb_client import Commands, drop_collections, server_facts, tally_post
from . import QueueMissing

WINDOW = 16  # committed txns a queue keeps before the next commit materializes them (the driver's store.WINDOW)
CHUNK_MAX = 1000  # documents one read asks for at most
SHOWN = {"n": 1, "m": 1, "b": 1, "x": 1, "e": 1, "ce": 1}  # what a read needs of a message
CONFLICT = (DuplicateKeyError, BulkWriteError)


def as_date(seconds: float) -> Any:
    from marconi_drivers.mongodb.store import as_date as driver_as_date

    return driver_as_date(seconds)


class Contended(Exception):
    """Another producer took the slots or moved the counter first."""


class MongoFloor(Client):
    def __init__(self, target: str, prefix: str, **options: Any) -> None:
        super().__init__(target, prefix)
        self.commands = Commands(self.round_trips, f"{prefix}messages")
        self.client: MongoClient[dict[str, Any]] = MongoClient(target, event_listeners=[self.commands])
        database = self.client.get_default_database("marconi")
        self.queues = database[f"{prefix}queues"]
        self.messages = database[f"{prefix}messages"]
        self.claims = database[f"{prefix}claims"]
        self.counters = database[f"{prefix}counters"]

    @classmethod
    def prepare(cls, target: str, prefix: str, **options: Any) -> dict[str, Any]:
        open_driver(target, prefix).close()  # the driver makes its collections and indexes: the floor uses them
        return {}

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        drop_collections(target, prefix)

    # -- queues (not measured) ---------------------------------------------------------------------------------

    def create_queue(self, queue: str) -> None:
        if self.queue(queue) is None:
            counter = self.counters.find_one_and_update({"_id": "incarnation"}, {"$inc": {"n": 1}}, new=True)
            assert counter is not None
            self.queues.insert_one({"_id": counter["n"], "p": PROJECT, "n": queue, "meta": "{}", "c": 0, "t": []})

    def delete_queue(self, queue: str) -> None:
        found = self.queues.find_one_and_delete({"p": PROJECT, "n": queue}, projection={"_id": 1})
        if found is not None:
            self.messages.delete_many({"q": found["_id"]})
            self.claims.delete_many({"q": found["_id"]})

    def queue(self, queue: str) -> dict[str, Any] | None:
        """The queue's incarnation (``_id``), counter (``c``) and window of committed txns (``t``)."""
        return self.queues.find_one({"p": PROJECT, "n": queue}, projection={"c": 1, "t": 1})

    def found(self, queue: str) -> dict[str, Any]:
        doc = self.queue(queue)
        if doc is None:
            raise QueueMissing(queue)
        return doc

    # -- the operations ----------------------------------------------------------------------------------------

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        attempts, before = Attempts(DEFAULT_CONFLICT_TIMEOUT), self.commands.inserts
        try:
            while True:
                try:
                    return self._append(queue, bodies)
                except Contended:
                    if not attempts.backoff():
                        raise
        finally:
            tally_post(self.tallies, self.commands.inserts - before)

    def _append(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        doc, now, txn = self.found(queue), time.time(), ObjectId()
        incarnation, counter, window = doc["_id"], doc["c"], list(doc.get("t") or ())
        expires = now + MESSAGE_TTL
        batch = [
            {"q": incarnation, "n": slot, "m": slot, "x": txn, "u": CLIENT_UUID, "b": encode(body), "c": now,
             "e": expires, "r": as_date(expires), "ce": 0}
            for slot, body in enumerate(bodies, counter + 1)
        ]  # fmt: skip
        try:
            self.messages.insert_many(batch)
        except CONFLICT as error:
            self.messages.delete_many({"q": incarnation, "x": txn})
            raise Contended() from error
        if len(window) >= WINDOW:
            self.messages.update_many({"q": incarnation, "x": {"$in": window}}, {"$unset": {"x": ""}})
            window = []
        top = counter + len(bodies)
        moved = self.queues.update_one({"_id": incarnation, "c": counter}, {"$set": {"c": top, "t": [*window, txn]}})
        if not moved.matched_count:
            self.messages.delete_many({"q": incarnation, "x": txn})
            raise Contended()
        return [encode_pair(incarnation, slot) for slot in range(counter + 1, top + 1)]

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        doc, now = self.found(queue), time.time()
        incarnation, counter, window = doc["_id"], doc["c"], set(doc.get("t") or ())
        after = decode_pair(marker) if marker is not None else None
        start = after[1] if after is not None and after[0] == incarnation else 0

        def shown(message: dict[str, Any]) -> bool:
            committed = message.get("x") is None or message["x"] in window
            return committed and message["e"] > now and (include_claimed or message["ce"] <= now)

        if include_claimed:
            page = self.scan({"q": incarnation}, start, counter, limit, shown)
        else:
            page = self.unclaimed(incarnation, start, counter, limit, now, shown)
        items = [Item(encode_pair(incarnation, message["n"]), json.loads(message["b"])) for message in page]
        return items, page_marker(incarnation, start, limit, [message["m"] for message in page], counter)

    def scan(self, match: dict[str, Any], after: int, upto: int, limit: int, keep: Any) -> builtins.list[Any]:
        """Up to ``limit`` messages ``keep`` keeps, in marker order, with ``after < m <= upto``."""
        found: builtins.list[Any] = []
        chunk = limit
        while after < upto:
            window = {**match, "m": {"$gt": after, "$lte": upto}}
            read = list(self.messages.find(window, projection=SHOWN, sort=[("m", 1)], limit=chunk))
            found += [message for message in read if keep(message)]
            if len(found) >= limit or len(read) < chunk:
                break
            after, chunk = read[-1]["m"], min(chunk * 2, CHUNK_MAX)
        return found[:limit]

    def unclaimed(self, incarnation: int, after: int, upto: int, limit: int, now: float, keep: Any) -> Any:
        """The oldest ``limit`` messages no live claim holds after position ``after``: those never claimed (the
        claim index's ``ce = 0`` range, in marker order) and those whose claim ended (its ``0 < ce <= now`` range,
        bounded strictly: the test server drops entries equal to an inclusive bound of a compound index)."""
        fresh = self.scan({"q": incarnation, "ce": 0}, after, upto, limit, keep)
        ended = {"$gt": 0, "$lt": math.nextafter(now, math.inf)}
        lapsed = self.scan({"q": incarnation, "ce": ended}, after, upto, limit, keep)
        return sorted(fresh + lapsed, key=lambda message: message["m"])[:limit]

    def take(self, queue: str, limit: int, claim_id: str, expires: float) -> tuple[int, builtins.list[Any]]:
        """Hold the oldest ``limit`` eligible messages for ``claim_id`` until ``expires``: (incarnation, taken)."""
        doc, now = self.found(queue), time.time()
        incarnation, counter, window = doc["_id"], doc["c"], set(doc.get("t") or ())

        def eligible(message: dict[str, Any]) -> bool:
            return (message.get("x") is None or message["x"] in window) and message["e"] > now

        chosen = self.unclaimed(incarnation, 0, counter, limit, now, eligible)
        if not chosen:
            return incarnation, []
        floor = expires + CLAIM_GRACE
        taken = self.messages.update_many(
            {"_id": {"$in": [message["_id"] for message in chosen]}, "ce": {"$lt": math.nextafter(now, math.inf)}},
            {"$set": {"ci": claim_id, "ce": expires}, "$max": {"e": floor, "r": as_date(floor)}},
        )
        if taken.modified_count < len(chosen):  # others took some: which are this claim's
            mine = {message["_id"] for message in self.messages.find({"q": incarnation, "ci": claim_id}, {"_id": 1})}
            chosen = [message for message in chosen if message["_id"] in mine]
        return incarnation, chosen

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        claim_id, now = new_claim_id(), time.time()
        expires = now + CLAIM_TTL
        incarnation, taken = self.take(queue, limit, claim_id, expires)
        if not taken:
            return None, []
        record = {"_id": claim_id, "q": incarnation, "ttl": CLAIM_TTL, "c": now, "e": expires, "r": as_date(expires)}
        self.claims.insert_one(record)
        return claim_id, self.items(incarnation, taken)

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.bulk_delete(queue, [message_id], claim)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        doc, now = self.found(queue), time.time()
        incarnation, window = doc["_id"], list(doc.get("t") or ())
        numbers = [ref[1] for ref in map(decode_pair, message_ids) if ref is not None and ref[0] == incarnation]
        if not numbers:
            return
        target: dict[str, Any] = {"q": incarnation, "n": numbers[0] if len(numbers) == 1 else {"$in": numbers}}
        target["e"] = {"$gt": now}
        if claim is None:
            target.update({"ce": {"$lte": now}, "$or": [{"x": {"$exists": False}}, {"x": {"$in": window}}]})
        else:
            target.update({"ci": claim, "ce": {"$gt": now}})  # a claim holds committed messages only
        if len(numbers) == 1:
            self.messages.delete_one(target)
        else:
            self.messages.delete_many(target)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        claim_id = new_claim_id()
        incarnation, taken = self.take(queue, limit, claim_id, time.time() + CLAIM_TTL)
        if taken:
            self.messages.delete_many({"q": incarnation, "ci": claim_id})
        return self.items(incarnation, taken)

    @staticmethod
    def items(incarnation: int, messages: builtins.list[Any]) -> builtins.list[Item]:
        return [Item(encode_pair(incarnation, message["n"]), json.loads(message["b"])) for message in messages]

    def facts(self) -> dict[str, Any]:
        return server_facts(self.client)

    def close(self) -> None:
        self.client.close()
