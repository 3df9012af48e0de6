"""Planted bugs as wrappers around a correct driver: each wrong in one respect, for ``marconi verify`` to catch.

Each function takes a loaded driver and returns it wrapped (``Plan(wrap="marconi.tests.planted:NAME")``); the
wrapper passes every call through to the real driver except the one it gets wrong. They prove the verify
checker can fail (``test_verify_checker.py``), on any URI.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from marconi.storage import BackendError, DriverBase, MessageIsClaimed, Page
from marconi.tests.mutants import TwoStepPost


class _Through:
    """Passes every attribute through to ``inner``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Wrapped(_Through):
    """A driver whose controllers may be replaced by wrappers of the real ones."""

    def __init__(self, inner: DriverBase, messages: Any = None, claims: Any = None, queues: Any = None) -> None:
        super().__init__(inner)
        self.message_controller = messages or inner.message_controller
        self.claim_controller = claims or inner.claim_controller
        self.queue_controller = queues or inner.queue_controller


class _DroppingMessages(_Through):
    def post(self, queue: str, messages: Any, client_uuid: Any, project: Any = None) -> list[str]:
        ids: list[str] = self.inner.post(queue, messages, client_uuid, project=project)
        if len(ids) > 1:
            try:
                self.inner.delete(queue, ids[-1], project=project)
            except MessageIsClaimed:
                pass
        return ids


def drop_message(driver: DriverBase) -> Any:
    """Acknowledges every batch of two or more, and loses its last message."""
    return Wrapped(driver, messages=_DroppingMessages(driver.message_controller))


class _RepeatingMessages(_Through):
    def list(self, queue: str, **options: Any) -> Page[Any]:
        page = self.inner.list(queue, **options)
        items = list(page.items)
        if len(items) > 1:
            items[-1] = items[0]
        return Page(items, page.marker)


def repeat_page_item(driver: DriverBase) -> Any:
    """Ends each page of two or more messages with its first message again (in place of its last)."""
    return Wrapped(driver, messages=_RepeatingMessages(driver.message_controller))


class _ReorderingMessages(_Through):
    def post(self, queue: str, messages: Any, client_uuid: Any, project: Any = None) -> list[str]:
        batch = list(messages)
        if len(batch) < 2:
            result: list[str] = self.inner.post(queue, batch, client_uuid, project=project)
            return result
        half = len(batch) // 2
        second = self.inner.post(queue, batch[half:], client_uuid, project=project)
        first = self.inner.post(queue, batch[:half], client_uuid, project=project)
        return [*first, *second]


def reorder_posts(driver: DriverBase) -> Any:
    """Posts a batch as two posts, its second half first."""
    return Wrapped(driver, messages=_ReorderingMessages(driver.message_controller))


class _GenerousClaims(_Through):
    def __init__(self, inner: Any, messages: Any) -> None:
        super().__init__(inner)
        self.messages = messages

    def create(self, queue: str, metadata: Any, project: Any = None, limit: int = 10) -> tuple[Any, list[Any]]:
        claim_id, taken = self.inner.create(queue, metadata, project=project, limit=limit)
        if claim_id is not None:
            page = self.messages.list(queue, project=project, limit=20, include_claimed=True)
            other = [item for item in page.items if item.get("claim_id") not in (None, claim_id)]
            taken = [*taken, *other[:1]]
        return claim_id, taken


def hand_out_claimed(driver: DriverBase) -> Any:
    """Each claim also hands out a message another live claim holds."""
    return Wrapped(driver, claims=_GenerousClaims(driver.claim_controller, driver.message_controller))


class _ForgetfulDeletes(_Through):
    def delete(self, queue: str, message_id: str, project: Any = None, claim: Any = None) -> None:
        return None  # acknowledged, never done

    def bulk_delete(self, queue: str, message_ids: Any, project: Any = None, claim: Any = None) -> None:
        return None


def ignore_deletes(driver: DriverBase) -> Any:
    """Acknowledges deletes without deleting: the messages come back when their claims lapse."""
    return Wrapped(driver, messages=_ForgetfulDeletes(driver.message_controller))


class _LyingQueues(_Through):
    def stats(self, name: str, project: Any = None) -> dict[str, Any]:
        stats: dict[str, Any] = self.inner.stats(name, project=project)
        counts = stats["messages"]
        counts["total"] += 1
        counts["free"] += 1
        return stats


def miscount_stats(driver: DriverBase) -> Any:
    """Reports one message more than the queue holds."""
    return Wrapped(driver, queues=_LyingQueues(driver.queue_controller))


class _ReconnectingMessages(_Through):
    """Every ``every``-th post "loses its connection" after it was stored (an honest unknown outcome), and the
    reconnect rolls back the message acknowledged before it."""

    def __init__(self, inner: Any, every: int = 25) -> None:
        super().__init__(inner)
        self.every = every
        self.calls = itertools.count(1)
        self.lock = threading.Lock()
        self.last: tuple[str, str, Any] | None = None

    def post(self, queue: str, messages: Any, client_uuid: Any, project: Any = None) -> list[str]:
        ids: list[str] = self.inner.post(queue, messages, client_uuid, project=project)
        with self.lock:
            previous, self.last = self.last, (queue, ids[-1], project)
        if next(self.calls) % self.every == 0:
            if previous is not None:
                try:
                    self.inner.delete(previous[0], previous[1], project=previous[2])
                except MessageIsClaimed:
                    pass
            raise BackendError("post: connection lost; it may or may not have taken effect (planted)")
        return ids


def lose_on_reconnect(driver: DriverBase) -> Any:
    """A reconnect after a lost connection rolls back the last acknowledged post's last message."""
    return Wrapped(driver, messages=_ReconnectingMessages(driver.message_controller))


def reserve_then_insert(driver: DriverBase) -> Any:
    """The memory driver with markers reserved, then inserted after a delay (``mutants.TwoStepPost``)."""
    return TwoStepPost(driver.uri)
