"""Queues of the Redis driver, and the project's queue index beside them.

A queue lives in its own hash slot and the project's index in another, so creating or deleting a queue takes two
steps that are not atomic together. The index is a hint the queue's own keys confirm: creation writes the queue,
then indexes it with its incarnation, never replacing a later one; deletion removes the queue, then its index
entry only while it still names the incarnation removed; listing confirms each entry and drops those whose
queue is gone. So after either call returns the index agrees with the queue, whatever ran between the steps,
and an entry left by a call cut short is never listed (docs/design.md, "Redis driver").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from marconi.storage.base import QueueBase
from marconi.storage.hooks import Project, QueueCounts

from .replies import row

if TYPE_CHECKING:
    import redis

    from . import RedisDriver


class RedisQueues(QueueBase):
    driver: RedisDriver

    def _upsert(self, name: str, metadata: str, project: Project) -> bool:
        created, incarnation = self.write_queue(name, metadata, project)
        self.index(name, incarnation, project)
        return created

    # The steps of create and delete, each atomic on its own slot.

    def write_queue(self, name: str, metadata: str, project: Project) -> tuple[bool, int]:
        """Create the queue with a fresh incarnation, or replace its metadata: (created, its incarnation)."""
        counter = self.driver.keys.incarnations()
        fresh = self.driver.backend.command(counter, "INCR", counter)
        created, incarnation = self.driver.on_queue("queue_upsert", name, project, [fresh, metadata])
        return bool(created), int(incarnation)

    def index(self, name: str, incarnation: int, project: Project) -> None:
        """List the queue in its project's index, unless a later incarnation of it is listed already."""
        self.driver.backend.run("index_add", self.driver.keys.index(project), [name, incarnation])

    def drop_queue(self, name: str, project: Project) -> int | None:
        """Remove the queue with its messages and claims; the incarnation removed, None if there was none."""
        incarnation = self.driver.on_queue("queue_drop", name, project, [])
        return None if incarnation is None else int(incarnation)

    def unindex(self, name: str, incarnation: int, project: Project) -> None:
        """Drop the queue's index entry if it still names ``incarnation`` (known to be gone)."""
        self.driver.backend.run("index_remove", self.driver.keys.index(project), [name, incarnation])

    def _get(self, name: str, project: Project) -> str | None:
        key = self.driver.keys.queue(project, name)[0]
        metadata = self.driver.backend.command(key, "HGET", key, "meta")
        return None if metadata is None else str(metadata)

    def _list(
        self, project: Project, after: str | None, limit: int, detailed: bool
    ) -> Iterable[tuple[str, str | None]]:
        backend, index = self.driver.backend, self.driver.keys.index(project)
        found: list[tuple[str, str | None]] = []
        cursor = after or ""
        while len(found) < limit:
            wanted = limit - len(found)
            flat = backend.run("index_list", index, [cursor, wanted])[0]
            entries = list(zip(flat[::2], flat[1::2], strict=True))
            for (name, indexed), metadata in zip(entries, self._confirm(project, [n for n, _ in entries]), strict=True):
                if metadata is None:  # the queue is gone: forget the entry unless a later incarnation replaced it
                    self.unindex(name, int(indexed), project)
                else:
                    found.append((name, metadata if detailed else None))
            if len(entries) < wanted:
                break
            cursor = entries[-1][0]
        return found

    def _confirm(self, project: Project, names: list[str]) -> list[str | None]:
        """Each queue's metadata, None where it does not exist: one round trip per server holding them."""
        backend, keys = self.driver.backend, self.driver.keys
        by_server: dict[redis.Redis, list[int]] = defaultdict(list)
        commands: list[tuple[Any, ...]] = []
        for at, name in enumerate(names):
            key = keys.queue(project, name)[0]
            commands.append(("HGET", key, "meta"))
            by_server[backend.client_for(key)].append(at)
        metadata: list[str | None] = [None] * len(names)
        for client, ats in by_server.items():
            for at, reply in zip(ats, backend.call(client, *(commands[at] for at in ats)), strict=True):
                metadata[at] = reply
        return metadata

    def _delete(self, name: str, project: Project) -> None:
        incarnation = self.drop_queue(name, project)
        if incarnation is not None:
            self.unindex(name, incarnation, project)

    def _stats(self, name: str, project: Project, now: float) -> QueueCounts | None:
        reply = self.driver.on_queue("stats", name, project, [now])
        if reply is None:
            return None
        incarnation, claimed, free, total, oldest, newest = reply
        return QueueCounts(
            incarnation=int(incarnation),
            claimed=int(claimed),
            free=int(free),
            total=int(total),
            oldest=row(oldest) if oldest else None,
            newest=row(newest) if newest else None,
        )
