"""The in-memory driver: the storage hooks as plain, executable Python.

URI: ``memory://`` (every call to ``load`` makes a new, empty store).
Capabilities: fifo, observer_once, claims, delay, pop. Not durable; not shared between processes.
Options: the core ones only.

One lock guards the whole store, so every hook is atomic and the driver is thread-safe. It is meant to be read
beside ``marconi/storage/base.py``: each hook does only what its docstring there asks. The conformance suite
uses it as the oracle its state-machine test compares real drivers against, and users can use it in their own
unit tests.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from marconi.storage.base import Capability, ClaimBase, DriverBase, MessageBase, QueueBase
from marconi.storage.errors import InvalidInput
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
    Posted,
    PostRequest,
    Project,
    QueueCounts,
    Renewal,
    Row,
    Rows,
    StoredClaim,
)
from marconi.storage.validation import describe


@dataclass
class _Message:
    number: int
    client: str
    body: str
    created: float
    expires: float
    visible_at: float
    position: int | None = None  # taken when the message becomes visible
    claim_id: str | None = None
    claim_expires: float | None = None

    def alive(self, now: float) -> bool:
        return self.expires > now

    def claimed(self, now: float) -> bool:
        return self.claim_expires is not None and self.claim_expires > now

    def eligible(self, now: float) -> bool:
        """Free to be claimed or popped: visible, unexpired, not held by a live claim."""
        return self.position is not None and self.alive(now) and not self.claimed(now)

    def held_by(self, claim_id: str, now: float) -> bool:
        return self.claim_id == claim_id and self.claimed(now) and self.alive(now)

    def row(self) -> Row:
        return Row(self.number, self.body, self.created, self.expires, self.claim_id, self.claim_expires, self.position)


@dataclass
class _Queue:
    incarnation: int
    metadata: str
    last_position: int = 0
    last_number: int = 0
    messages: dict[int, _Message] = field(default_factory=dict)  # by number
    visible: dict[int, _Message] = field(default_factory=dict)  # by position, in position order
    delayed: dict[int, _Message] = field(default_factory=dict)  # by number: those without a position yet
    claims: dict[str, StoredClaim] = field(default_factory=dict)

    def add(self, message: _Message, delayed: bool) -> None:
        self.messages[message.number] = message
        if delayed:
            self.delayed[message.number] = message
        else:
            self.show(message)

    def promote(self, now: float) -> None:
        """Give due delayed messages their positions, in the order they became due."""
        if not self.delayed:
            return
        due = [m for m in self.delayed.values() if m.visible_at <= now and m.alive(now)]
        for message in sorted(due, key=lambda m: (m.visible_at, m.number)):
            del self.delayed[message.number]
            self.show(message)

    def show(self, message: _Message) -> None:
        self.last_position += 1
        message.position = self.last_position
        self.visible[message.position] = message

    def remove(self, message: _Message) -> None:
        del self.messages[message.number]
        if message.position is not None:
            del self.visible[message.position]
        else:
            self.delayed.pop(message.number, None)

    def after(self, position: int) -> Iterator[_Message]:
        """The visible messages after ``position``, in order: from there when that is nearer than the head."""
        if self.last_position - position < len(self.visible):
            for later in range(position + 1, self.last_position + 1):
                if (message := self.visible.get(later)) is not None:
                    yield message
        else:
            yield from (message for at, message in self.visible.items() if at > position)

    def find(self, ref: MessageRef, now: float) -> _Message | None:
        incarnation, number = ref
        message = self.messages.get(number) if incarnation == self.incarnation else None
        return message if message is not None and message.alive(now) else None

    def eligible(self, now: float, limit: int) -> list[_Message]:
        return list(itertools.islice((m for m in self.visible.values() if m.eligible(now)), limit))

    def rows(self, messages: Iterable[_Message]) -> Rows:
        return Rows(self.incarnation, [message.row() for message in messages])


class MemoryQueues(QueueBase):
    driver: MemoryDriver

    def _upsert(self, name: str, metadata: str, project: Project) -> bool:
        with self.driver.lock:
            queue = self.driver.queues.get((project, name))
            if queue is not None:
                queue.metadata = metadata
                return False
            self.driver.queues[(project, name)] = _Queue(next(self.driver.incarnations), metadata)
            return True

    def _get(self, name: str, project: Project) -> str | None:
        with self.driver.lock:
            queue = self.driver.queues.get((project, name))
            return None if queue is None else queue.metadata

    def _list(
        self, project: Project, after: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        with self.driver.lock:
            names = sorted(n for (p, n) in self.driver.queues if p == project and (after is None or n > after))
            return [(n, self.driver.queues[(project, n)].metadata if detailed else None) for n in names[:limit]]

    def _delete(self, name: str, project: Project) -> None:
        with self.driver.lock:
            self.driver.queues.pop((project, name), None)

    def _stats(self, name: str, project: Project, now: float) -> QueueCounts | None:
        with self.driver.lock:
            queue = self.driver.queue(name, project, now)
            if queue is None:
                return None
            alive = [m for m in queue.messages.values() if m.alive(now)]
            ordered = [m for m in queue.visible.values() if m.alive(now)]
            return QueueCounts(
                incarnation=queue.incarnation,
                claimed=sum(m.claimed(now) for m in alive),
                free=sum(m.eligible(now) for m in alive),
                total=len(alive),
                oldest=ordered[0].row() if ordered else None,
                newest=ordered[-1].row() if ordered else None,
            )


class MemoryMessages(MessageBase):
    driver: MemoryDriver

    def _post(self, request: PostRequest) -> Posted | None:
        with self.driver.lock:
            queue = self.driver.queue(request.queue, request.project, request.now)
            if queue is None:
                return None
            numbers = []
            for new in request.messages:
                queue.last_number += 1
                message = _Message(
                    queue.last_number, request.client, new.body, request.now, new.expires, new.visible_at
                )
                queue.add(message, new.delayed)
                numbers.append(message.number)
            return Posted(queue.incarnation, numbers)

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> Rows | None:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            if target is None:
                return None
            return target.rows(m for m in (target.find(ref, now) for ref in refs) if m is not None)

    def _list(self, request: ListRequest) -> Listed | None:
        now = request.now
        with self.driver.lock:
            queue = self.driver.queue(request.queue, request.project, now)
            if queue is None:
                return None
            page: list[_Message] = []
            for message in queue.after(request.after):
                if not message.alive(now) or message.client == request.hide_client:
                    continue
                if message.claimed(now) and not request.include_claimed:
                    continue
                page.append(message)
                if len(page) == request.limit:
                    break
            return Listed(queue.incarnation, [m.row() for m in page], queue.last_position)

    def _delete(self, request: MessageDelete) -> Holder | None:
        now = request.now
        with self.driver.lock:
            queue = self.driver.queues.get((request.project, request.queue))
            message = queue.find(request.ref, now) if queue is not None else None
            if queue is None or message is None:
                return None
            allowed = message.held_by(request.claim_id, now) if request.claim_id else not message.claimed(now)
            if not allowed:
                return Holder(message.claim_id, message.claim_expires)
            queue.remove(message)
            return None

    def _bulk_delete(self, request: BulkDelete) -> BulkDeleted | None:
        now = request.now
        with self.driver.lock:
            queue = self.driver.queues.get((request.project, request.queue))
            if queue is None:
                return None
            found = [m for m in (queue.find(ref, now) for ref in request.refs) if m is not None]
            if request.claim_id is None:
                doomed = [m for m in found if not m.claimed(now)]
            else:
                doomed = [m for m in found if m.held_by(request.claim_id, now)]
            for message in doomed:
                queue.remove(message)
            claim = queue.claims.get(request.claim_id) if request.claim_id else None
            return BulkDeleted(len(doomed), claim is not None and claim.expires > now)

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> Rows | None:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            if target is None:
                return None
            popped = target.eligible(now, limit)
            for message in popped:
                target.remove(message)
            return target.rows(popped)


class MemoryClaims(ClaimBase):
    driver: MemoryDriver

    def _create(self, request: ClaimRequest) -> Rows | None:
        with self.driver.lock:
            queue = self.driver.queue(request.queue, request.project, request.now)
            if queue is None:
                return None
            chosen = queue.eligible(request.now, request.limit)
            if chosen:
                queue.claims[request.claim_id] = StoredClaim(request.ttl, request.now, request.expires)
            for message in chosen:
                message.claim_id, message.claim_expires = request.claim_id, request.expires
                message.expires = max(message.expires, request.message_floor)
            return queue.rows(chosen)

    def _get(self, queue: str, project: Project, claim_id: str, now: float) -> ClaimRead | None:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            if target is None:
                return None
            claim = target.claims.get(claim_id)
            if claim is None or not claim.expires > now:
                return ClaimRead(target.incarnation, None)
            held = [m.row() for m in target.visible.values() if m.held_by(claim_id, now)]
            return ClaimRead(target.incarnation, claim, held)

    def _update(self, request: Renewal) -> bool | None:
        now = request.now
        with self.driver.lock:
            queue = self.driver.queue(request.queue, request.project, now)
            if queue is None:
                return None
            claim = queue.claims.get(request.claim_id)
            if claim is None or not claim.expires > now:
                return False
            queue.claims[request.claim_id] = StoredClaim(request.ttl, claim.created, request.expires)
            for message in queue.visible.values():
                if message.held_by(request.claim_id, now):
                    message.claim_expires = request.expires
                    message.expires = max(message.expires, request.message_floor)
            return True

    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        with self.driver.lock:
            target = self.driver.queues.get((project, queue))
            if target is None or target.claims.pop(claim_id, None) is None:
                return
            for message in target.messages.values():
                if message.claim_id == claim_id:
                    message.claim_id = message.claim_expires = None


class MemoryDriver(DriverBase):
    name = "memory"
    schemes = ("memory",)
    CAPABILITIES = frozenset(
        {Capability.FIFO, Capability.OBSERVER_ONCE, Capability.CLAIMS, Capability.DELAY, Capability.POP}
    )
    #: The controller classes: a subclass changes one of them to change one controller's hooks.
    Queues: type[MemoryQueues] = MemoryQueues
    Messages: type[MemoryMessages] = MemoryMessages
    Claims: type[MemoryClaims] = MemoryClaims

    def __init__(self, uri: str = "memory://", **options: Any) -> None:
        super().__init__(uri, **options)
        if uri.split("://", 1)[1:] != [""]:
            raise InvalidInput("uri", f"a memory store takes nothing after memory://, got {describe(uri)}")
        self.lock = threading.RLock()
        self.queues: dict[tuple[Project, str], _Queue] = {}
        self.incarnations = itertools.count(1)
        self._queue_controller = self.Queues(self)
        self._message_controller = self.Messages(self)
        self._claim_controller = self.Claims(self)

    @property
    def queue_controller(self) -> MemoryQueues:
        return self._queue_controller

    @property
    def message_controller(self) -> MemoryMessages:
        return self._message_controller

    @property
    def claim_controller(self) -> MemoryClaims:
        return self._claim_controller

    def queue(self, name: str, project: Project, now: float) -> _Queue | None:
        """The queue with due delayed messages promoted, or None. Call with the lock held."""
        queue = self.queues.get((project, name))
        if queue is not None:
            queue.promote(now)
        return queue

    def _gc(self, now: float) -> int:
        removed = 0
        with self.lock:
            for queue in self.queues.values():
                queue.promote(now)
                for message in [m for m in queue.messages.values() if not m.alive(now)]:
                    queue.remove(message)
                    removed += 1
                for claim_id in [i for i, claim in queue.claims.items() if not claim.expires > now]:
                    del queue.claims[claim_id]
                    removed += 1
        return removed
