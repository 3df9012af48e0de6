"""The SQL driver: the storage contract on SQLite, PostgreSQL and MariaDB/MySQL, through SQLAlchemy Core.

URIs (any SQLAlchemy URL of these backends)::

    sqlite://  sqlite:///:memory:            one in-memory database per driver, shared by its threads
    sqlite:///relative.db  sqlite:////abs.db a file (WAL journal), shared by every process that opens it
    postgresql://  postgresql+psycopg://     PostgreSQL (psycopg 3, or psycopg2 when installed)
    mysql://  mysql+pymysql://  mariadb://  mariadb+pymysql://   MariaDB 10.6+ or MySQL 8 (InnoDB)

Without a named DBAPI the installed one is used (``pip install 'marconi[postgresql]'`` or ``'marconi[mysql]'``).

Capabilities: fifo, observer_once, claims, delay, pop, durable, multiprocess; an in-memory SQLite database is
neither durable nor shared between processes. Options: ``conflict_timeout`` (seconds, default 10: how long a
call waits for locks; a post then raises MessageConflict having written nothing), ``table_prefix`` (default
``marconi_``), and SQLAlchemy pool options (``pool_size``, ``max_overflow``, ``pool_recycle``, ``echo``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from marconi.storage.base import DEFAULT_GC_INTERVAL, Capability, DriverBase
from marconi.storage.clock import Clock
from marconi.storage.errors import BackendError, InvalidInput
from marconi.storage.validation import Limits

from . import queues, schema
from .claims import SQLClaims
from .engine import Database
from .messages import SQLMessages
from .queues import SQLQueues

__all__ = ["SQLDriver"]

DEFAULT_CONFLICT_TIMEOUT = 10.0
_ENGINE_OPTIONS = frozenset({"pool_size", "max_overflow", "pool_recycle", "pool_timeout", "pool_pre_ping", "echo"})


class SQLDriver(DriverBase):
    """The storage contract on a SQL database; see the module docstring for URIs and options."""

    name = "sqlalchemy"
    schemes = ("sqlite", "postgresql", "mysql", "mariadb")
    CAPABILITIES = Capability.ALL

    def __init__(
        self,
        uri: str,
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        gc_interval: float = DEFAULT_GC_INTERVAL,
        conflict_timeout: float = DEFAULT_CONFLICT_TIMEOUT,
        table_prefix: str = "marconi_",
        **engine_options: Any,
    ) -> None:
        super().__init__(uri, clock=clock, limits=limits, gc_interval=gc_interval)
        if isinstance(conflict_timeout, bool) or not isinstance(conflict_timeout, (int, float)):
            raise InvalidInput("conflict_timeout", f"must be a number of seconds, got {conflict_timeout!r}")
        if not 0 < conflict_timeout <= 86_400:
            raise InvalidInput(
                "conflict_timeout", f"must be more than 0 and at most 86400 seconds, got {conflict_timeout}"
            )
        unknown = set(engine_options) - _ENGINE_OPTIONS
        if unknown:
            raise InvalidInput("options", f"unknown SQL driver options {sorted(unknown)}")
        self.tables = schema.Tables(table_prefix)
        self.database = Database(uri, float(conflict_timeout), **engine_options)
        try:
            schema.create(self.database.engine, self.tables)
            self.database.connected()
        except exc.SQLAlchemyError as error:
            self.database.close()
            raise BackendError(f"cannot prepare the {self.database.backend} schema: {error}") from error
        except BaseException:
            self.database.close()
            raise
        self._queue_controller = SQLQueues(self)
        self._message_controller = SQLMessages(self)
        self._claim_controller = SQLClaims(self)

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
        q, m, c = t.queues.c, t.messages.c, t.claims.c
        due = self.database.run(
            lambda connection: list(connection.execute(sa.select(q.id).where(q.next_due <= now)).scalars()),
            write=False,
        )
        for queue_id in due:

            def promote(connection: Connection, queue_id: int = queue_id) -> None:
                queues.promote(connection, t, q.id == queue_id, now)

            self.database.run(promote)
        removed: int = self.database.run(
            lambda connection: connection.execute(sa.delete(t.messages).where(m.expires <= now)).rowcount
        )
        removed += self.database.run(
            lambda connection: connection.execute(sa.delete(t.claims).where(c.expires <= now)).rowcount
        )
        return removed
