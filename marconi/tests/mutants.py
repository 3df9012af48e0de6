"""Drivers with planted bugs: the reference memory driver, each wrong in one respect.

A checker or a test that cannot fail proves nothing, so the project's own tests run these and expect to be
caught: the history checker (``test_history.py``) and the state machine (``test_state_machine_mutants.py``).
Each is a ``MemoryDriver`` whose controllers override one hook.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from typing import Any

from marconi.storage.hooks import ClaimRequest, Listed, ListRequest, Posted, PostRequest, Rows, StoredClaim
from marconi_drivers.memory import MemoryClaims, MemoryDriver, MemoryMessages, _Message

# --- ordering -----------------------------------------------------------------------------------------------


class _ReversingMessages(MemoryMessages):
    def _post(self, request: PostRequest) -> Posted | None:
        posted: Posted | None = super()._post(replace(request, messages=list(reversed(request.messages))))
        return None if posted is None else Posted(posted.incarnation, list(reversed(posted.numbers)))


class ReversedBatches(MemoryDriver):
    """Stores each batch in reverse order."""

    Messages = _ReversingMessages


class _SkippingMessages(MemoryMessages):
    def _list(self, request: ListRequest) -> Listed | None:
        listed: Listed | None = super()._list(request)
        if listed is None or len(listed.rows) < request.limit:
            return listed
        last = listed.rows[-1]
        assert last.position is not None
        rows = [*listed.rows[:-1], replace(last, position=last.position + 1)]
        return replace(listed, rows=rows)


class SkippingList(MemoryDriver):
    """Reports the last message of each full page one position too far, so the next page skips a message."""

    Messages = _SkippingMessages


class _PageRepeatingMessages(MemoryMessages):
    def _list(self, request: ListRequest) -> Listed | None:
        listed: Listed | None = super()._list(request)
        if listed is None or len(listed.rows) < 2:
            return listed
        return replace(listed, rows=[*listed.rows[:-1], listed.rows[0]])


class RepeatingPage(MemoryDriver):
    """Ends each page of two or more messages with its first message again (in place of its last)."""

    Messages = _PageRepeatingMessages


class _DroppingMessages(MemoryMessages):
    def _post(self, request: PostRequest) -> Posted | None:
        posted: Posted | None = super()._post(request)
        if posted is not None and len(request.messages) > 1:
            with self.driver.lock:
                queue = self.driver.queues[(request.project, request.queue)]
                queue.remove(queue.messages[posted.numbers[-1]])
        return posted


class DroppingPost(MemoryDriver):
    """Acknowledges every batch of two or more but loses its last message."""

    Messages = _DroppingMessages


class _TwoStepMessages(MemoryMessages):
    def _post(self, request: PostRequest) -> Posted | None:
        with self.driver.lock:
            queue = self.driver.queue(request.queue, request.project, request.now)
            if queue is None:
                return None
            reserved = []
            for new in request.messages:
                queue.last_number += 1
                queue.last_position += 1
                reserved.append((new, queue.last_number, queue.last_position))
        time.sleep(random.uniform(0, 0.003))  # another post, or a page, may come in here
        with self.driver.lock:
            for new, number, position in reserved:
                message = _Message(number, request.client, new.body, request.now, new.expires, request.now, position)
                queue.messages[number] = message
                queue.visible[position] = message
            queue.visible = dict(sorted(queue.visible.items()))
            return Posted(queue.incarnation, [number for _, number, _ in reserved])


class TwoStepPost(MemoryDriver):
    """The classic trap: a post reserves its markers, lets go, then inserts (a sequence committing out of order)."""

    Messages = _TwoStepMessages


# --- claims -------------------------------------------------------------------------------------------------


class _GracelessClaims(MemoryClaims):
    def _create(self, request: ClaimRequest) -> Rows | None:
        taken: Rows | None = super()._create(replace(request, message_floor=request.now))
        return taken


class ClaimsWithoutGrace(MemoryDriver):
    """Claims never extend their messages' lives."""

    Claims = _GracelessClaims


class _RacyClaims(MemoryClaims):
    driver: RacyClaims

    def _create(self, request: ClaimRequest) -> Rows | None:
        with self.driver.lock:
            queue = self.driver.queue(request.queue, request.project, request.now)
            if queue is None:
                return None
            chosen = queue.eligible(request.now, request.limit)
        if chosen and not self.driver.interleave.broken:
            try:
                self.driver.interleave.wait(5)
            except threading.BrokenBarrierError:
                pass
            self.driver.interleave.abort()  # only the first two interleave
        with self.driver.lock:
            if chosen:
                queue.claims[request.claim_id] = StoredClaim(request.ttl, request.now, request.expires)
            for message in chosen:
                message.claim_id, message.claim_expires = request.claim_id, request.expires
            taken: Rows = queue.rows(chosen)
            return taken


class RacyClaims(MemoryDriver):
    """Claims check, then act: they pick the eligible messages, let go of the lock, then mark them claimed.

    The first two claims to find something are made to interleave (both pick before either marks), so the race
    happens every time rather than now and then.
    """

    Claims = _RacyClaims

    def __init__(self, uri: str = "memory://", **options: Any) -> None:
        super().__init__(uri, **options)
        self.interleave = threading.Barrier(2)


# --- liveness -----------------------------------------------------------------------------------------------


class _StuckMessages(MemoryMessages):
    def _list(self, request: ListRequest) -> Listed | None:
        Stuck.release.wait(30)
        listed: Listed | None = super()._list(request)
        return listed


class Stuck(MemoryDriver):
    """Listing blocks until ``release`` is set."""

    Messages = _StuckMessages
    release = threading.Event()
