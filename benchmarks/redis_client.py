"""The Redis driver as a contender: round trips counted at redis-py's connections, the run's keys removed after.

A round trip is one write of a connection (``send_packed_command``: one command, or a whole pipeline) followed by
its replies. The run's keys all start with its prefix (the driver's ``key_prefix``), so cleanup deletes exactly
them (on a standalone server, the URI's database). The same counting, clean-up and facts serve every contender
on Redis that talks redis-py in this process (the raw floor).
"""

from __future__ import annotations

from typing import Any

from .contenders import DriverClient
from .roundtrips import RoundTrips

_counters: list[RoundTrips] = []  # every Redis client's counter in this process; only the one counting counts


def _count_writes() -> None:
    from redis.connection import AbstractConnection

    if getattr(AbstractConnection.send_packed_command, "_marconi_counted", False):
        return
    original: Any = AbstractConnection.send_packed_command  # untyped in redis-py

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        for counter in _counters:
            counter.tick()
        original(self, command, check_health)

    counted._marconi_counted = True  # type: ignore[attr-defined]
    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def watch(round_trips: RoundTrips) -> None:
    """Count every write of every redis-py connection of this process into ``round_trips`` (while it counts)."""
    _count_writes()
    _counters.append(round_trips)


def unwatch(round_trips: RoundTrips) -> None:
    if round_trips in _counters:
        _counters.remove(round_trips)


def delete_keys(target: str, prefix: str) -> None:
    """Delete every key of the run (those starting with ``prefix:``) in the URI's database."""
    import redis

    client = redis.Redis.from_url(target)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def server_facts(target: str) -> dict[str, Any]:
    """The server's version and durability settings (persistence), for the report."""
    import redis

    client = redis.Redis.from_url(target, decode_responses=True)
    try:
        info = client.info("server")
        settings: dict[str, Any] = {}
        for name in ("appendonly", "appendfsync", "save"):
            settings.update({str(key): value for key, value in client.config_get(name).items()})
        return {"server": f"Redis {info['redis_version']}", "durability": settings}
    finally:
        client.close()


class RedisDriverClient(DriverClient):
    def __init__(self, target: str, prefix: str, driver_class: str | None = None, **options: Any) -> None:
        super().__init__(target, prefix, driver_class, **options)
        watch(self.round_trips)
        self.counts_round_trips = True

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        delete_keys(target, prefix)

    def facts(self) -> dict[str, Any]:
        return server_facts(self.target)

    def close(self) -> None:
        unwatch(self.round_trips)
        super().close()
