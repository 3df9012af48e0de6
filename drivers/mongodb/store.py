"""The MongoDB driver's collections and indexes, and the commit protocol every write to a queue shares.

Documents (collection names take the ``collection_prefix``, default ``marconi_``)::

    queues    _id incarnation, p project ('' for None), n name, meta JSON text,
              c counter (the last slot committed), t window of committed txns, d earliest due delayed message
    messages  q incarnation (the queue key, usable as a shard key), n number (its id), m position (marker; -n
              while delayed), x txn (until materialized), k visible_at (a promotion not yet materialized),
              v visible_at (delayed only), u client, b body JSON text, c created, e expires, r expires as a date
              (TTL), ci claim id, ce claim lease end (0 when unclaimed)
    claims    _id claim id, q incarnation, ttl, c created, e lease end, r lease end as a date (TTL)
    counters  _id "incarnation", n: the last incarnation handed out

The commit protocol. Every write that gives out slots (a post, or the promotion of due delayed messages) reads
the queue's counter ``c``, writes its documents at the slots after it tagged with a fresh txn ``x``, and then
commits them all in one single-document step: it moves the counter from where it read it, and records ``x`` in
the queue's window ``t``. A reader reads the queue first and sees a message only when it is committed (no ``x``,
or ``x`` in the window) and its position is at most the counter. Hence:

- a batch becomes visible at once, whole, or never (no half batches);
- commits happen in marker order: the counter only moves from the value a writer read, so no later position
  can be committed while an earlier one is not (no observer passes a message that shows up behind it);
- competing writers collide on the unique (q, n) and (q, m) indexes and retry with backoff (the core's loop);
- a writer that read the counter, stalled, and wrote where expired and reaped messages used to be cannot make
  its documents visible: its txn is not in the window, and its move of the counter fails;
- a writer that died between writing and committing blocks the slots after the counter: the next writer that
  sees the same uncommitted documents there for ``heal_after`` seconds moves the counter past them, which
  makes them dead for good (never visible; ``gc()`` removes them);
- after a dropped connection the writer reads its outcome back (its txn in the window, or the counter fenced
  past its slots) before it retries, so a batch is never stored twice.

Before a commit pushes the window past ``WINDOW`` txns it materializes them (removes their ``x``), so the
window stays small and a committed txn never leaves it while one of its documents still carries it.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReadPreference, UpdateMany, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError

from marconi.storage.hooks import Outgoing, Project, Row

log = logging.getLogger("marconi.mongodb")

Document = dict[str, Any]

WINDOW = 16  # committed txns a queue keeps before it materializes them
SCAN_CHUNK_MAX = 1000  # documents one read of a page or claim asks for at most
SCAN_SPAN = 4  # markers the first window of a page or claim spans, per message asked for
#: The least ``ce`` of a message under a lease, live or lapsed (unclaimed ones have 0): a lease ends at least a
#: second after the epoch, a claim's ttl being at least 1 s. A range from 0 exclusive would do on MongoDB, but the
#: test server reads every ``ce = 0`` entry of such a range and filters them out (and mishandles tiny doubles).
LEASED = 1.0
#: The partial indexes, named by every query on them: the test server plans a partial index for a find only when
#: it names the index, and reads the whole collection otherwise. It ignores an update's or a delete's hint:
#: ``materialize``, every WINDOW-th post, reads its documents by index first; a renewal's and a release's updates
#: still read the whole collection there. Each such query asks for a given ``x`` or ``ci``, which implies the
#: index's filter, so naming the index never hides a document from it.
UNCOMMITTED = "uncommitted"
HELD = "held"
TAKE_ROUNDS = 16  # picks a claim or pop makes while competing consumers take what it picked first
DUPLICATE_KEY = 11000
STALL_MEMORY = 600.0  # seconds a sighting of a stalled writer is remembered


class Contention(Exception):
    """Another writer got to the queue's counter first; nothing of this attempt is visible. Retried."""


class NotApplied(Exception):
    """The connection dropped, and reading back showed that nothing of this attempt took effect. Retried once."""


def is_collision(error: BaseException) -> bool:
    """A duplicate key: another writer holds the slot (``insert_one`` raises DuplicateKeyError, bulk writes a
    BulkWriteError whose write errors carry code 11000)."""
    if isinstance(error, DuplicateKeyError):
        return True
    if isinstance(error, BulkWriteError):
        errors = error.details.get("writeErrors") or []
        return bool(errors) and all(entry.get("code") == DUPLICATE_KEY for entry in errors)
    return False


def stored_project(project: Project) -> str:
    """Project None is stored as '', which no caller can name."""
    return "" if project is None else project


def as_date(seconds: float) -> datetime:
    """A time as the BSON date a TTL index reads (millisecond precision, never later than ``seconds``)."""
    return datetime.fromtimestamp(int(seconds * 1000) / 1000, tz=UTC)


@dataclass(frozen=True)
class QueueState:
    """A queue document as one read found it: what decides which messages a reader sees."""

    id: int
    counter: int
    window: tuple[ObjectId, ...]
    due: float | None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> QueueState:
        return cls(int(doc["_id"]), int(doc["c"]), tuple(doc.get("t") or ()), doc.get("d"))

    def is_due(self, now: float) -> bool:
        return self.due is not None and self.due <= now

    def committed(self, doc: Mapping[str, Any]) -> bool:
        """Its txn committed: materialized, or in the window."""
        txn = doc.get("x")
        return txn is None or txn in self.window

    def exists(self, doc: Mapping[str, Any]) -> bool:
        """Posted by a committed post (a promotion in flight or abandoned leaves the message delayed)."""
        return self.committed(doc) or "k" in doc

    def visible(self, doc: Mapping[str, Any]) -> bool:
        """Has a committed position: a reader may see it."""
        return self.committed(doc) and 0 < doc["m"] <= self.counter

    def exists_filter(self) -> Document:
        """The query form of :meth:`exists`."""
        return {"$or": [{"x": {"$exists": False}}, {"x": {"$in": list(self.window)}}, {"k": {"$exists": True}}]}


def row(doc: Mapping[str, Any], position: bool = False) -> Row:
    lease = doc.get("ce") or 0
    return Row(
        int(doc["n"]),
        doc["b"],
        doc["c"],
        doc["e"],
        doc.get("ci"),
        lease if lease > 0 else None,
        int(doc["m"]) if position else None,
    )


@dataclass
class _Stalls:
    """Where this process saw uncommitted documents right above a counter, and since when (monotonic)."""

    seen: dict[tuple[int, int, int], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def since(self, key: tuple[int, int, int]) -> float:
        now = time.monotonic()
        with self.lock:
            for old in [k for k, first in self.seen.items() if now - first > STALL_MEMORY]:
                del self.seen[old]
            return now - self.seen.setdefault(key, now)

    def forget(self, key: tuple[int, int, int]) -> None:
        with self.lock:
            self.seen.pop(key, None)


class Store:
    """The driver's four collections, and the steps its controllers share."""

    def __init__(self, database: Database[Document], prefix: str, reap_after: int, heal_after: float) -> None:
        def collection(name: str) -> Collection[Document]:
            # Every read must see the driver's own writes: the primary, whatever the URI prefers.
            return database.get_collection(prefix + name, read_preference=ReadPreference.PRIMARY)

        self.queues = collection("queues")
        self.messages = collection("messages")
        self.claims = collection("claims")
        self.counters = collection("counters")
        self.reap_after = reap_after
        self.heal_after = heal_after
        self.stalls = _Stalls()

    # -- setup ---------------------------------------------------------------------------------------------------

    def indexes(self) -> dict[str, list[IndexModel]]:
        """Every index, by collection. Names are stable: creation only adds the ones missing."""
        q, m = ("q", ASCENDING), ("m", ASCENDING)
        return {
            "queues": [IndexModel([("p", ASCENDING), ("n", ASCENDING)], name="name", unique=True)],
            "messages": [
                IndexModel([q, ("n", ASCENDING)], name="number", unique=True),
                IndexModel([q, m], name="marker", unique=True),
                IndexModel([q, ("ce", ASCENDING), m], name="claimable"),
                IndexModel([q, ("x", ASCENDING)], name=UNCOMMITTED, partialFilterExpression={"x": {"$exists": True}}),
                IndexModel([q, ("ci", ASCENDING)], name=HELD, partialFilterExpression={"ci": {"$exists": True}}),
                IndexModel([("r", ASCENDING)], name="expiry", expireAfterSeconds=self.reap_after),
            ],
            "claims": [
                IndexModel([q], name="queue"),
                IndexModel([("r", ASCENDING)], name="expiry", expireAfterSeconds=self.reap_after),
            ],
        }

    def create(self) -> None:
        """Create what is missing (indexes, the incarnation sequence); run no DDL when everything exists."""
        for name, models in self.indexes().items():
            target: Collection[Document] = getattr(self, name)
            existing = {index["name"] for index in target.list_indexes()}
            missing = [model for model in models if model.document["name"] not in existing]
            if missing:
                target.create_indexes(missing)
        try:
            self.counters.insert_one({"_id": "incarnation", "n": 0})
        except DuplicateKeyError:
            pass

    def next_incarnation(self) -> int:
        counter = self.counters.find_one_and_update({"_id": "incarnation"}, {"$inc": {"n": 1}}, return_document=True)
        if counter is None:  # the sequence was dropped under us: start it again above every queue there is
            top = self.queues.find_one({}, sort=[("_id", DESCENDING)], projection={"_id": 1})
            self.counters.update_one(
                {"_id": "incarnation"}, {"$max": {"n": int(top["_id"]) if top else 0}}, upsert=True
            )
            return self.next_incarnation()
        return int(counter["n"])

    # -- queues --------------------------------------------------------------------------------------------------

    def find_queue(self, name: str, project: Project) -> QueueState | None:
        doc = self.queues.find_one({"p": stored_project(project), "n": name}, projection={"meta": 0})
        return None if doc is None else QueueState.of(doc)

    def queue_by_id(self, incarnation: int) -> QueueState | None:
        doc = self.queues.find_one({"_id": incarnation}, projection={"meta": 0})
        return None if doc is None else QueueState.of(doc)

    def current(self, name: str, project: Project, now: float) -> QueueState | None:
        """The queue as of ``now``: due delayed messages promoted first (a write, only when one is due)."""
        queue = self.find_queue(name, project)
        if queue is None or not queue.is_due(now):
            return queue
        return self.append(queue, now, [], "")[1]

    # -- appending: posts and promotions -------------------------------------------------------------------------

    def pending(self, queue: QueueState, now: float) -> tuple[list[Document], float | None]:
        """The due delayed messages in promotion order (due time, then posting order), and when the next is due."""
        delayed = [
            doc
            for doc in self.messages.find({"q": queue.id, "m": {"$lt": 0}})
            if queue.committed(doc) and doc["e"] > now
        ]
        due = sorted((doc for doc in delayed if doc["v"] <= now), key=lambda doc: (doc["v"], doc["n"]))
        later = [doc["v"] for doc in delayed if doc["v"] > now]
        return due, min(later, default=None)

    def message(self, queue: int, slot: int, txn: ObjectId, new: Outgoing, client: str, now: float) -> Document:
        doc: Document = {
            "q": queue,
            "n": slot,
            "m": -slot if new.delayed else slot,
            "x": txn,
            "u": client,
            "b": new.body,
            "c": now,
            "e": new.expires,
            "r": as_date(new.expires),
            "ce": 0,
        }
        if new.delayed:
            doc["v"] = new.visible_at
        return doc

    def append(
        self, queue: QueueState, now: float, batch: Sequence[Outgoing], client: str
    ) -> tuple[list[int], QueueState]:
        """Give the due delayed messages, then ``batch``, the slots after the counter, and commit them at once.

        Returns the batch's numbers and the queue as this commit left it. Raises a duplicate-key error or
        Contention when another writer was first, NotApplied when a dropped connection turned out to have
        changed nothing; in every case nothing of the attempt is visible.
        """
        txn = ObjectId()
        due, later = self.pending(queue, now) if queue.is_due(now) else ([], queue.due)
        slots = itertools.count(queue.counter + 1)
        promotions = [(doc, next(slots)) for doc in due]
        docs = [self.message(queue.id, next(slots), txn, new, client, now) for new in batch]
        numbers = [doc["n"] for doc in docs]
        top = queue.counter + len(promotions) + len(docs)
        next_due = min((new.visible_at for new in batch if new.delayed), default=None)
        if queue.is_due(now):
            next_due = min((due for due in (later, next_due) if due is not None), default=None)
        written = False
        try:
            if promotions:
                written = True
                self.messages.bulk_write(
                    [
                        UpdateOne(
                            {"_id": doc["_id"], "m": doc["m"]}, {"$set": {"m": slot, "x": txn}, "$rename": {"v": "k"}}
                        )
                        for doc, slot in promotions
                    ]
                )
            if docs:
                written = True
                self.messages.insert_many(docs)
            state = self.commit(queue, txn, top, next_due, reset_due=queue.is_due(now))
        except (DuplicateKeyError, BulkWriteError) as error:
            self.abandon(queue.id, txn, inserted=bool(docs), promoted=bool(promotions))
            if is_collision(error):
                self.collided(queue)
            raise
        except ConnectionFailure as error:
            if not written:
                raise NotApplied(str(error)) from error
            state = self.resolve(queue, txn, top, error, inserted=bool(docs), promoted=bool(promotions))
        if state is None:
            self.abandon(queue.id, txn, inserted=bool(docs), promoted=bool(promotions))
            raise Contention(f"queue {queue.id}: the counter moved from {queue.counter} before this commit")
        return numbers, state

    def commit(
        self, queue: QueueState, txn: ObjectId, top: int, next_due: float | None, *, reset_due: bool
    ) -> QueueState | None:
        """Move the counter from where ``queue`` read it to ``top``, recording ``txn``; None if it had moved."""
        due_update: Document = {}
        if reset_due:
            due_update = {"$set": {"d": next_due}} if next_due is not None else {"$unset": {"d": ""}}
        elif next_due is not None:
            due_update = {"$min": {"d": next_due}}
        if top == queue.counter:  # nothing got a slot (the due ones had expired): only the due time moves
            if not due_update:
                return queue
            done = self.queues.update_one({"_id": queue.id, "c": queue.counter}, due_update)
            return QueueState(queue.id, queue.counter, queue.window, next_due) if done.matched_count else None
        window = (*queue.window, txn)
        if len(queue.window) >= WINDOW:
            self.materialize(queue.id, queue.window)
            window = (txn,)
        update: Document = {"$set": {"c": top, "t": list(window)}}
        for operator, fields in due_update.items():
            update.setdefault(operator, {}).update(fields)
        done = self.queues.update_one({"_id": queue.id, "c": queue.counter}, update)
        if not done.matched_count:
            return None
        if reset_due:
            due = next_due
        else:
            due = min((d for d in (queue.due, next_due) if d is not None), default=None)
        return QueueState(queue.id, top, window, due)

    def materialize(self, queue: int, txns: Iterable[ObjectId]) -> None:
        """Make committed txns' documents committed on their own (their txn may then leave the window)."""
        tagged = {"q": queue, "x": {"$in": list(txns)}}
        # Read by the partial index, then written by _id: the test server ignores an update's hint. A committed
        # txn gets no more documents, so the read finds them all.
        ids = [doc["_id"] for doc in self.messages.find(tagged, {"_id": 1}, hint=UNCOMMITTED)]
        if ids:
            self.messages.update_many({"_id": {"$in": ids}, **tagged}, {"$unset": {"x": "", "k": ""}})

    def abandon(self, queue: int, txn: ObjectId, *, inserted: bool = True, promoted: bool = True) -> None:
        """Remove what an uncommitted txn wrote: its new messages go, its promoted ones are delayed again."""
        if inserted:
            self.messages.delete_many({"q": queue, "x": txn, "k": {"$exists": False}}, hint=UNCOMMITTED)
        if promoted:
            self.messages.update_many(
                {"q": queue, "x": txn, "k": {"$exists": True}},
                [{"$set": {"m": {"$multiply": ["$n", -1]}, "v": "$k"}}, {"$unset": ["x", "k"]}],
                hint=UNCOMMITTED,
            )

    def resolve(
        self, queue: QueueState, txn: ObjectId, top: int, error: ConnectionFailure, *, inserted: bool, promoted: bool
    ) -> QueueState:
        """After a dropped connection: the queue as committed by ``txn``, or NotApplied when it changed nothing.

        Re-raises ``error`` when neither can be shown (the outcome is unknown).
        """
        try:
            fresh = self.queue_by_id(queue.id)
            if fresh is not None and txn in fresh.window:
                return fresh
            if fresh is not None and fresh.counter == queue.counter:
                # Fence: move the counter past this attempt's slots, so a write of it still in flight can never
                # commit; then nothing of it can become visible.
                self.queues.update_one({"_id": queue.id, "c": queue.counter}, {"$set": {"c": top}})
                fresh = self.queue_by_id(queue.id)
                if fresh is not None and txn in fresh.window:
                    return fresh
            elif (
                fresh is not None
                and self.messages.find_one({"q": queue.id, "x": txn}, {"_id": 1}, hint=UNCOMMITTED) is None
            ):
                raise error  # committed and materialized long since, or never written: cannot tell
            self.abandon(queue.id, txn, inserted=inserted, promoted=promoted)
        except ConnectionFailure:
            raise error from None
        raise NotApplied(f"queue {queue.id}: the connection dropped; read back, nothing of the write took effect")

    def collided(self, queue: QueueState) -> None:
        """Another writer's documents sit at this attempt's slots. If the same uncommitted ones have sat right after
        the counter for ``heal_after`` seconds, their writer died before its commit: move the counter past them."""
        fresh = self.queue_by_id(queue.id)
        if fresh is None or fresh.counter != queue.counter:
            return  # the counter moved: this attempt read it stale, the next one will not
        after = {"$gt": fresh.counter}
        tops = [
            doc[key]
            for key in ("n", "m")
            if (doc := self.messages.find_one({"q": fresh.id, key: after}, sort=[(key, DESCENDING)])) is not None
        ]
        if not tops:
            return
        sighting = (fresh.id, fresh.counter, max(tops))
        if self.stalls.since(sighting) < self.heal_after:
            return
        healed = self.queues.update_one({"_id": fresh.id, "c": fresh.counter}, {"$set": {"c": sighting[2]}})
        self.stalls.forget(sighting)
        if healed.modified_count:
            log.warning(
                "queue %s: uncommitted messages sat after counter %s for %.1f s; moved it to %s (their writer died)",
                fresh.id,
                fresh.counter,
                self.heal_after,
                sighting[2],
            )

    # -- reading -------------------------------------------------------------------------------------------------

    def scan(
        self, match: Document, after: int, upto: int, limit: int, keep: Callable[[Document], bool]
    ) -> list[Document]:
        """Up to ``limit`` documents kept by ``keep``, in marker order, with ``after < m <= upto``.

        Each read asks the index for one marker range and nothing else (so every server plans it on the index),
        and the range is a window of markers a few times the page, not all the rest of the queue: a server that
        reads a whole range before it applies the limit (SecantusDB does) reads about a page, however deep the
        queue. What ``keep`` leaves out is read past in chunks that double; a window with too few documents is
        followed by one four times as wide, so a stretch of deleted or claimed markers costs a read per fourfold.
        """
        found: list[Document] = []
        chunk = limit
        span = SCAN_SPAN * limit
        while after < upto:
            top = min(upto, after + span)
            # ``m <= top`` written as ``m < top + 1`` (markers are integers): the test server drops entries equal
            # to an inclusive upper bound on an index's later field, which lost the newest message to claims.
            docs = list(
                self.messages.find({**match, "m": {"$gt": after, "$lt": top + 1}}, sort=[("m", 1)], limit=chunk)
            )
            for doc in docs:
                if keep(doc):
                    found.append(doc)
                    if len(found) == limit:
                        return found
            if len(docs) == chunk:  # the window may hold more: go on from the last one read
                after = docs[-1]["m"]
                chunk = min(chunk * 2, SCAN_CHUNK_MAX)
            else:
                after = top
                span *= 4
        return found

    def take(
        self, queue: QueueState, now: float, limit: int, grab: Callable[[list[Document]], list[Document]]
    ) -> list[Document]:
        """Up to ``limit`` of the oldest eligible messages, oldest first, as ``grab`` took them.

        ``grab`` takes the picked messages with writes guarded by the claim state each was picked in, and returns
        those it got: a message another consumer took meanwhile is left to it. What others took first is picked
        again from what is left, at most ``TAKE_ROUNDS`` times, so losing races does not make a claim or pop come
        back short while eligible messages wait.
        """
        taken: list[Document] = []
        for _ in range(TAKE_ROUNDS):
            picked = self.eligible(queue, now, limit - len(taken))
            if not picked:
                break
            got = grab(picked)
            taken += got
            if len(got) == len(picked) or len(taken) == limit:
                break
        taken.sort(key=lambda doc: doc["m"])
        return taken

    def hold(self, queue: QueueState, picked: list[Document], holder: str, update: Document) -> list[Document]:
        """Apply ``update`` (which makes ``holder`` the claim holding a message) to each picked message its state
        still allows; the ones now ``holder``'s."""
        picked_in: dict[float, list[ObjectId]] = {}  # by the lease state each was picked in
        for doc in picked:
            picked_in.setdefault(doc["ce"], []).append(doc["_id"])
        guarded = [UpdateMany({"_id": {"$in": ids}, "ce": lease}, update) for lease, ids in picked_in.items()]
        if self.messages.bulk_write(guarded, ordered=False).modified_count == len(picked):
            return picked
        # Others took some: read back which are this holder's.
        mine = {doc["_id"] for doc in self.messages.find({"q": queue.id, "ci": holder}, {"_id": 1}, hint=HELD)}
        return [doc for doc in picked if doc["_id"] in mine]

    def remove_picked(self, picked: list[Document]) -> list[Document]:
        """Remove each picked message its state still allows, one guarded delete each (a pop is atomic message
        by message, never half done); the ones removed, as they were."""
        removed = (self.messages.find_one_and_delete({"_id": doc["_id"], "ce": doc["ce"]}) for doc in picked)
        return [doc for doc in removed if doc is not None]

    def eligible(self, queue: QueueState, now: float, limit: int) -> list[Document]:
        """The oldest ``limit`` messages a claim or pop may take: visible, unexpired, not under a live claim.

        Unclaimed ones come from the claim index's ``ce = 0`` range in marker order, those whose claim expired
        from its ``0 < ce <= now`` range: messages under live claims are never read, however many there are.
        """

        def takeable(doc: Document) -> bool:
            return queue.visible(doc) and doc["e"] > now

        fresh = self.scan({"q": queue.id, "ce": 0}, 0, queue.counter, limit, takeable)
        # ``ce <= now`` for doubles, written as a strict bound: the test server drops entries equal to an
        # inclusive upper bound on a leading field of a compound index.
        lease_over = {"$gte": LEASED, "$lt": math.nextafter(now, math.inf)}
        lapsed: list[Document] = []
        chunk = limit
        while True:
            docs = list(self.messages.find({"q": queue.id, "ce": lease_over}, sort=[("m", 1)], limit=chunk))
            lapsed = [doc for doc in docs if takeable(doc)]
            if len(lapsed) >= limit or len(docs) < chunk:
                break
            chunk *= 2
        # The two reads are not one snapshot: a message that changed between them can be in both; take it once.
        unique = {doc["_id"]: doc for doc in reversed(fresh + lapsed[:limit])}
        return sorted(unique.values(), key=lambda doc: doc["m"])[:limit]
