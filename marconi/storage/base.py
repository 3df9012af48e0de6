"""The storage contract: DriverBase and its three controllers.

Each public method validates and normalises its arguments (``marconi.storage.validation``), reads the driver's
clock once, and only then calls the driver's hook, a method of the same name with a leading underscore. Drivers
implement the hooks; they never see unvalidated input and never read the clock themselves. The guarantees each
method gives are those of CONTRACT.md, restated in short in each docstring.
"""

from __future__ import annotations

import abc
import builtins
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NotRequired, TypedDict, TypeVar

from marconi.storage import validation
from marconi.storage.clock import Clock, SystemClock, isoformat, lifetime_seconds, whole_seconds
from marconi.storage.errors import ClaimDoesNotExist, InvalidInput, MessageDoesNotExist
from marconi.storage.validation import DEFAULT_LIMIT, ClaimTerms, Limits, NewMessage

Project = str | None
MessageRef = tuple[int, int]  # (queue incarnation, message number), parsed from a message id
Position = tuple[int, int]  # (queue incarnation, marker position), parsed from a marker

DEFAULT_GC_INTERVAL = 30.0  # seconds between two gc() calls of a collector


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


@dataclass(frozen=True)
class StoredMessage:
    """A message as a driver hands it back to the base, which formats it for the caller."""

    id: str
    body: str  # JSON text
    created: float
    expires: float
    claim_id: str | None = None  # set only while a live claim holds the message


@dataclass(frozen=True)
class StoredClaim:
    id: str
    ttl: int
    created: float


@dataclass(frozen=True)
class QueueCounts:
    """What ``stats`` needs from a driver: counts of unexpired messages and the ends in marker order."""

    claimed: int
    free: int
    total: int
    oldest: StoredMessage | None
    newest: StoredMessage | None


T = TypeVar("T")


class Page(Iterator[Any], Generic[T]):
    """One page of a listing.

    Iterates like the seed's generator (first an iterator of the items, then the marker of the next page), and
    also offers the two as the typed attributes ``items`` and ``marker``.
    """

    def __init__(self, items: list[T], marker: str | None) -> None:
        self.items = items
        self.marker = marker
        self._parts: Iterator[Any] = iter((iter(items), marker))

    def __next__(self) -> Any:
        return next(self._parts)


def format_message(message: StoredMessage, now: float) -> Message:
    formatted: Message = {
        "id": message.id,
        "ttl": lifetime_seconds(message.expires - message.created),
        "age": whole_seconds(now - message.created),
        "body": json.loads(message.body),
    }
    if message.claim_id is not None:
        formatted["claim_id"] = message.claim_id
    return formatted


class DriverBase(abc.ABC):
    """A storage driver: three controllers over one backend, plus garbage collection.

    ``uri`` says where the backend is; ``clock`` is the only source of "now" (tests pass a ManualClock);
    ``limits`` changes the configurable bounds. A driver is a context manager; ``close()`` releases its
    connections.
    """

    #: Canonical entry-point name, e.g. ``"sqlalchemy"``.
    name: ClassVar[str] = ""
    #: URI schemes served, each also registered as an entry point.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: Every capability this driver can declare; an instance may declare fewer (see ``capabilities``).
    CAPABILITIES: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        uri: str,
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        gc_interval: float = DEFAULT_GC_INTERVAL,
    ) -> None:
        self.uri = uri
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.limits = limits if limits is not None else Limits()
        if isinstance(gc_interval, bool) or not isinstance(gc_interval, (int, float)) or not gc_interval > 0:
            raise InvalidInput("gc_interval", f"must be a positive number of seconds, got {gc_interval!r}")
        self._gc_interval = float(gc_interval)

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
        return self._gc(self.clock.now())

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
        return f"{type(self).__name__}({self.uri!r})"

    @abc.abstractmethod
    def _gc(self, now: float) -> int: ...


class ControllerBase:
    """What every controller shares: its driver, and the driver's clock and limits."""

    def __init__(self, driver: DriverBase) -> None:
        self.driver = driver

    def _now(self) -> float:
        return self.driver.clock.now()


class QueueBase(ControllerBase, abc.ABC):
    """Queues: named, per project, with JSON metadata."""

    def upsert(self, name: str, metadata: dict[str, Any], project: Project = None) -> bool:
        """Create the queue, or replace its metadata. True if it was created."""
        return self._upsert(
            validation.queue_name(name), validation.queue_metadata(metadata), validation.project(project)
        )

    def get(self, name: str, project: Project = None) -> dict[str, Any]:
        """The queue's metadata. QueueDoesNotExist if absent."""
        text = self._get(validation.queue_name(name), validation.project(project))
        metadata: dict[str, Any] = json.loads(text)
        return metadata

    def list(
        self, project: Project = None, marker: str | None = None, limit: int = DEFAULT_LIMIT, detailed: bool = False
    ) -> Page[QueueEntry]:
        """Queues sorted by name, strictly after ``marker``; then the marker of the next page (the last name)."""
        project = validation.project(project)
        marker = validation.optional_queue_name(marker, "marker")
        limit = validation.limit(limit)
        detailed = validation.flag(detailed, "detailed")
        rows = self._list(project, marker, limit, detailed)
        entries: builtins.list[QueueEntry] = []
        for name, metadata in rows:
            entry: QueueEntry = {"name": name}
            if detailed and metadata is not None:
                entry["metadata"] = json.loads(metadata)
            entries.append(entry)
        return Page(entries, entries[-1]["name"] if entries else marker)

    def delete(self, name: str, project: Project = None) -> None:
        """Remove the queue with its messages and claims. Deleting a missing queue is not an error."""
        self._delete(validation.queue_name(name), validation.project(project))

    def stats(self, name: str, project: Project = None) -> dict[str, Any]:
        """Counts of claimed, free and total unexpired messages, with the oldest and newest by marker order."""
        name, project = validation.queue_name(name), validation.project(project)
        now = self._now()
        counts = self._stats(name, project, now)
        messages: dict[str, Any] = {"claimed": counts.claimed, "free": counts.free, "total": counts.total}
        for end, message in (("oldest", counts.oldest), ("newest", counts.newest)):
            if message is not None:
                messages[end] = {
                    "id": message.id,
                    "age": whole_seconds(now - message.created),
                    "created": isoformat(message.created),
                }
        return {"messages": messages}

    def actions(self, name: str, project: Project = None, marker: str | None = None, limit: int = DEFAULT_LIMIT) -> Any:
        """Reserved by the seed and never specified."""
        raise NotImplementedError("queue actions are reserved by the storage contract and not specified")

    @abc.abstractmethod
    def _upsert(self, name: str, metadata: str, project: Project) -> bool: ...

    @abc.abstractmethod
    def _get(self, name: str, project: Project) -> str: ...

    @abc.abstractmethod
    def _list(
        self, project: Project, marker: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]: ...

    @abc.abstractmethod
    def _delete(self, name: str, project: Project) -> None: ...

    @abc.abstractmethod
    def _stats(self, name: str, project: Project, now: float) -> QueueCounts: ...


class MessageBase(ControllerBase, abc.ABC):
    """Messages: posted in atomic batches, listed by marker, deleted, popped."""

    def post(
        self, queue: str, messages: Iterable[dict[str, Any]], client_uuid: Any, project: Project = None
    ) -> builtins.list[str]:
        """Post a batch atomically, in order; return the ids in input order.

        Either every message becomes visible, in input order and after everything already visible, or none does.
        Under contention this raises MessageConflict within a bounded time, having posted nothing.
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        client = validation.client_uuid(client_uuid)
        batch = validation.messages(messages, self.driver.limits)
        return self._post(queue, project, batch, client, self._now())

    def get(self, queue: str, message_id: str, project: Project = None) -> Message:
        """The message. MessageDoesNotExist if it is missing or expired."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        ref = validation.message_ref(message_id)
        now = self._now()
        found = self._bulk_get(queue, project, [ref], now) if ref is not None else []
        if not found:
            raise MessageDoesNotExist(message_id, queue, project)
        return format_message(found[0], now)

    def bulk_get(self, queue: str, message_ids: Iterable[str], project: Project = None) -> builtins.list[Message]:
        """The messages among ``message_ids`` that exist, in the order asked; the rest are skipped."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        refs = validation.message_refs(message_ids)
        if not refs:
            return []
        now = self._now()
        return [format_message(message, now) for message in self._bulk_get(queue, project, refs, now)]

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
        hide_from = None if echo else client
        now = self._now()
        messages, next_marker = self._list(queue, project, after, limit, hide_from, include_claimed, now)
        return Page([format_message(message, now) for message in messages], next_marker)

    def delete(self, queue: str, message_id: str, project: Project = None, claim: str | None = None) -> None:
        """Delete the message. Missing is not an error; a live claim's message needs that claim's id.

        MessageIsClaimed without the claim id; MessageNotClaimedBy with a claim id that does not hold it.
        """
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        ref = validation.message_ref(message_id)
        claim_id = None if claim is None else (validation.claim_id(claim, "claim") or NO_CLAIM)
        if ref is not None:
            self._delete(queue, project, ref, message_id, claim_id, self._now())

    def bulk_delete(self, queue: str, message_ids: Iterable[str], project: Project = None) -> None:
        """Delete the unclaimed messages among ``message_ids``; claimed and missing ones are left alone."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        refs = validation.message_refs(message_ids)
        if refs:
            self._bulk_delete(queue, project, refs, self._now())

    def pop(self, queue: str, limit: int = DEFAULT_LIMIT, project: Project = None) -> builtins.list[Message]:
        """Atomically remove and return up to ``limit`` of the oldest eligible messages."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        limit = validation.limit(limit)
        now = self._now()
        return [format_message(message, now) for message in self._pop(queue, project, limit, now)]

    @abc.abstractmethod
    def _post(
        self, queue: str, project: Project, messages: builtins.list[NewMessage], client_uuid: str, now: float
    ) -> builtins.list[str]: ...

    @abc.abstractmethod
    def _bulk_get(
        self, queue: str, project: Project, refs: builtins.list[MessageRef], now: float
    ) -> builtins.list[StoredMessage]:
        """The unexpired messages among ``refs``, in the order of ``refs``. QueueDoesNotExist if absent."""

    @abc.abstractmethod
    def _list(
        self,
        queue: str,
        project: Project,
        after: Position | None,
        limit: int,
        hide_from: str | None,
        include_claimed: bool,
        now: float,
    ) -> tuple[builtins.list[StoredMessage], str]:
        """A page after ``after`` and the next marker, which moves past everything examined."""

    @abc.abstractmethod
    def _delete(
        self, queue: str, project: Project, ref: MessageRef, message_id: str, claim: str | None, now: float
    ) -> None: ...

    @abc.abstractmethod
    def _bulk_delete(self, queue: str, project: Project, refs: builtins.list[MessageRef], now: float) -> None: ...

    @abc.abstractmethod
    def _pop(self, queue: str, project: Project, limit: int, now: float) -> builtins.list[StoredMessage]: ...


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
        claim_id, messages = self._create(queue, project, terms, limit, now)
        return claim_id, [format_message(message, now) for message in messages]

    def get(self, queue: str, claim_id: str, project: Project = None) -> tuple[ClaimInfo, list[Message]]:
        """The live claim and the messages it holds. ClaimDoesNotExist if missing, expired or malformed."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        valid_id = validation.claim_id(claim_id)
        now = self._now()
        found = self._get(queue, project, valid_id, now) if valid_id else None
        if found is None:
            raise ClaimDoesNotExist(claim_id, queue, project)
        claim, messages = found
        info: ClaimInfo = {"id": claim.id, "ttl": claim.ttl, "age": whole_seconds(now - claim.created)}
        return info, [format_message(message, now) for message in messages]

    def update(self, queue: str, claim_id: str, metadata: dict[str, Any], project: Project = None) -> None:
        """Renew the lease to now + ttl, extending its messages' lives as create does."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        valid_id = validation.claim_id(claim_id)
        terms = validation.claim_terms(metadata)
        if not (valid_id and self._update(queue, project, valid_id, terms, self._now())):
            raise ClaimDoesNotExist(claim_id, queue, project)

    def delete(self, queue: str, claim_id: str, project: Project = None) -> None:
        """Release the claim: its messages are eligible again at once. Idempotent."""
        queue, project = validation.queue_name(queue, "queue"), validation.project(project)
        valid_id = validation.claim_id(claim_id)
        if valid_id:
            self._delete(queue, project, valid_id, self._now())

    @abc.abstractmethod
    def _create(
        self, queue: str, project: Project, terms: ClaimTerms, limit: int, now: float
    ) -> tuple[str | None, list[StoredMessage]]: ...

    @abc.abstractmethod
    def _get(
        self, queue: str, project: Project, claim_id: str, now: float
    ) -> tuple[StoredClaim, list[StoredMessage]] | None:
        """The live claim and its messages, or None. QueueDoesNotExist if the queue is absent."""

    @abc.abstractmethod
    def _update(self, queue: str, project: Project, claim_id: str, terms: ClaimTerms, now: float) -> bool:
        """Renew a live claim; False if there is none. QueueDoesNotExist if the queue is absent."""

    @abc.abstractmethod
    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None: ...
