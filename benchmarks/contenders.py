"""Contenders: what is measured, behind one small client interface, and which contenders each backend gets.

A contender is a way to keep the queue's promises on one backend: a marconi **driver**, the backend's **raw
floor** (the least work that keeps the same guarantees, on the same DBAPI and the driver's own tables), or a
**peer** a user of that backend would pick instead (pgmq on PostgreSQL). Each runs behind a :class:`Client`,
opened once in every worker process that plays a role for it.

Adding a contender is a :class:`Client` subclass and one line in :data:`CONTENDERS`, e.g. a peer for Redis::

    Entry("peer", "zaqar", "marconi_benchmarks.peers.zaqar:ZaqarPeer"),

A backend that :data:`CONTENDERS` does not name gets its driver alone, so ``marconi bench <any driver URI>``
measures any installed driver.
"""

from __future__ import annotations

import abc
import builtins
import importlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marconi.storage import DriverBase, load
from marconi.storage.loading import scheme_of
from marconi.storage.tokens import encode_pair

from .roundtrips import RoundTrips

#: Every message of a run lives this long, and every claim a run makes holds this long: nothing expires mid-run.
MESSAGE_TTL = 3600
CLAIM_TTL = 3600
CLAIM_GRACE = 60
#: The project every contender's queues live in (a run's queues also carry the run's own prefix).
PROJECT = "marconi-bench"
CLIENT_UUID = "6f0a2c4e-0000-4000-8000-0000000000be"

#: The operations a client may offer; a workload runs on a contender only if it offers every one it needs.
OPS = frozenset({"post", "list", "claim", "delete", "bulk_delete", "pop"})


@dataclass(frozen=True)
class Item:
    """A message as a client hands it out: its id and its body."""

    id: str
    body: Any


def body(producer: str, seq: int, size: int) -> dict[str, Any]:
    """A body carrying the history value ``(producer, seq)``, padded to about ``size`` bytes of JSON."""
    pad = size - len(producer) - len(str(seq)) - 20  # {"p":"…","s":…,"x":"…"}
    return {"p": producer, "s": seq, "x": "m" * max(0, pad)}


#: The producer name of the messages a deep queue is filled with.
FILLER = "fill"


def fill_body(seq: int, size: int) -> dict[str, Any]:
    return body(FILLER, seq, size)


def page_marker(incarnation: int, start: int, limit: int, positions: builtins.list[int], last_position: int) -> str:
    """The marker after a page read from position ``start``, as the driver's core makes it: the page's last
    position when the page is full; else the queue's last position (a short page examined everything up to it)."""
    end = positions[-1] if len(positions) == limit else max(start, last_position, *positions)
    return encode_pair(incarnation, end)


def encode(body: Any) -> str:
    """A body as the JSON text the SQL driver stores (compact, ASCII)."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


class Client(abc.ABC):
    """One process's handle on a contender. Not thread-safe unless ``threads`` says so.

    ``target`` is the backend's URI, ``prefix`` names what this run creates there (tables, queues), so that runs
    never touch anything else.
    """

    #: The operations this client can run.
    ops: ClassVar[frozenset[str]] = OPS
    #: Clients in several processes on one target share one store (the memory driver's do not).
    multiprocess: ClassVar[bool] = True
    #: ``cleanup`` removes every queue of the run wholesale (dropping tables, say), so a deep queue need not be
    #: deleted message by message first.
    cleanup_removes_queues: ClassVar[bool] = False

    def __init__(self, target: str, prefix: str, **options: Any) -> None:
        self.target = target
        self.prefix = prefix
        self.round_trips = RoundTrips()
        self.counts_round_trips = True
        #: Counts a client keeps of events beyond round trips (a post's conflicts, say), over its whole life.
        self.tallies: dict[str, int] = {}

    # -- once per run, in the orchestrating process ---------------------------------------------------------------

    @classmethod
    def configure(cls, target: str) -> dict[str, Any]:
        """Options every client of this contender in the run gets (a port chosen for its server, say)."""
        return {}

    @classmethod
    def prepare(cls, target: str, prefix: str, **options: Any) -> dict[str, Any]:
        """Create what the run needs on the backend (schema, extension); returns facts for the report."""
        return {}

    @classmethod  # noqa: B027 - most clients have nothing to remove
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        """Remove everything ``prepare`` and the run created. Idempotent."""

    # -- the operations ----------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_queue(self, queue: str) -> None: ...

    @abc.abstractmethod
    def delete_queue(self, queue: str) -> None: ...

    @abc.abstractmethod
    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        """Post the batch atomically, in order; the ids in input order."""

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        """A page after ``marker``, and the marker of the next page."""
        raise NotImplementedError

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        """Lease up to ``limit`` of the oldest eligible messages for CLAIM_TTL seconds."""
        raise NotImplementedError

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        raise NotImplementedError

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        raise NotImplementedError

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        raise NotImplementedError

    def fill(self, queue: str, count: int, held: int, size: int) -> builtins.list[tuple[str, builtins.list[int]]]:
        """Append ``count`` messages carrying ``fill_body(i)``, fast (the backend's bulk path where there is one),
        the first ``held`` of them leased by live claims; returns each holding claim with the ``i`` it holds.
        This default posts batches of 100 and claims 100 at a time."""
        for start in range(0, count, 100):
            self.post(queue, [fill_body(i, size) for i in range(start, min(count, start + 100))])
        holds: builtins.list[tuple[str, builtins.list[int]]] = []
        while held > 0:
            claim_id, items = self.claim(queue, min(100, held))
            if claim_id is None or not items:
                raise RuntimeError(f"could not hold the head of {queue!r}: the claim came back empty")
            holds.append((claim_id, [int(item.body["s"]) for item in items]))
            held -= len(items)
        return holds

    def facts(self) -> dict[str, Any]:
        """The backend's version and durability settings, for the report."""
        return {}

    def close(self) -> None:  # noqa: B027 - clients without connections need not override it
        """Release connections."""


class DriverClient(Client):
    """A marconi driver, loaded by URI (or, with ``driver_class="module:Class"``, that class on the URI); other
    options are the driver's."""

    def __init__(self, target: str, prefix: str, driver_class: str | None = None, **options: Any) -> None:
        super().__init__(target, prefix)
        self.driver = open_driver(target, prefix, driver_class, **options)
        engines = getattr(self.driver, "engines", None)  # the SQL driver's SQLAlchemy engines
        for engine in engines or ():
            self.round_trips.attach_engine(engine)
        if not engines:
            self.counts_round_trips = False
        self.multiprocess_store = "multiprocess" in self.driver.capabilities

    @classmethod
    def prepare(cls, target: str, prefix: str, driver_class: str | None = None, **options: Any) -> dict[str, Any]:
        with open_driver(target, prefix, driver_class) as driver:  # the SQL driver creates its tables here
            return {"driver": driver.name, "capabilities": sorted(driver.capabilities)}

    def create_queue(self, queue: str) -> None:
        self.driver.queue_controller.upsert(queue, {}, project=PROJECT)

    def delete_queue(self, queue: str) -> None:
        self.driver.queue_controller.delete(queue, project=PROJECT)

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        messages = [{"ttl": MESSAGE_TTL, "body": body} for body in bodies]
        return self.driver.message_controller.post(queue, messages, CLIENT_UUID, project=PROJECT)

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        page = self.driver.message_controller.list(
            queue, project=PROJECT, marker=marker, limit=limit, include_claimed=include_claimed
        )
        return [Item(message["id"], message["body"]) for message in page.items], page.marker

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        claim_id, messages = self.driver.claim_controller.create(
            queue, {"ttl": CLAIM_TTL, "grace": CLAIM_GRACE}, project=PROJECT, limit=limit
        )
        return claim_id, [Item(message["id"], message["body"]) for message in messages]

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.driver.message_controller.delete(queue, message_id, project=PROJECT, claim=claim)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        self.driver.message_controller.bulk_delete(queue, message_ids, project=PROJECT, claim=claim)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        messages = self.driver.message_controller.pop(queue, limit, project=PROJECT)
        return [Item(message["id"], message["body"]) for message in messages]

    def close(self) -> None:
        self.driver.close()


def open_driver(target: str, prefix: str, driver_class: str | None = None, **options: Any) -> DriverBase:
    """The driver for ``target``, its tables (where it has any) named with ``prefix``."""
    if driver_class is not None:
        cls: type[DriverBase] = resolve(driver_class)
        return cls(target, **_prefix_option(cls, prefix), **options)
    from marconi.storage.loading import driver_class as installed

    return load(target, **_prefix_option(installed(scheme_of(target)), prefix), **options)


def _prefix_option(cls: type[DriverBase], prefix: str) -> dict[str, Any]:
    """The driver's option that keeps this run's data apart on a shared store (its ``PREFIX_OPTION``)."""
    return {cls.PREFIX_OPTION: prefix} if cls.PREFIX_OPTION else {}


def resolve(path: str) -> Any:
    """``"package.module:Name"`` -> the object."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# --- which contenders each backend gets -----------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One contender of a backend: its role, its name in the table, and its client class ("module:Class")."""

    role: str  # driver | floor | peer
    name: str
    client: str
    options: dict[str, Any] = field(default_factory=dict)


DRIVER = Entry("driver", "", "marconi_benchmarks.contenders:DriverClient")
SQL_DRIVER = Entry("driver", "", "marconi_benchmarks.floors:SQLDriverClient")

#: Backend -> its contenders. The driver's name is the installed driver's own.
CONTENDERS: dict[str, tuple[Entry, ...]] = {
    "memory": (DRIVER,),
    "sqlite": (SQL_DRIVER, Entry("floor", "sqlite3", "marconi_benchmarks.floors.sqlite:SQLiteFloor")),
    "postgresql": (
        SQL_DRIVER,
        Entry("floor", "psycopg", "marconi_benchmarks.floors.postgresql:PostgreSQLFloor"),
        Entry("peer", "pgmq", "marconi_benchmarks.peers.pgmq:PGMQ"),
    ),
    "mysql": (SQL_DRIVER, Entry("floor", "pymysql", "marconi_benchmarks.floors.mysql:MySQLFloor")),
    "redis": (
        Entry("driver", "", "marconi_benchmarks.redis_client:RedisDriverClient"),
        Entry("floor", "redis-py", "marconi_benchmarks.floors.redis:RedisFloor"),
        Entry("peer", "zaqar", "marconi_benchmarks.peers.zaqar:ZaqarPeer"),
    ),
    "mongodb": (
        Entry("driver", "", "marconi_benchmarks.mongodb_client:MongoDriverClient"),
        Entry("floor", "pymongo", "marconi_benchmarks.floors.mongodb:MongoFloor"),
    ),
    # ``http+<driver URI>``: the driver through ``marconi serve``, against the same driver called directly.
    "http": (
        Entry("driver", "http", "marconi_benchmarks.http_client:HTTPClient"),
        Entry("floor", "direct", "marconi_benchmarks.http_client:Direct"),
    ),
}

#: How the table shows each backend.
BACKEND_NAMES = {
    "memory": "memory",
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
    "mysql": "MariaDB",
    "redis": "Redis",
    "mongodb": "MongoDB",
}


def backend_of(uri: str) -> str:
    """The backend a URI names: ``mysql`` for MySQL and MariaDB alike, ``mongodb`` for both MongoDB schemes,
    ``http+<backend>`` for a driver URI behind ``http+``, the scheme for any other."""
    if isinstance(uri, str) and uri.startswith("http+"):
        return "http+" + backend_of(uri.removeprefix("http+"))
    scheme = scheme_of(uri)
    return {"mariadb": "mysql", "mongodb+srv": "mongodb"}.get(scheme, scheme)


def backend_name(backend: str) -> str:
    """How the table shows a backend: ``HTTP/SQLite`` for SQLite served over HTTP."""
    if backend.startswith("http+"):
        return "HTTP/" + backend_name(backend.removeprefix("http+"))
    return BACKEND_NAMES.get(backend, backend)


@dataclass(frozen=True)
class Contender:
    """A contender of a run: picklable, so every worker process opens its own client."""

    name: str
    role: str
    backend: str
    client: str
    target: str
    prefix: str
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}@{backend_name(self.backend)}"

    @property
    def client_class(self) -> type[Client]:
        cls: type[Client] = resolve(self.client)
        return cls

    def open(self) -> Client:
        return self.client_class(self.target, self.prefix, **self.options)


def contenders_for(
    uri: str, prefix: str, roles: frozenset[str] = frozenset({"driver", "floor", "peer"})
) -> builtins.list[Contender]:
    """The contenders measured on the backend at ``uri`` (only those of the given roles)."""
    backend = backend_of(uri)
    found = []
    for entry in CONTENDERS.get("http" if backend.startswith("http+") else backend, (DRIVER,)):
        if entry.role not in roles:
            continue
        name = entry.name or _driver_name(uri)
        found.append(
            Contender(name, entry.role, backend, entry.client, uri, prefix, {**entry.options, **_configure(entry, uri)})
        )
    return found


def _configure(entry: Entry, uri: str) -> dict[str, Any]:
    try:
        cls: type[Client] = resolve(entry.client)
    except ImportError:  # a package the contender needs is missing: its prepare says so, in the report
        return {}
    return cls.configure(uri)


def _driver_name(uri: str) -> str:
    from marconi.storage.loading import driver_class

    return driver_class(scheme_of(uri)).name or scheme_of(uri)


def run_prefix() -> str:
    """A prefix unique to one run: ``mb<8 hex>_`` (a valid table prefix and pgmq queue name start)."""
    return f"mb{uuid.uuid4().hex[:8]}_"
