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
from typing import Any

import sqlalchemy as sa

from marconi.storage import validation
from marconi.storage.base import Capability, DriverBase
from marconi.storage.failures import Failure
from marconi.storage.validation import Option

from . import schema
from .claims import SQLClaims
from .engine import Database, Session
from .messages import SQLMessages
from .queues import QueueRow, SQLQueues, promote
from .urls import is_memory, kind_of, resolve

__all__ = ["SQLDriver"]

_GC_CHUNK = 1000  # rows per gc transaction: a backlog never holds locks (or SQLite's write lock) for long
_ENGINE_OPTIONS = ("pool_size", "max_overflow", "pool_recycle", "pool_timeout", "pool_pre_ping", "echo")


#: The condition that hides the caller's own messages from its pages (``:hide``, empty when echo is on). On
#: PostgreSQL the parameter is text: compared as the column's CHAR type, the server re-plans every page.
ECHO = {"postgresql": "client <> CAST(:hide AS TEXT)"}


class SQLDriver(DriverBase):
    """The storage contract on a SQL database; see the module docstring for URIs and options."""

    name = "sqlalchemy"
    schemes = ("sqlite", "postgresql", "mysql", "mariadb")
    CAPABILITIES = Capability.ALL
    PREFIX_OPTION = "table_prefix"
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
        url = resolve(uri)
        kind = kind_of(url.get_backend_name())
        self.tables = schema.Tables(self.options["table_prefix"], kind)
        by_claim_end = f"{self.tables.prefix}messages_queue_claim_expires"
        hint = {"mysql": "FORCE INDEX ({})", "sqlite": "INDEXED BY {}"}.get(kind, "")
        names = {
            "queues": self.tables.queues.name,
            "messages": self.tables.messages.name,
            "claims": self.tables.claims.name,
            "free": self.tables.free,
            "free_hint": hint.format(self.tables.free),
            "free_position": schema.FREE_POSITION.get(kind, "position"),
            "lapsed_hint": hint.format(by_claim_end),
            "echo": ECHO.get(kind, "client <> :hide"),
            "prefix": self.tables.prefix,
        }
        self.database = Database(uri, self.conflict_timeout, names, **engine_options)
        try:
            self.call(
                f"setup ({self.database.backend})",
                lambda: schema.create(self.database, self.tables),
                idempotent=True,
            )
        except BaseException:
            self.database.close()
            raise
        self._memory = is_memory(url)
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
    def engines(self) -> list[sa.Engine]:
        """Every engine whose pool the driver takes connections from (MariaDB/MySQL: a second, for transactions)."""
        return self.database.engines

    @property
    def capabilities(self) -> frozenset[str]:
        if self._memory:
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
        database = self.database
        for (queue_id,) in database.read("due_queues", now=now).rows:

            def promote_queue(session: Session, queue_id: int = queue_id) -> None:
                found = session.run("queue_lock_by_id", queue_id=queue_id).first()
                if found is not None:
                    promote(session, QueueRow.of(found), now)

            database.transaction(promote_queue)
        return self._lapsed_claims(now) + self._expired_messages(now)

    def _lapsed_claims(self, now: float) -> int:
        """Remove claims whose lease ended, and free their messages; one short transaction per chunk."""
        removed = 0
        while True:
            ids = [claim_id for (claim_id,) in self.database.read("lapsed_claim_ids", now=now, limit=_GC_CHUNK).rows]
            if ids:

                def clear(session: Session, ids: list[str] = ids) -> int:
                    session.run("lapsed_messages_clear", claim_ids=ids, now=now)
                    return session.run("claims_remove", claim_ids=ids, now=now).rowcount

                removed += self.database.transaction(clear)
            if len(ids) < _GC_CHUNK:
                return removed

    def _expired_messages(self, now: float) -> int:
        """Remove expired messages, one short transaction per chunk (rows other transactions lock are left for
        the next pass where the backend can skip them)."""
        removed = 0
        while True:

            def chunk(session: Session) -> tuple[int, int]:
                found = session.run("expired_messages", now=now, limit=_GC_CHUNK).rows
                by_queue: dict[int, list[int]] = defaultdict(list)
                for queue_id, number in found:
                    by_queue[int(queue_id)].append(int(number))
                deleted = sum(
                    session.run("expired_remove", queue_id=queue_id, numbers=numbers, now=now).rowcount
                    for queue_id, numbers in by_queue.items()
                )
                return deleted, len(found)

            deleted, found = self.database.transaction(chunk)
            removed += deleted
            if found < _GC_CHUNK:
                return removed
