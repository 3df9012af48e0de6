"""The MongoDB driver as a contender: commands counted by pymongo's command monitoring, the run's collections
dropped after, and the conflicts of its posts tallied.

A round trip is a command pymongo sends (a ``CommandStartedEvent``). A post's conflicts are its attempts beyond
the first: every attempt of a post inserts its batch once, so the ``insert`` commands on the messages collection
a post sends, less one, are the times competing producers made it start again. Both the driver and the raw floor
report them as tallies (``posts``, ``post_retries``), over the whole run, warm-up and timed phase alike.
"""

from __future__ import annotations

import builtins
from typing import Any

from pymongo import MongoClient, monitoring

from .contenders import DriverClient
from .roundtrips import RoundTrips

COLLECTIONS = ("queues", "messages", "claims", "counters")


class Commands(monitoring.CommandListener):
    """Counts the commands pymongo sends: each one a round trip, and the inserts into ``messages`` apart."""

    def __init__(self, round_trips: RoundTrips, messages: str) -> None:
        self.round_trips = round_trips
        self.messages = messages
        self.inserts = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.round_trips.tick()
        if event.command_name == "insert" and event.command.get("insert") == self.messages:
            self.inserts += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def tally_post(tallies: dict[str, int], inserts: int) -> None:
    """Count one post that sent ``inserts`` inserts of its batch."""
    tallies["posts"] = tallies.get("posts", 0) + 1
    tallies["post_retries"] = tallies.get("post_retries", 0) + max(0, inserts - 1)


def drop_collections(target: str, prefix: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(target)
    try:
        database = client.get_default_database("marconi")
        for name in COLLECTIONS:
            database.drop_collection(prefix + name)
    finally:
        client.close()


def server_facts(client: MongoClient[dict[str, Any]]) -> dict[str, Any]:
    """The server's version and the write concern the URI asks for."""
    info = client.admin.command("buildInfo")
    concern = client.write_concern.document or {"w": "server default (1)"}
    return {"server": f"MongoDB wire protocol, version {info.get('version')}", "durability": concern}


class MongoDriverClient(DriverClient):
    def __init__(self, target: str, prefix: str, driver_class: str | None = None, **options: Any) -> None:
        self.commands = Commands(RoundTrips(), f"{prefix}messages")
        super().__init__(target, prefix, driver_class, event_listeners=[self.commands])
        self.commands.round_trips = self.round_trips
        self.counts_round_trips = True

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        drop_collections(target, prefix)

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        before = self.commands.inserts
        try:
            return super().post(queue, bodies)
        finally:
            tally_post(self.tallies, self.commands.inserts - before)

    def facts(self) -> dict[str, Any]:
        driver: Any = self.driver  # a MongoDriver
        return server_facts(driver.client)
