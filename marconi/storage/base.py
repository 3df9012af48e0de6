"""The storage contract: DriverBase and its three controllers.

Each public method owns every rule that is not about storage. It validates and normalises its arguments
(``marconi.storage.validation``), reads the driver's clock once, computes the absolute times a hook stores
(expiry, visibility, lease end, the floor a claim extends its messages to), mints claim ids, and calls the
driver's hook, a method of the same name with a leading underscore, through one wrapper that retries what may
be retried and turns backend errors into the contract's (``marconi.storage.failures``). Then it turns what the
hook found (``marconi.storage.hooks``) into the answer: ids and markers, ``ttl`` and ``age``, ``claim_id`` only
while the claim lives, the next marker of a page, the errors of a delete, and ``QueueDoesNotExist``.

A driver implements the hooks, each a storage step with a one-line obligation, and declares its name, schemes,
capabilities, options and error policy. The guarantees of each public method are those of CONTRACT.md.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, NotRequired, TypedDict, TypeVar

from marconi.storage import failures, tokens, validation
from marconi.storage.clock import Clock, SystemClock, isoformat, whole_seconds
from marconi.storage.errors import (
    BackendError,
    ClaimDoesNotExist,
    MessageConflict,
    MessageDoesNotExist,
    MessageIsClaimed,
    MessageNotClaimed,
    MessageNotClaimedBy,
    QueueDoesNotExist,
    StorageError,
)
from marconi.storage.failures import ErrorPolicy, Failure
from marconi.storage.hooks import (
    BulkDelete,
    BulkDeleted,
    ClaimRead,
    ClaimRequest,
    Holder,
    Listed,
    ListRequest,
    MessageDelete,
    MessageRef,
    Outgoing,
    Posted,
    PostRequest,
    Project,
    QueueCounts,
    Renewal,
    Row,
    Rows,
)
from marconi.storage.validation import DEFAULT_LIMIT, Limits, Option

T = TypeVar("T")

DEFAULT_GC_INTERVAL = 30.0  # seconds between two gc() calls of a collector
MAX_GC_INTERVAL = 7 * 86_400.0
MAX_CONFLICT_TIMEOUT = 3_600.0
DELETE_ATTEMPTS = 3  # a delete that races with claims changing under it looks again this often

#: The options every driver takes, checked before the driver sees them.
CORE_OPTIONS: Mapping[str, Option] = {
    "clock": Option(validation.clock, None, "the source of 'now' (anything with now()); default: the system clock"),
    "limits": Option(validation.limits, None, "a marconi.storage.Limits changing the configurable bounds"),
    "gc_interval": Option(
        lambda value, field: validation.positive_seconds(value, field, MAX_GC_INTERVAL),
        DEFAULT_GC_INTERVAL,
        "seconds between two gc() passes of a collector",
    ),
    "conflict_timeout": Option(
        lambda value, field: validation.positive_seconds(value, field, MAX_CONFLICT_TIMEOUT),
        failures.DEFAULT_CONFLICT_TIMEOUT,
        "seconds a call may spend waiting on contention; a post then raises MessageConflict",
    ),
}


class Capability:
    """Names of the promises a driver may declare in ``capabilities``."""

    FIFO = "fifo"  # one producer's messages are listed and claimed in posting order
    OBSERVER_ONCE = "observer_once"  # paging with markers never skips or repeats a message
    CLAIMS = "claims"  # exclusive claims with leases
    DELAY = "delay"  # messages may be posted with a delay before they become visible
    POP = "pop"  # atomic remove-and-return
    DURABLE = "durable"  # messages survive a restart of the process that posted them
    MULTIPROCESS = "multiprocess"  # drivers in several processes on one URI share one store

    ALL: ClassVar[frozenset[str]] = frozenset({FIFO, OBSERVER_ONCE, CLAIMS, DELAY, POP, DURABLE, MULTIPROCESS})


class QueueEntry(TypedDict):
    name: str
    metadata: NotRequired[dict[str, Any]]


class Message(TypedDict):
    id: str
    ttl: int
    age: int
    body: Any
    claim_id: NotRequired[str]


class ClaimInfo(TypedDict):
    id: str
    ttl: int
    age: int


class Page(Iterator[Any], Generic[T]):
    """One page of a listing.

    Iterates like Marconi's original generator (first an iterator of the items, then the marker of the next
    page), and also offers the two as the typed attributes ``items`` and ``marker``.
    """

    def __init__(self, items: list[T], marker: str | None) -> None:
        self.items = items
        self.marker = marker
        self._parts: Iterator[Any] = iter((iter(items), marker))

    def __next__(self) -> Any:
        return next(self._parts)


def message_id(incarnation: int, number: int) -> str:
    return tokens.encode_pair(incarnation, number)


def live_claim(row: Row, now: float) -> str | None:
    """The claim holding ``row`` now, or None: a claim stops holding its messages when its lease ends."""
    if row.claim_id is not None and row.claim_expires is not None and row.claim_expires > now:
        return row.claim_id
    return None


def format_messages(incarnation: int, rows: Iterable[Row], now: float) -> list[Message]:
    """The messages as callers see them; ``claim_id`` only while the claim lives.

    ``ttl`` is the lifetime rounded up, ``age`` the time since the post rounded down (``clock.lifetime_seconds``
    and ``clock.whole_seconds``, written out here: this loop runs for every message a page, claim or pop returns).
    """
    prefix = f"{incarnation}."
    decode = validation.from_json
    formatted: list[Message] = []
    append = formatted.append
    for row in rows:
        created = row.created
        lifetime = row.expires - created
        ttl = int(lifetime)
        age = int(now - created)
        message: Message = {
            "id": prefix + str(row.number),
            "ttl": ttl if ttl >= lifetime else ttl + 1,
            "age": age if age > 0 else 0,
            "body": decode(row.body),
        }
        if row.claim_id is not None and row.claim_expires is not None and row.claim_expires > now:
            message["claim_id"] = row.claim_id
        append(message)
    return formatted


def format_message(incarnation: int, row: Row, now: float) -> Message:
    """One message as callers see it (``format_messages``)."""
    return format_messages(incarnation, (row,), now)[0]


def format_rows(found: Rows, now: float) -> list[Message]:
    """The unexpired rows as messages (a hook filters expired ones already; the base never shows one)."""
    return format_messages(found.incarnation, [row for row in found.rows if row.expires > now], now)


class DriverBase(abc.ABC):
    """A storage driver: three controllers over one backend, plus garbage collection.

    ``uri`` says where the backend is. Every driver takes the core options (``clock``, the only source of "now";
    ``limits``; ``gc_interval``; ``conflict_timeout``) and those it declares in ``OPTIONS``; each is checked
    before use, and an unknown one is ``InvalidInput`` naming it. A driver is a context manager; ``close()``
    releases its connections.
    """

    #: Canonical entry-point name, e.g. ``"sqlalchemy"``.
    name: ClassVar[str] = ""
    #: URI schemes served, each also registered as an entry point.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: Every capability this driver can declare; an instance may declare fewer (see ``capabilities``).
    CAPABILITIES: ClassVar[frozenset[str]] = frozenset()
    #: The driver's own options beyond the core ones, with their checks and defaults.
    OPTIONS: ClassVar[Mapping[str, Option]] = {}
    #: What the backend client's exceptions mean (see ``marconi.storage.failures``).
    ERRORS: ClassVar[ErrorPolicy] = ErrorPolicy()
    #: The option (one of ``OPTIONS``) that keeps a set of the driver's data apart from others' on one shared
    #: store, e.g. a table prefix; tools that share a store with other users (tests, verifiers) set it.
    PREFIX_OPTION: ClassVar[str | None] = None

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = validation.uri(uri)
        settings = validation.options(options, {**CORE_OPTIONS, **self.OPTIONS}, f"the {self.name or 'driver'} driver")
        self.clock: Clock = settings.pop("clock") or SystemClock()
        self.limits: Limits = settings.pop("limits") or Limits()
        self._gc_interval: float = settings.pop("gc_interval")
        self.conflict_timeout: float = settings.pop("conflict_timeout")
        #: The driver's own options (``OPTIONS``), checked, defaults filled in.
        self.options: dict[str, Any] = settings

    @property
    def capabilities(self) -> frozenset[str]:
        """The named promises this instance keeps; the conformance suite tests exactly these."""
        return self.CAPABILITIES

    @property
    @abc.abstractmethod
    def queue_controller(self) -> QueueBase: ...

    @property
    @abc.abstractmethod
    def message_controller(self) -> MessageBase: ...

    @property
    @abc.abstractmethod
    def claim_controller(self) -> ClaimBase: ...

    def gc(self) -> int:
        """Remove expired messages and claims (and make due delayed messages visible); return how many were removed."""
        now = self.clock.now()
        return self.call("gc", lambda: self._gc(now), idempotent=True)

    @property
    def gc_interval(self) -> float:
        """How often, in seconds, a collector should call ``gc()``."""
        return self._gc_interval

    def close(self) -> None:  # noqa: B027 - drivers without connections need not override it
        """Release the backend's connections. Idempotent."""

    def __enter__(self) -> DriverBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({validation.redacted(self.uri)!r})"

    def classify(self, error: BaseException) -> Failure | None:
        """What a backend exception means; by ``ERRORS`` unless a driver knows better (error codes)."""
        return self.ERRORS.classify(error)

    def call(
        self,
        what: str,
        hook: Callable[[], T],
        *,
        idempotent: bool,
        conflict: Callable[[str], StorageError] | None = None,
    ) -> T:
        """Run a hook under the driver's error policy and ``conflict_timeout`` (``failures.call``)."""
        return failures.call(
            hook,
            classify=self.classify,
            timeout=self.conflict_timeout,
            what=f"{self.name or type(self).__name__} {what}",
            idempotent=idempotent,
            conflict=conflict,
        )

    @abc.abstractmethod
    def _gc(self, now: float) -> int:
        """Promote due delayed messages; remove messages and claims expired by ``now``; return how many removed."""


class ControllerBase:
    """What every controller shares: its driver, and the driver's clock and limits."""

    def __init__(self, driver: DriverBase) -> None:
        self.driver = driver

    def _now(self) -> float:
        return self.driver.clock.now()

    def _read(self, what: str, hook: Callable[[], T]) -> T:
        """A hook that may safely run twice (reads, deletes, renewals)."""
        return self.driver.call(what, hook, idempotent=True)

    def _write(self, what: str, hook: Callable[[], T]) -> T:
        """A hook that must not run twice when its outcome is unknown (post, pop, claim create)."""
        return self.driver.call(what, hook, idempotent=False)


class QueueBase(ControllerBase, abc.ABC):
    """Queues: named, per project, with JSON metadata."""

    def upsert(self, name: str, metadata: dict[str, Any], project: Project = None) -> bool:
        """Create the queue, or replace its metadata. True if it was created."""
        name, project = validation.queue_name(name), validation.project(project)
        text = validation.queue_metadata(metadata)
        return self._read("queue upsert", lambda: self._upsert(name, text, project))

    def get(self, name: str, project: Project = None) -> dict[str, Any]:
        """The queue's metadata. QueueDoesNotExist if absent."""
        name, project = validation.queue_name(name), validation.project(project)
        text = self._read("queue get", lambda: self._get(name, project))
        if text is None:
            raise QueueDoesNotExist(name, project)
        metadata: dict[str, Any] = validation.from_json(text)
        return metadata

    def list(
        self, project: Project = None, marker: str | None = None, limit: int = DEFAULT_LIMIT, detailed: bool = False
    ) -> Page[QueueEntry]:
        """Queues sorted by name, strictly after ``marker``; then the marker of the next page (the last name)."""
        project = validation.project(project)
        after = validation.optional_queue_name(marker, "marker")
        limit = validation.limit(limit)
        detailed = validation.flag(detailed, "detailed")
        rows = self._read("queue list", lambda: self._list(project, after, limit, detailed))
        entries: builtins.list[QueueEntry] = []
        for name, metadata in rows:
            entry: QueueEntry = {"name": name}
            if detailed and metadata is not None:
                entry["metadata"] = validation.from_json(metadata)
            entries.append(entry)
        return Page(entries, entries[-1]["name"] if entries else after)

    def delete(self, name: str, project: Project = None) -> None:
        """Remove the queue with its messages and claims. Deleting a missing queue is not an error."""
        name, project = validation.queue_name(name), validation.project(project)
        self._read("queue delete", lambda: self._delete(name, project))

    def stats(self, name: str, project: Project = None) -> dict[str, Any]:
        """Counts of claimed, free and total unexpired messages, with the oldest and newest by marker order."""
        name, project = validation.queue_name(name), validation.project(project)
        now = self._now()
        counts = self._read("queue stats", lambda: self._stats(name, project, now))
        if counts is None:
            raise QueueDoesNotExist(name, project)
        messages: dict[str, Any] = {"claimed": counts.claimed, "free": counts.free, "total": counts.total}
        for end, row in (("oldest", counts.oldest), ("newest", counts.newest)):
            if row is not None:
                messages[end] = {
                    "id": message_id(counts.incarnation, row.number),
                    "age": whole_seconds(now - row.created),
                    "created": isoformat(row.created),
                }
        return {"messages": messages}

    def actions(self, name: str, project: Project = None, marker: str | None = None, limit: int = DEFAULT_LIMIT) -> Any:
        """Reserved by Marconi's original interface and never specified."""
        raise NotImplementedError("queue actions are reserved by the storage contract and not specified")

    @abc.abstractmethod
    def _upsert(self, name: str, metadata: str, project: Project) -> bool:
        """Create the queue with a fresh incarnation, or replace its metadata (JSON text); True if created."""

    @abc.abstractmethod
    def _get(self, name: str, project: Project) -> str | None:
        """The queue's metadata as JSON text; None if there is no such queue."""

    @abc.abstractmethod
    def _list(
        self, project: Project, after: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        """Up to ``limit`` (name, metadata text or None unless detailed) of the project, by name, after ``after``."""

    @abc.abstractmethod
    def _delete(self, name: str, project: Project) -> None:
        """Remove the queue with all its messages and claims, atomically; nothing when there is no such queue."""

    @abc.abstractmethod
    def _stats(self, name: str, project: Project, now: float) -> QueueCounts | None:
        """The queue's counts as of ``now`` (due delayed messages promoted first); None if there is no such queue."""


class MessageBase(ControllerBase, abc.ABC):
    """Messages: posted in atomic batches, listed by marker, deleted, popped."""

    def post(
        self, queue: str, messages: Iterable[dict[str, Any]], client_uuid: Any, project: Project = None
    ) -> builtins.list[str]:
        """Post a batch atomically, in order; return the ids in input order.

        Either every message becomes visible, in input order and after everything already visible, or none does.
        Under contention this raises MessageConflict within ``conflict_timeout``, having posted nothing.
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        client = validation.client_uuid(client_uuid)
        batch = validation.messages(messages, self.driver.limits)
        now = self._now()
        request = PostRequest(
            queue,
            project,
            client,
            [Outgoing(new.body, now + new.ttl, now + new.delay, new.delay > 0) for new in batch],
            now,
        )
        posted: Posted | None = self.driver.call(
            "post",
            lambda: self._post(request),
            idempotent=False,
            conflict=lambda detail: MessageConflict(queue, project, detail),
        )
        if posted is None:
            raise QueueDoesNotExist(queue, project)
        return [message_id(posted.incarnation, number) for number in posted.numbers]

    def get(self, queue: str, message_id: str, project: Project = None) -> Message:
        """The message. MessageDoesNotExist if it is missing or expired."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        ref = validation.message_ref(message_id)
        found = self._found(queue, project, [ref] if ref is not None else [])
        if not found:
            raise MessageDoesNotExist(message_id, queue, project)
        return found[0]

    def bulk_get(self, queue: str, message_ids: Iterable[str], project: Project = None) -> builtins.list[Message]:
        """The messages among ``message_ids`` that exist, in the order asked; the rest are skipped."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        return self._found(queue, project, validation.message_refs(message_ids))

    def _found(self, queue: str, project: Project, refs: builtins.list[MessageRef]) -> builtins.list[Message]:
        if not refs:
            return []  # malformed ids name no message: the backend is not asked, a missing queue not looked up
        now = self._now()
        found = self._read("get", lambda: self._bulk_get(queue, project, refs, now))
        if found is None:
            raise QueueDoesNotExist(queue, project)
        by_ref = {(found.incarnation, row.number): row for row in found.rows if row.expires > now}
        return [format_message(ref[0], by_ref[ref], now) for ref in refs if ref in by_ref]

    def list(
        self,
        queue: str,
        project: Project = None,
        marker: str | None = None,
        limit: int = DEFAULT_LIMIT,
        echo: bool = False,
        client_uuid: Any = None,
        include_claimed: bool = False,
    ) -> Page[Message]:
        """Messages in marker order strictly after ``marker``; then the marker of the next page.

        Leaves out expired and delayed messages, claimed ones unless ``include_claimed``, and the caller's own
        unless ``echo``. Following the returned markers, an observer sees every visible message exactly once.
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        after = validation.message_marker(marker)
        limit = validation.limit(limit)
        echo = validation.flag(echo, "echo")
        client = validation.optional_client_uuid(client_uuid)
        include_claimed = validation.flag(include_claimed, "include_claimed")
        now = self._now()
        hide = None if echo else client

        def page(start: int) -> Listed:
            request = ListRequest(queue, project, start, limit, hide, include_claimed, now)
            listed = self._read("list", lambda: self._list(request))
            if listed is None:
                raise QueueDoesNotExist(queue, project)
            return listed

        start = after[1] if after is not None else 0
        listed = page(start)
        if after is not None and after[0] != listed.incarnation and start > 0:
            # A marker of an earlier incarnation of this queue: start the queue as it is now from its head.
            start = 0
            listed = page(start)
        rows = listed.rows
        positions = [row.position for row in rows if row.position is not None]
        if len(positions) != len(rows):
            raise BackendError("the driver's list hook returned a message without its position")
        if len(rows) == limit:
            end = positions[-1]
        else:  # a short page examined everything up to the queue's last position
            end = max(start, listed.last_position, *positions)
        return Page(format_messages(listed.incarnation, rows, now), tokens.encode_pair(listed.incarnation, end))

    def delete(self, queue: str, message_id: str, project: Project = None, claim: str | None = None) -> None:
        """Delete the message. Missing is not an error; a live claim's message needs that claim's id.

        MessageIsClaimed without the claim id; MessageNotClaimedBy with a claim id that does not hold it
        (MessageNotClaimed, a subclass, when no live claim holds it at all).
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        ref = validation.message_ref(message_id)
        claim_id = None if claim is None else (validation.claim_id(claim, "claim") or NO_CLAIM)
        if ref is None:
            return
        now = self._now()
        request = MessageDelete(queue, project, ref, claim_id, now)
        for _ in range(DELETE_ATTEMPTS):
            holder: Holder | None = self._read("delete", lambda: self._delete(request))
            if holder is None:
                return  # deleted, or nothing to delete
            held_by = live_claim(Row(0, "", 0.0, 0.0, holder.claim_id, holder.claim_expires), now)
            if claim is None and held_by is not None:
                raise MessageIsClaimed(message_id)
            if claim is not None and held_by is None:
                raise MessageNotClaimed(message_id, claim)
            if claim is not None and held_by != claim_id:
                raise MessageNotClaimedBy(message_id, claim)
            # The claim on it changed between the hook's steps: the delete may succeed now.
        raise BackendError(f"delete of {message_id!r}: the driver kept reporting a claim that does not block it")

    def bulk_delete(
        self, queue: str, message_ids: Iterable[str], project: Project = None, claim: str | None = None
    ) -> None:
        """Delete the listed messages that no live claim holds; given ``claim``, those that claim holds instead.

        Missing messages, and messages held otherwise, are left alone. With a claim id that names no live claim
        of the queue, nothing is deleted and ClaimDoesNotExist is raised (unless the queue is missing: silent).
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        refs = validation.message_refs(message_ids)
        claim_id = None if claim is None else (validation.claim_id(claim, "claim") or NO_CLAIM)
        if not refs:
            return
        now = self._now()
        request = BulkDelete(queue, project, refs, claim_id, now)
        outcome: BulkDeleted | None = self._read("bulk delete", lambda: self._bulk_delete(request))
        if claim is not None and outcome is not None and not outcome.claim_live:
            raise ClaimDoesNotExist(claim, queue, project)

    def pop(self, queue: str, limit: int = DEFAULT_LIMIT, project: Project = None) -> builtins.list[Message]:
        """Atomically remove and return up to ``limit`` of the oldest eligible messages."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        limit = validation.limit(limit)
        now = self._now()
        popped = self._write("pop", lambda: self._pop(queue, project, limit, now))
        if popped is None:
            raise QueueDoesNotExist(queue, project)
        return format_rows(popped, now)

    @abc.abstractmethod
    def _post(self, request: PostRequest) -> Posted | None:
        """Atomically append the batch: new numbers, and the next positions in input order for the undelayed,
        with nothing of a later position visible before all of it; due delayed ones first. None if no queue."""

    @abc.abstractmethod
    def _bulk_get(self, queue: str, project: Project, refs: builtins.list[MessageRef], now: float) -> Rows | None:
        """The unexpired messages among ``refs`` in the queue's current incarnation (any order); None if no queue."""

    @abc.abstractmethod
    def _list(self, request: ListRequest) -> Listed | None:
        """Up to ``limit`` visible unexpired messages after ``after`` by position, filtered as asked, with
        positions, and the last position given when the page was read; None if no queue."""

    @abc.abstractmethod
    def _delete(self, request: MessageDelete) -> Holder | None:
        """Delete the message if the claim condition holds; else its holder as stored. None when deleted or when
        there is no such unexpired message (or queue)."""

    @abc.abstractmethod
    def _bulk_delete(self, request: BulkDelete) -> BulkDeleted | None:
        """Atomically delete those of ``refs`` that meet the claim condition (see BulkDelete); None if no queue."""

    @abc.abstractmethod
    def _pop(self, queue: str, project: Project, limit: int, now: float) -> Rows | None:
        """Atomically remove and return up to ``limit`` of the oldest eligible messages; None if no queue."""


#: Stands in for a malformed claim id in ``MessageBase.delete``: well-formed, yet never issued (a uuid4 is
#: never all zeros), so it holds no message and no query ever sees the caller's raw text.
NO_CLAIM = "0" * 32


class ClaimBase(ControllerBase, abc.ABC):
    """Claims: exclusive, leased hold on the oldest eligible messages."""

    def create(
        self, queue: str, metadata: dict[str, Any], project: Project = None, limit: int = DEFAULT_LIMIT
    ) -> tuple[str | None, list[Message]]:
        """Lease up to ``limit`` of the oldest eligible messages; ``(None, [])`` when none is eligible.

        A message is held by at most one live claim. Its life is extended to at least the claim's end plus grace.
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        terms = validation.claim_terms(metadata)
        limit = validation.limit(limit)
        now = self._now()
        claim_id = tokens.new_claim_id()
        expires = now + terms.ttl
        request = ClaimRequest(queue, project, claim_id, terms.ttl, expires, expires + terms.grace, limit, now)
        taken = self._write("claim create", lambda: self._create(request))
        if taken is None:
            raise QueueDoesNotExist(queue, project)
        if not taken.rows:
            return None, []
        floor = request.message_floor
        held = [  # as the hook left them (a hook may return them as they were before it)
            Row(row.number, row.body, row.created, max(row.expires, floor), claim_id, expires, row.position)
            for row in taken.rows
        ]
        return claim_id, format_rows(Rows(taken.incarnation, held), now)

    def get(self, queue: str, claim_id: str, project: Project = None) -> tuple[ClaimInfo, list[Message]]:
        """The live claim and the messages it holds. ClaimDoesNotExist if missing, expired or malformed."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        valid_id = validation.claim_id(claim_id)
        now = self._now()
        found = self._read("claim get", lambda: self._get(queue, project, valid_id, now)) if valid_id else None
        if found is None and valid_id:
            raise QueueDoesNotExist(queue, project)
        if found is None or found.claim is None or not found.claim.expires > now:
            raise ClaimDoesNotExist(claim_id, queue, project)
        info: ClaimInfo = {"id": claim_id, "ttl": found.claim.ttl, "age": whole_seconds(now - found.claim.created)}
        held = [row for row in found.rows if live_claim(row, now) == valid_id]
        return info, format_rows(Rows(found.incarnation, held), now)

    def update(self, queue: str, claim_id: str, metadata: dict[str, Any], project: Project = None) -> None:
        """Renew the lease to now + ttl, extending its messages' lives as create does."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        valid_id = validation.claim_id(claim_id)
        terms = validation.claim_terms(metadata)
        if not valid_id:
            raise ClaimDoesNotExist(claim_id, queue, project)
        now = self._now()
        expires = now + terms.ttl
        request = Renewal(queue, project, valid_id, terms.ttl, expires, expires + terms.grace, now)
        renewed = self._read("claim update", lambda: self._update(request))
        if renewed is None:
            raise QueueDoesNotExist(queue, project)
        if not renewed:
            raise ClaimDoesNotExist(claim_id, queue, project)

    def delete(self, queue: str, claim_id: str, project: Project = None) -> None:
        """Release the claim: its messages are eligible again at once. Idempotent."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        valid_id = validation.claim_id(claim_id)
        if valid_id:
            now = self._now()
            self._read("claim delete", lambda: self._delete(queue, project, valid_id, now))

    @abc.abstractmethod
    def _create(self, request: ClaimRequest) -> Rows | None:
        """Atomically take up to ``limit`` of the oldest eligible messages (by position) for the claim: mark each
        held until ``expires``, lift its expiry to ``message_floor``, and record the claim, only if any were
        taken. The messages taken (as before or after the change); None if no queue."""

    @abc.abstractmethod
    def _get(self, queue: str, project: Project, claim_id: str, now: float) -> ClaimRead | None:
        """The claim if live, and the unexpired messages it holds in position order; None if no queue."""

    @abc.abstractmethod
    def _update(self, request: Renewal) -> bool | None:
        """Atomically renew the claim if live and lift its messages' expiry to the floor; False if not live;
        None if no queue."""

    @abc.abstractmethod
    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        """Release the claim: none of its messages stays held; nothing when it or its queue is missing."""
