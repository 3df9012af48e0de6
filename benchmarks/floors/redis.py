"""The raw floor on Redis: redis-py and one short Lua script per operation (``redis.lua``), on the Redis driver's
own keys and encodings, so the driver reads what the floor wrote and the other way round.

Each operation is one EVALSHA, one round trip, as in the driver; the floor's scripts keep the same guarantees
with less work: a post moves both counters with HINCRBY and writes the batch with one variadic command per hash
and index (markers follow commit order: the script is atomic); a page reads its index range and then the states
and bodies with one HMGET each; a claim and a pop take the oldest eligible messages with ZPOPMIN; a delete checks
the claim in the message's state and removes it from the indexes it can be in. What the floor does not do: delayed
messages (it posts none and expects none due), hidden clients, and a Redis Cluster (one server only).
"""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

import redis

from marconi.storage.tokens import decode_pair, encode_pair, new_claim_id

from ..contenders import CLAIM_GRACE, CLAIM_TTL, CLIENT_UUID, MESSAGE_TTL, PROJECT, Client, Item, encode, page_marker
from ..redis_client import delete_keys, server_facts, unwatch, watch
from . import QueueMissing, named

#: The keys each script takes, by their suffix in the driver's ``QUEUE_KEYS`` (``page`` puts its index fourth).
SCRIPT_KEYS = {
    "post": ("q", "b", "s", "v", "e", "x"),
    "claim": ("q", "b", "s", "e", "c", "x", "h", "k"),
    "delete": ("q", "b", "s", "v", "e", "c", "x"),
    "pop": ("q", "b", "s", "v", "e", "c", "x"),
}


def scripts() -> dict[str, str]:
    """The floor's scripts by name, each with the shared ``lib`` before it."""
    sections = named("redis.lua")
    lib = sections.pop("lib")
    return {name: f"{lib}\n{text}" for name, text in sections.items()}


class RedisFloor(Client):
    def __init__(self, target: str, prefix: str, **options: Any) -> None:
        super().__init__(target, prefix)
        from marconi_drivers.redis.keys import QUEUE_KEYS, Keys

        self.keys = Keys(prefix)
        self.suffixes = QUEUE_KEYS
        self.client = redis.Redis.from_url(target, decode_responses=True, protocol=2)
        self.scripts = {name: self.client.register_script(text) for name, text in scripts().items()}
        self._queue_keys: dict[str, dict[str, str]] = {}
        watch(self.round_trips)

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        delete_keys(target, prefix)

    def queue_keys(self, queue: str) -> dict[str, str]:
        found = self._queue_keys.get(queue)
        if found is None:
            found = self._queue_keys[queue] = dict(zip(self.suffixes, self.keys.queue(PROJECT, queue), strict=True))
        return found

    def run(self, script: str, queue: str, args: builtins.list[Any], keys: tuple[str, ...] | None = None) -> Any:
        found = self.queue_keys(queue)
        return self.scripts[script](keys=[found[suffix] for suffix in keys or SCRIPT_KEYS[script]], args=args)

    # -- queues (not measured) ---------------------------------------------------------------------------------

    def create_queue(self, queue: str) -> None:
        counter = self.keys.incarnations()
        incarnation = self.run("create_queue", queue, [self.client.incr(counter)], ("q",))
        self.scripts["index"](keys=self.keys.index(PROJECT), args=[queue, incarnation, 1])

    def delete_queue(self, queue: str) -> None:
        incarnation = self.run("drop_queue", queue, [], self.suffixes)
        if incarnation is not None:
            self.scripts["index"](keys=self.keys.index(PROJECT), args=[queue, incarnation, 0])

    # -- the operations ----------------------------------------------------------------------------------------

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        now = time.time()
        args: builtins.list[Any] = [now, CLIENT_UUID]
        for body in bodies:
            args += (encode(body), now + MESSAGE_TTL)
        reply = self.run("post", queue, args)
        if reply is None:
            raise QueueMissing(queue)
        incarnation, first = int(reply[0]), int(reply[1])
        return [encode_pair(incarnation, first + i) for i in range(len(bodies))]

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        after = decode_pair(marker) if marker is not None else None
        index = "v" if include_claimed else "e"
        args = [time.time(), after[1] if after else 0, limit, int(include_claimed), after[0] if after else ""]
        reply = self.run("page", queue, args, ("q", "b", "s", index, "e", "c"))
        if reply is None:
            raise QueueMissing(queue)
        incarnation, last_position, start = int(reply[0]), int(reply[1]), int(reply[2])
        rows = reply[3:]
        items = [Item(encode_pair(incarnation, int(rows[i])), json.loads(rows[i + 1])) for i in range(0, len(rows), 3)]
        positions = [int(position) for position in rows[2::3]]
        return items, page_marker(incarnation, start, limit, positions, last_position)

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        now, claim_id = time.time(), new_claim_id()
        args = [now, claim_id, CLAIM_TTL, now + CLAIM_TTL, now + CLAIM_TTL + CLAIM_GRACE, limit]
        items = self.taken(queue, self.run("claim", queue, args))
        return (claim_id if items else None), items

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.bulk_delete(queue, [message_id], claim)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        refs = [ref for ref in map(decode_pair, message_ids) if ref is not None]
        if refs:
            incarnation = refs[0][0]
            numbers = [number for of, number in refs if of == incarnation]
            self.run("delete", queue, [time.time(), claim or "", incarnation, *numbers])

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        return self.taken(queue, self.run("pop", queue, [time.time(), limit]))

    @staticmethod
    def taken(queue: str, reply: Any) -> builtins.list[Item]:
        """The messages of a claim's or pop's reply ``{incarnation, then number, body, position each}``."""
        if reply is None:
            raise QueueMissing(queue)
        incarnation, rows = int(reply[0]), reply[1:]
        return [Item(encode_pair(incarnation, int(rows[i])), json.loads(rows[i + 1])) for i in range(0, len(rows), 3)]

    def facts(self) -> dict[str, Any]:
        return server_facts(self.target)

    def close(self) -> None:
        unwatch(self.round_trips)
        self.client.close()
