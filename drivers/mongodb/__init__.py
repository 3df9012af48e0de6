"""The MongoDB driver: the storage contract on MongoDB 4.4+ through pymongo 4, without multi-document transactions.

URIs (any pymongo connection string; the path names the database, default ``marconi``)::

    mongodb://host[:port][,host2...]/db?replicaSet=rs0&w=majority&journal=true
    mongodb+srv://cluster.example.net/db          resolved through DNS when the driver is made

Every part is checked before a connection is made (``InvalidInput`` naming it: scheme, host, port, database,
an option pymongo does not know, a value it cannot take); ``w=0`` is refused, since the driver must know whether
a write happened. ``readPreference`` is ignored for the driver's own reads: they go to the primary, which has the
driver's writes.

Capabilities: fifo, observer_once, claims, delay, pop, durable, multiprocess.

Options: the core ones (``conflict_timeout`` bounds how long a post retries against competing producers before
it raises MessageConflict), ``collection_prefix`` (default ``marconi_``), ``heal_after`` (seconds uncommitted
messages of a writer that died may block a queue before the next writer moves past them; default 1),
``reap_after`` (seconds after expiry the server's TTL monitor removes a message or claim; default 3600: reads
filter expiry at once by the driver's clock, and ``gc()`` removes what expired sooner), and ``event_listeners``
(pymongo monitoring listeners for the driver's client).

Durability is what the URI's write concern gives: a post is acknowledged once its commit (one single-document
update) is, so ``w=majority&journal=true`` survives a crash or a failover of the primary; with ``w=1`` (without
``journal``) the last writes before a crash of the server can be lost, though never half a batch.

How the algorithm keeps the guarantees, and the traps it avoids, is in ``store``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pymongo import MongoClient, monitoring
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from marconi.storage.base import Capability, DriverBase
from marconi.storage.errors import InvalidInput
from marconi.storage.failures import Failure
from marconi.storage.validation import Option, describe, positive_seconds, whole

from . import uris
from .claims import MongoClaims
from .messages import MongoMessages
from .queues import MongoQueues
from .store import Contention, NotApplied, Store, as_date, is_collision

__all__ = ["MongoDriver"]

WRITE_CONFLICT = 112  # another operation changed the document first (WiredTiger), nothing was written
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


def collection_prefix(value: object, field: str = "collection_prefix") -> str:
    """An option check: 1-41 characters of A-Z a-z 0-9 _, not starting with a digit."""
    if not isinstance(value, str) or _PREFIX.fullmatch(value) is None:
        raise InvalidInput(
            field, f"must be 1-41 characters of A-Z a-z 0-9 _ not starting with a digit, got {describe(value)}"
        )
    return value


def event_listeners(value: object, field: str = "event_listeners") -> list[monitoring._EventListener]:
    """An option check: pymongo monitoring listeners (e.g. ``pymongo.monitoring.CommandListener``)."""
    if not isinstance(value, Iterable) or isinstance(value, (str, bytes)):
        raise InvalidInput(field, f"must be a list of pymongo monitoring listeners, got {describe(value)}")
    listeners = list(value)
    for listener in listeners:
        if not isinstance(listener, monitoring._EventListener):
            raise InvalidInput(field, f"must hold pymongo monitoring listeners, got {describe(listener)}")
    return listeners


class MongoDriver(DriverBase):
    """The storage contract on MongoDB; see the module docstring for URIs, options and durability."""

    name = "mongodb"
    schemes = ("mongodb", "mongodb+srv")
    CAPABILITIES = Capability.ALL

    PREFIX_OPTION = "collection_prefix"
    OPTIONS = {
        "collection_prefix": Option(collection_prefix, "marconi_", "prefix of the driver's collection names"),
        "heal_after": Option(
            lambda value, field: positive_seconds(value, field, 3600.0),
            1.0,
            "seconds a dead writer's uncommitted messages may block a queue before the next writer moves past them",
        ),
        "reap_after": Option(
            whole(0, 10**8), 3600, "seconds after expiry the server's TTL monitor removes messages and claims"
        ),
        "event_listeners": Option(event_listeners, [], "pymongo monitoring listeners for the driver's client"),
    }

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri, **options)
        target = uris.check(self.uri)
        try:
            self.client: MongoClient[dict[str, Any]] = MongoClient(
                self.uri, event_listeners=self.options["event_listeners"], connect=False
            )
        except (ConfigurationError, ValueError, TypeError) as error:  # an SRV name that does not resolve, ...
            raise uris.unusable("host", f"cannot be used: {uris.first_line(error)}") from None
        self.store = Store(
            self.client[target.database],
            self.options["collection_prefix"],
            self.options["reap_after"],
            self.options["heal_after"],
        )
        try:
            self.call("setup", self.store.create, idempotent=True)
        except BaseException:
            self.client.close()
            raise
        self._queue_controller = MongoQueues(self)
        self._message_controller = MongoMessages(self)
        self._claim_controller = MongoClaims(self)

    @property
    def queue_controller(self) -> MongoQueues:
        return self._queue_controller

    @property
    def message_controller(self) -> MongoMessages:
        return self._message_controller

    @property
    def claim_controller(self) -> MongoClaims:
        return self._claim_controller

    def __enter__(self) -> MongoDriver:
        return self

    def close(self) -> None:
        self.client.close()

    def classify(self, error: BaseException) -> Failure | None:
        """Collisions and write conflicts are retried; a dropped connection is an unknown outcome, except where
        the driver read back that nothing happened."""
        if isinstance(error, Contention) or is_collision(error):
            return Failure.RETRY
        if isinstance(error, OperationFailure) and error.code == WRITE_CONFLICT:
            return Failure.RETRY
        if isinstance(error, NotApplied):
            return Failure.RECONNECT
        if isinstance(error, ServerSelectionTimeoutError):
            return Failure.FATAL  # no server for the whole selection timeout: waiting again will not help
        if isinstance(error, (ConnectionFailure, WriteConcernError)):
            return Failure.LOST
        if isinstance(error, (PyMongoError, BulkWriteError, DuplicateKeyError)):
            return Failure.FATAL
        return None

    def _gc(self, now: float) -> int:
        store = self.store
        for doc in store.queues.find({"d": {"$lte": now}}, projection={"_id": 1}):
            queue = store.queue_by_id(doc["_id"])
            if queue is not None and queue.is_due(now):
                try:
                    store.append(queue, now, [], "")
                except (Contention, NotApplied, DuplicateKeyError, BulkWriteError):
                    pass  # another writer is on the queue: it promotes them
        removed = self._abandoned()
        live = set(store.queues.distinct("_id"))
        for collection in (store.messages, store.claims):
            orphans = [queue for queue in collection.distinct("q") if queue not in live]
            if orphans:  # a queue whose deletion stopped after its queue document went
                removed += collection.delete_many({"q": {"$in": orphans}}).deleted_count
        expired = {"r": {"$lte": as_date(now)}, "e": {"$lte": now}}
        removed += store.messages.delete_many(expired).deleted_count
        removed += store.claims.delete_many(expired).deleted_count
        return removed

    def _abandoned(self) -> int:
        """Remove what dead or defeated writers left uncommitted; move counters past writers that died."""
        store = self.store
        removed = 0
        for incarnation in store.messages.distinct("q", {"x": {"$exists": True}}):
            queue = store.queue_by_id(incarnation)
            if queue is None:
                continue
            dead = set()
            stalled = False
            for doc in store.messages.find({"q": queue.id, "x": {"$exists": True}}, {"x": 1, "n": 1, "m": 1, "k": 1}):
                if queue.committed(doc):
                    continue
                slot = doc["m"] if "k" in doc else doc["n"]
                if slot <= queue.counter:
                    dead.add(doc["x"])  # its writer can never commit: the counter is past it
                else:
                    stalled = True
            for txn in dead:
                before = store.messages.count_documents({"q": queue.id, "x": txn, "k": {"$exists": False}})
                store.abandon(queue.id, txn)
                removed += before
            if stalled:
                store.collided(queue)  # seen again after heal_after: its counter moves on
        return removed
