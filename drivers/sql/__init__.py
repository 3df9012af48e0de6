"""The SQL driver: the storage contract on SQLite, PostgreSQL and MariaDB/MySQL, through SQLAlchemy Core.

URIs (any SQLAlchemy URL of these backends)::

    sqlite://  sqlite:///:memory:            one in-memory database per driver, shared by its threads
    sqlite:///relative.db  sqlite:////abs.db a file (WAL journal), shared by every process that opens it
    postgresql://  postgresql+psycopg://     PostgreSQL (psycopg 3, or psycopg2 when installed)
    mysql://  mysql+pymysql://  mariadb://  mariadb+pymysql://   MariaDB 10.6+ or MySQL 8 (InnoDB)

Without a named DBAPI the installed one is used (``pip install 'marconi[postgresql]'`` or ``'marconi[mysql]'``).

Capabilities: fifo, observer_once, claims, delay, pop, durable, multiprocess; an in-memory SQLite database is
neither durable nor shared between processes. Options: the core ones (``conflict_timeout`` bounds every lock
wait: a post then raises MessageConflict having written nothing), ``table_prefix`` (default ``marconi_``), and
SQLAlchemy pool options (``pool_size``, ``max_overflow``, ``pool_recycle``, ``pool_timeout``,
``pool_pre_ping``, ``echo``). Query options of the URI go to the DBAPI; only known ones are accepted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marconi.storage import validation
from marconi.storage.base import Capability, DriverBase
from marconi.storage.failures import Failure
from marconi.storage.validation import Option

from . import queues, schema
from .claims import SQLClaims
from .engine import Database
from .messages import SQLMessages
from .queues import SQLQueues

__all__ = ["SQLDriver"]

_GC_CHUNK = 1000  # rows per gc transaction: a backlog never holds locks (or SQLite's write lock) for long
_ENGINE_OPTIONS = ("pool_size", "max_overflow", "pool_recycle", "pool_timeout", "pool_pre_ping", "echo")


class SQLDriver(DriverBase):
    """The storage contract on a SQL database; see the module docstring for URIs and options."""

    name = "sqlalchemy"
    schemes = ("sqlite", "postgresql", "mysql", "mariadb")
    CAPABILITIES = Capability.ALL

    OPTIONS = {
        "table_prefix": Option(schema.table_prefix, "marconi_", "prefix of the driver's table names"),
        "pool_size": Option(validation.whole(1, 10_000), None, "connections kept in the pool"),
        "max_overflow": Option(validation.whole(0, 10_000), None, "connections opened beyond pool_size"),
        "pool_recycle": Option(validation.whole(-1, 10**9), None, "seconds before a pooled connection is renewed"),
        "pool_timeout": Option(validation.positive_seconds, None, "seconds to wait for a pooled connection"),
        "pool_pre_ping": Option(validation.boolean, None, "test each pooled connection before use"),
        "echo": Option(validation.boolean, None, "log every statement (SQLAlchemy's echo)"),
    }

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri, **options)
        # Pool options left unset are SQLAlchemy's to default.
        engine_options = {name: self.options[name] for name in _ENGINE_OPTIONS if self.options[name] is not None}
        self.tables = schema.Tables(self.options["table_prefix"])
        self.database = Database(uri, self.conflict_timeout, **engine_options)
        try:
            self.call(
                f"setup ({self.database.backend})",
                lambda: schema.create(self.database, self.tables),
                idempotent=True,
            )
            self.database.connected()
        except BaseException:
            self.database.close()
            raise
        self._queue_controller = SQLQueues(self)
        self._message_controller = SQLMessages(self)
        self._claim_controller = SQLClaims(self)

    def classify(self, error: BaseException) -> Failure | None:
        return self.database.classify(error)

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for instrumentation; the driver's tables are its own business)."""
        return self.database.engine

    @property
    def capabilities(self) -> frozenset[str]:
        if self.database.in_memory:
            return self.CAPABILITIES - {Capability.DURABLE, Capability.MULTIPROCESS}
        return self.CAPABILITIES

    @property
    def queue_controller(self) -> SQLQueues:
        return self._queue_controller

    @property
    def message_controller(self) -> SQLMessages:
        return self._message_controller

    @property
    def claim_controller(self) -> SQLClaims:
        return self._claim_controller

    def __enter__(self) -> SQLDriver:
        return self

    def close(self) -> None:
        self.database.close()

    def _gc(self, now: float) -> int:
        t = self.tables
        q = t.queues.c
        due = self.database.run(
            lambda connection: list(connection.execute(sa.select(q.id).where(q.next_due <= now)).scalars()),
            write=False,
        )
        for queue_id in due:

            def promote(connection: Connection, queue_id: int = queue_id) -> None:
                queues.promote(connection, t, q.id == queue_id, now)

            self.database.run(promote)
        return self._collect(self._expired_messages, now) + self._collect(self._expired_claims, now)

    def _collect(self, step: Callable[[Connection, float], tuple[int, int]], now: float) -> int:
        """Run ``step`` (one short transaction each) until it finds less than a chunk; the rows removed."""
        removed = 0
        while True:
            deleted, found = self.database.run(lambda connection: step(connection, now))
            removed += deleted
            if found < _GC_CHUNK:
                return removed

    def _expired_messages(self, connection: Connection, now: float) -> tuple[int, int]:
        m = self.tables.messages.c
        found = connection.execute(
            sa.select(m.queue_id, m.number)
            .where(m.expires <= now)
            .order_by(m.expires)
            .limit(_GC_CHUNK)
            .with_for_update(skip_locked=self.database.skip_locked)
        ).all()
        by_queue: dict[int, list[int]] = defaultdict(list)
        for queue_id, number in found:
            by_queue[queue_id].append(number)
        deleted = 0
        for queue_id, numbers in by_queue.items():
            deleted += connection.execute(
                sa.delete(self.tables.messages).where(m.queue_id == queue_id, m.number.in_(numbers), m.expires <= now)
            ).rowcount
        return deleted, len(found)

    def _expired_claims(self, connection: Connection, now: float) -> tuple[int, int]:
        c = self.tables.claims.c
        found = list(
            connection.execute(
                sa.select(c.id)
                .where(c.expires <= now)
                .order_by(c.expires)
                .limit(_GC_CHUNK)
                .with_for_update(skip_locked=self.database.skip_locked)
            ).scalars()
        )
        if not found:
            return 0, 0
        deleted = connection.execute(sa.delete(self.tables.claims).where(c.id.in_(found), c.expires <= now)).rowcount
        return deleted, len(found)
