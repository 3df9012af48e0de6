"""The Redis driver as a contender: round trips counted at redis-py's connections, the run's keys removed after.

A round trip is one write of a connection (``send_packed_command``: one command, or a whole pipeline) followed by
its replies. The run's keys all start with its prefix (the driver's ``key_prefix``), so cleanup deletes exactly
them (on a standalone server, the URI's database).
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


class RedisDriverClient(DriverClient):
    def __init__(self, target: str, prefix: str, driver_class: str | None = None, **options: Any) -> None:
        super().__init__(target, prefix, driver_class, **options)
        _count_writes()
        _counters.append(self.round_trips)
        self.counts_round_trips = True

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        import redis

        client = redis.Redis.from_url(target)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()

    def close(self) -> None:
        if self.round_trips in _counters:
            _counters.remove(self.round_trips)
        super().close()
