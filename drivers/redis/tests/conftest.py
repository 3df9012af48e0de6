"""Fixtures of the Redis driver's own tests. Each module is marked ``driver("redis")``, so its tests run on each
``--marconi-uri`` the Redis driver serves and are deselected on the others.

Tests marked ``own_servers`` start the servers they need (a server with AOF, a cluster with replicas) and use
the URI under test only to run once per Redis URI; a run on a cluster deselects them with ``-m "not own_servers"``
(the Makefile does), so they do not run twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from redis.connection import AbstractConnection

from marconi.storage import ManualClock, load
from marconi.storage.loading import driver_class
from marconi.tests import servers

if TYPE_CHECKING:
    from .. import RedisDriver

#: The driver class as the entry point installs it (``marconi_drivers.redis``).
REDIS_DRIVER = cast("type[RedisDriver]", driver_class("redis"))
CLIENT = "6f0a2c4e-0000-4000-8000-00000000c1e7"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "own_servers: starts the Redis servers it needs; run once, not per cluster")


@pytest.fixture(scope="module")
def own_server() -> Iterator[servers.Server]:
    """A redis-server of the module's own (no persistence), which its tests may flush."""
    with servers.scratch_directory("redis-own") as directory:
        server = servers.redis_server(directory).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_uri(marconi_uri: str) -> str:
    """The URI under test: always one the Redis driver serves (the modules' ``driver`` marker sees to it)."""
    return marconi_uri


@pytest.fixture
def project() -> str:
    return f"redistest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


def open_driver(uri: str, **options: Any) -> RedisDriver:
    driver = load(uri, **options)
    assert isinstance(driver, REDIS_DRIVER)
    return driver


def empty(driver: RedisDriver, project: str | None) -> None:
    """Delete every queue of ``project``."""
    while names := [entry["name"] for entry in driver.queue_controller.list(project=project, limit=100).items]:
        for name in names:
            driver.queue_controller.delete(name, project=project)


@pytest.fixture
def driver(redis_uri: str, clock: ManualClock, project: str) -> Iterator[RedisDriver]:
    """A driver on the URI with a ManualClock; the test's project is emptied afterwards."""
    with open_driver(redis_uri, clock=clock) as opened:
        yield opened
        empty(opened, project)


def post(driver: RedisDriver, queue: str, project: str | None, n: int, ttl: int = 300, **extra: Any) -> list[str]:
    batch = [{"ttl": ttl, "body": {"n": i}, **extra} for i in range(n)]
    return driver.message_controller.post(queue, batch, CLIENT, project=project)


class Sends:
    """Every write redis-py makes to a server (one per round trip: a pipeline is one write), while counting."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def __len__(self) -> int:
        return len(self.writes)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Sends:
    """Count the writes of every redis-py connection (``send_packed_command``), with what each carried."""
    seen = Sends()
    original = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        parts = [command] if isinstance(command, (bytes, str)) else list(command)
        text = b"".join(part if isinstance(part, bytes) else str(part).encode() for part in parts)
        seen.writes.append(" ".join(text.decode(errors="replace").split("\r\n")[2::2])[:160])
        original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return seen
