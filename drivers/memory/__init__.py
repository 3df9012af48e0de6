"""The in-memory driver: the storage contract as plain, executable Python.

URI: ``memory://`` (every call to ``load`` makes a new, empty store).
Capabilities: fifo, observer_once, claims, delay, pop. Not durable; not shared between processes.

One lock guards the whole store, so every call is atomic and the driver is thread-safe. It is meant to be read:
the conformance suite uses it as the oracle its state-machine test compares real drivers against, and users can
use it in their own unit tests.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from marconi.storage import tokens
from marconi.storage.base import (
    DEFAULT_GC_INTERVAL,
    Capability,
    ClaimBase,
    DriverBase,
    MessageBase,
    MessageRef,
    Position,
    Project,
    QueueBase,
    QueueCounts,
    StoredClaim,
    StoredMessage,
)
from marconi.storage.clock import Clock
from marconi.storage.errors import MessageIsClaimed, MessageNotClaimedBy, QueueDoesNotExist
from marconi.storage.validation import ClaimTerms, Limits, NewMessage


@dataclass
class _Claim:
    id: str
    ttl: int
    created: float
    expires: float

    def live(self, now: float) -> bool:
        return self.expires > now


@dataclass
class _Message:
    number: int
    id: str
    client: str
    body: str
    created: float
    expires: float
    visible_at: float
    position: int | None = None  # taken when the message becomes visible
    claim: _Claim | None = None

    def alive(self, now: float) -> bool:
        return self.expires > now

    def claimed(self, now: float) -> bool:
        return self.claim is not None and self.claim.live(now)

    def eligible(self, now: float) -> bool:
        """Free to be claimed or popped: visible, unexpired, not held by a live claim."""
        return self.position is not None and self.alive(now) and not self.claimed(now)

    def stored(self, now: float) -> StoredMessage:
        claim_id = self.claim.id if self.claim is not None and self.claim.live(now) else None
        return StoredMessage(self.id, self.body, self.created, self.expires, claim_id)


@dataclass
class _Queue:
    incarnation: int
    metadata: str
    last_position: int = 0
    last_number: int = 0
    messages: dict[int, _Message] = field(default_factory=dict)  # by number
    visible: dict[int, _Message] = field(default_factory=dict)  # by position, in position order
    claims: dict[str, _Claim] = field(default_factory=dict)

    def promote(self, now: float) -> None:
        """Give due delayed messages their positions, in the order they became due."""
        due = [m for m in self.messages.values() if m.position is None and m.visible_at <= now and m.alive(now)]
        for message in sorted(due, key=lambda m: (m.visible_at, m.number)):
            self.last_position += 1
            message.position = self.last_position
            self.visible[message.position] = message

    def remove(self, message: _Message) -> None:
        del self.messages[message.number]
        if message.position is not None:
            del self.visible[message.position]

    def find(self, ref: MessageRef, now: float) -> _Message | None:
        incarnation, number = ref
        message = self.messages.get(number) if incarnation == self.incarnation else None
        return message if message is not None and message.alive(now) else None

    def eligible(self, now: float, limit: int) -> list[_Message]:
        return list(itertools.islice((m for m in self.visible.values() if m.eligible(now)), limit))

    def held_by(self, claim: _Claim, now: float) -> list[_Message]:
        return [m for m in self.visible.values() if m.claim is claim and m.alive(now)]


class MemoryDriver(DriverBase):
    name = "memory"
    schemes = ("memory",)
    CAPABILITIES = frozenset(
        {Capability.FIFO, Capability.OBSERVER_ONCE, Capability.CLAIMS, Capability.DELAY, Capability.POP}
    )

    def __init__(
        self,
        uri: str = "memory://",
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        gc_interval: float = DEFAULT_GC_INTERVAL,
    ) -> None:
        super().__init__(uri, clock=clock, limits=limits, gc_interval=gc_interval)
        self.lock = threading.RLock()
        self.queues: dict[tuple[Project, str], _Queue] = {}
        self.incarnations = itertools.count(1)
        self._queue_controller = MemoryQueues(self)
        self._message_controller = MemoryMessages(self)
        self._claim_controller = MemoryClaims(self)

    @property
    def queue_controller(self) -> MemoryQueues:
        return self._queue_controller

    @property
    def message_controller(self) -> MemoryMessages:
        return self._message_controller

    @property
    def claim_controller(self) -> MemoryClaims:
        return self._claim_controller

    def queue(self, name: str, project: Project, now: float) -> _Queue:
        """The queue, with due delayed messages promoted. QueueDoesNotExist if absent."""
        queue = self.queues.get((project, name))
        if queue is None:
            raise QueueDoesNotExist(name, project)
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
                for claim in [c for c in queue.claims.values() if not c.live(now)]:
                    del queue.claims[claim.id]
                    removed += 1
                for message in queue.messages.values():
                    if message.claim is not None and not message.claim.live(now):
                        message.claim = None
        return removed


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

    def _get(self, name: str, project: Project) -> str:
        with self.driver.lock:
            queue = self.driver.queues.get((project, name))
            if queue is None:
                raise QueueDoesNotExist(name, project)
            return queue.metadata

    def _list(
        self, project: Project, marker: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        with self.driver.lock:
            names = sorted(
                name for (owner, name) in self.driver.queues if owner == project and (marker is None or name > marker)
            )[:limit]
            return [(name, self.driver.queues[(project, name)].metadata if detailed else None) for name in names]

    def _delete(self, name: str, project: Project) -> None:
        with self.driver.lock:
            self.driver.queues.pop((project, name), None)

    def _stats(self, name: str, project: Project, now: float) -> QueueCounts:
        with self.driver.lock:
            queue = self.driver.queue(name, project, now)
            alive = [m for m in queue.messages.values() if m.alive(now)]
            ordered = [m for m in queue.visible.values() if m.alive(now)]
            return QueueCounts(
                claimed=sum(m.claimed(now) for m in alive),
                free=sum(m.eligible(now) for m in alive),
                total=len(alive),
                oldest=ordered[0].stored(now) if ordered else None,
                newest=ordered[-1].stored(now) if ordered else None,
            )


class MemoryMessages(MessageBase):
    driver: MemoryDriver

    def _post(
        self, queue: str, project: Project, messages: list[NewMessage], client_uuid: str, now: float
    ) -> list[str]:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            ids = []
            for new in messages:
                target.last_number += 1
                message = _Message(
                    number=target.last_number,
                    id=tokens.encode_pair(target.incarnation, target.last_number),
                    client=client_uuid,
                    body=new.body,
                    created=now,
                    expires=now + new.ttl,
                    visible_at=now + new.delay,
                )
                target.messages[message.number] = message
                if new.delay == 0:
                    target.last_position += 1
                    message.position = target.last_position
                    target.visible[message.position] = message
                ids.append(message.id)
            return ids

    def _bulk_get(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> list[StoredMessage]:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            found = (target.find(ref, now) for ref in refs)
            return [message.stored(now) for message in found if message is not None]

    def _list(
        self,
        queue: str,
        project: Project,
        after: Position | None,
        limit: int,
        hide_from: str | None,
        include_claimed: bool,
        now: float,
    ) -> tuple[list[StoredMessage], str]:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            start = after[1] if after is not None and after[0] == target.incarnation else 0
            page: list[_Message] = []
            for position, message in target.visible.items():
                if position <= start or not message.alive(now) or message.client == hide_from:
                    continue
                if message.claimed(now) and not include_claimed:
                    continue
                page.append(message)
                if len(page) == limit:
                    break
            # A full page ends at its last message; a short one has examined the whole queue.
            end = page[-1].position if len(page) == limit else max(start, target.last_position)
            assert end is not None
            return [m.stored(now) for m in page], tokens.encode_pair(target.incarnation, end)

    def _delete(
        self, queue: str, project: Project, ref: MessageRef, message_id: str, claim: str | None, now: float
    ) -> None:
        with self.driver.lock:
            target = self.driver.queues.get((project, queue))
            message = target.find(ref, now) if target is not None else None
            if target is None or message is None:
                return
            holder = message.claim.id if message.claim is not None and message.claim.live(now) else None
            if holder is not None and claim is None:
                raise MessageIsClaimed(message_id)
            if claim is not None and claim != holder:
                raise MessageNotClaimedBy(message_id, claim)
            target.remove(message)

    def _bulk_delete(self, queue: str, project: Project, refs: list[MessageRef], now: float) -> None:
        with self.driver.lock:
            target = self.driver.queues.get((project, queue))
            if target is None:
                return
            for ref in refs:
                message = target.find(ref, now)
                if message is not None and not message.claimed(now):
                    target.remove(message)

    def _pop(self, queue: str, project: Project, limit: int, now: float) -> list[StoredMessage]:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            popped = target.eligible(now, limit)
            for message in popped:
                target.remove(message)
            return [message.stored(now) for message in popped]


class MemoryClaims(ClaimBase):
    driver: MemoryDriver

    def _create(
        self, queue: str, project: Project, terms: ClaimTerms, limit: int, now: float
    ) -> tuple[str | None, list[StoredMessage]]:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            chosen = target.eligible(now, limit)
            if not chosen:
                return None, []
            claim = _Claim(tokens.new_claim_id(), terms.ttl, now, now + terms.ttl)
            target.claims[claim.id] = claim
            for message in chosen:
                message.claim = claim
                message.expires = max(message.expires, claim.expires + terms.grace)
            return claim.id, [message.stored(now) for message in chosen]

    def _get(
        self, queue: str, project: Project, claim_id: str, now: float
    ) -> tuple[StoredClaim, list[StoredMessage]] | None:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            claim = target.claims.get(claim_id)
            if claim is None or not claim.live(now):
                return None
            held = [message.stored(now) for message in target.held_by(claim, now)]
            return StoredClaim(claim.id, claim.ttl, claim.created), held

    def _update(self, queue: str, project: Project, claim_id: str, terms: ClaimTerms, now: float) -> bool:
        with self.driver.lock:
            target = self.driver.queue(queue, project, now)
            claim = target.claims.get(claim_id)
            if claim is None or not claim.live(now):
                return False
            claim.ttl, claim.expires = terms.ttl, now + terms.ttl
            for message in target.held_by(claim, now):
                message.expires = max(message.expires, claim.expires + terms.grace)
            return True

    def _delete(self, queue: str, project: Project, claim_id: str, now: float) -> None:
        with self.driver.lock:
            target = self.driver.queues.get((project, queue))
            claim = target.claims.pop(claim_id, None) if target is not None else None
            if target is None or claim is None:
                return
            for message in target.messages.values():
                if message.claim is claim:
                    message.claim = None
