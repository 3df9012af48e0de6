"""Fixtures of the MongoDB driver's own tests. Each module is marked ``driver("mongodb")``, so the tests run on
each ``--marconi-uri`` the MongoDB driver serves (the SecantusDB that ``make test`` starts, or a real mongod
named by ``$MARCONI_MONGODB_URI``) and are deselected on the others."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from pymongo import monitoring

from marconi.storage import ManualClock, load
from marconi.storage.loading import driver_class

if TYPE_CHECKING:
    from .. import MongoDriver

#: The driver class as the entry point installs it (``marconi_drivers.mongodb``).
MONGO_DRIVER = cast("type[MongoDriver]", driver_class("mongodb"))
STUCK_GUARD = 60.0  # seconds before a test gives up waiting for a state it expects; never asserted on


def open_driver(uri: str, **options: Any) -> MongoDriver:
    driver = load(uri, **options)
    assert isinstance(driver, MONGO_DRIVER)
    return driver


@pytest.fixture
def mongo_uri(marconi_uri: str) -> str:
    """The URI under test: always one the MongoDB driver serves (the modules' ``driver`` marker sees to it)."""
    return marconi_uri


@pytest.fixture
def project() -> str:
    return f"mongotest-{uuid.uuid4().hex[:12]}"


def fresh_clock() -> ManualClock:
    """A clock the test moves, starting at the real time: messages' TTL dates then lie in the future, where the
    server's TTL monitor leaves them alone (a clock set in the past let it reap a test's messages mid-test)."""
    return ManualClock(float(int(time.time())))


@pytest.fixture
def clock() -> ManualClock:
    return fresh_clock()


def empty_project(driver: MongoDriver, project: str) -> None:
    for entry in driver.queue_controller.list(project=project, limit=100).items:
        driver.queue_controller.delete(entry["name"], project=project)


@pytest.fixture
def driver(mongo_uri: str, clock: ManualClock, project: str) -> Iterator[MongoDriver]:
    """A driver on the URI with a ManualClock; the test's project is emptied afterwards."""
    with open_driver(mongo_uri, clock=clock) as opened:
        yield opened
        empty_project(opened, project)


def post(driver: MongoDriver, queue: str, project: str, bodies: list[Any], ttl: int = 600) -> list[str]:
    batch = [{"ttl": ttl, "body": body} for body in bodies]
    return driver.message_controller.post(queue, batch, str(uuid.uuid4()), project=project)


class Commands(monitoring.CommandListener):
    """Every command a client sends (name and collection, in order), and a hook run on each success."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failures: list[tuple[str, Any]] = []
        self.on_success: Callable[[monitoring.CommandSucceededEvent, str], None] | None = None
        self.collections: dict[int, str] = {}
        self.on_start: Callable[[monitoring.CommandStartedEvent], None] | None = None
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        with self.lock:
            name = collection if isinstance(collection, str) else ""
            self.sent.append((event.command_name, name))
            self.collections[event.request_id] = name
        if self.on_start is not None:
            self.on_start(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        reply = event.reply
        if reply.get("writeErrors"):
            with self.lock:
                self.failures.append((event.command_name, reply["writeErrors"][0].get("code")))
        with self.lock:
            collection = self.collections.pop(event.request_id, "")
        if self.on_success is not None:
            self.on_success(event, collection)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        with self.lock:
            self.collections.pop(event.request_id, None)
            self.failures.append((event.command_name, getattr(event, "failure", {}).get("code")))

    def clear(self) -> list[tuple[str, str]]:
        with self.lock:
            sent, self.sent = self.sent, []
            return sent
