"""The database behind a SQL driver: one engine per URI, one transaction per :meth:`Database.run`.

Guarantees: every transaction runs at READ COMMITTED on PostgreSQL and MariaDB/MySQL, and as a SQLite
``BEGIN IMMEDIATE`` (writes) or ``BEGIN`` (reads); a lock is never waited on longer than what is left of the
call's ``conflict_timeout`` (the core retries deadlocks within it); a failure while committing, whose outcome
is unknown, is ``BackendError`` at once and never retried. What the backend's errors mean is
:meth:`Database.classify`'s business; the core's retry loop (``marconi.storage.failures``) acts on it.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from marconi.storage import failures
from marconi.storage.errors import BackendError, InvalidInput
from marconi.storage.failures import Failure

from .urls import is_memory, kind_of, missing_dbapi, resolve

T = TypeVar("T")

# Error codes that mean "another transaction was in the way": retry while time remains.
_PG_RETRY = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
_PG_TIMEOUT = frozenset({"55P03"})  # lock_not_available (lock_timeout)
_MYSQL_RETRY = frozenset({1213, 1020})  # deadlock; record changed since last read
_MYSQL_TIMEOUT = frozenset({1205})  # innodb_lock_wait_timeout exceeded
_SQLITE_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (low byte of extended codes)

_SET_PG_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %s, false)"
_SET_PG_LOCAL_LOCK_TIMEOUT = sa.text("SELECT set_config('lock_timeout', :value, true)")
_SET_MYSQL_LOCK_WAIT = "SET SESSION innodb_lock_wait_timeout = %s, lock_wait_timeout = %s"
_SET_MYSQL_LOCK_WAIT_BOUND = sa.text("SET SESSION innodb_lock_wait_timeout = :value, lock_wait_timeout = :value")
_SQLITE_WAL = "PRAGMA journal_mode=WAL"
_SQLITE_BEGIN_WRITE = "BEGIN IMMEDIATE"
_SQLITE_BEGIN_READ = "BEGIN"
_WRITE_OPTION = "marconi_write"

# SQLAlchemy's pool logs the failed reset of a connection a server has killed with a full traceback, through
# Python's last-resort handler when the application configured no logging. The driver recovers on its own;
# the pool's record of it belongs to whoever configures logging, not on a user's terminal.
logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())


class Contention(Exception):
    """The database was not ours in time (SQLite in memory: another thread held its one connection)."""


class Database:
    """One backend: its engine and its dialect's abilities, :meth:`run` for every transaction, and what its
    errors mean."""

    def __init__(self, uri: str, conflict_timeout: float, **engine_options: Any) -> None:
        self.conflict_timeout = conflict_timeout
        self.url = resolve(uri)
        self.backend = self.url.get_backend_name()
        self.in_memory = is_memory(self.url)
        #: Held for each whole transaction on an in-memory SQLite database, whose one connection all threads share.
        self._serial: threading.Lock | None = threading.Lock() if self.in_memory else None
        self.kind = kind_of(self.backend)
        self.engine = self._create_engine(engine_options)
        self.update_returning = bool(self.engine.dialect.update_returning)
        self.skip_locked = self.kind == "postgresql"  # MySQL-family decided once connected (server version)
        dbapi: Any = self.engine.dialect.loaded_dbapi
        self.dbapi_error: type[Exception] = dbapi.Error

    def _create_engine(self, options: dict[str, Any]) -> Engine:
        timeout = self.conflict_timeout
        connect_args: dict[str, Any] = {}
        if self.kind == "sqlite":
            connect_args["timeout"] = timeout  # the busy timeout: how long BEGIN IMMEDIATE waits for the writer
        else:
            options = {"isolation_level": "READ COMMITTED", **options}
        if self.in_memory:
            connect_args["check_same_thread"] = False
            options = {**options, "poolclass": StaticPool}
        else:
            options.setdefault("pool_timeout", timeout)  # waiting for a pooled connection is contention too
        if self.kind == "mysql":
            options.setdefault("pool_recycle", 3600)
            connect_args["charset"] = "utf8mb4"
        try:
            engine = sa.create_engine(self.url, connect_args=connect_args, **options)
        except (ImportError, exc.NoSuchModuleError) as error:
            raise missing_dbapi(self.backend, str(error)) from None
        except (exc.ArgumentError, TypeError) as error:
            raise InvalidInput("uri", f"cannot make an engine for it: {error}") from None
        event.listen(engine, "connect", self._on_connect)
        if self.backend == "sqlite":
            event.listen(engine, "begin", self._sqlite_begin)
        return engine

    def _on_connect(self, dbapi_connection: Any, record: Any) -> None:
        """Session settings of every new connection: lock waits bounded by ``conflict_timeout``."""
        kind = self.kind
        if kind == "sqlite":
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
            if not self.in_memory:
                cursor = dbapi_connection.cursor()
                cursor.execute(_SQLITE_WAL)
                cursor.fetchall()
                cursor.close()
            return
        cursor = dbapi_connection.cursor()
        if kind == "postgresql":
            cursor.execute(_SET_PG_LOCK_TIMEOUT, (f"{max(1, math.ceil(self.conflict_timeout * 1000))}ms",))
        else:
            seconds = max(1, math.ceil(self.conflict_timeout))
            cursor.execute(_SET_MYSQL_LOCK_WAIT, (seconds, seconds))
        cursor.close()
        dbapi_connection.commit()

    @staticmethod
    def _sqlite_begin(connection: Connection) -> None:
        """pysqlite's recipe: its own BEGIN disabled, ours is IMMEDIATE for writes so writers queue up front."""
        write = connection.get_execution_options().get(_WRITE_OPTION, True)
        raw = connection.connection.driver_connection
        assert raw is not None
        statement = _SQLITE_BEGIN_WRITE if write else _SQLITE_BEGIN_READ
        try:
            raw.execute(statement)
        except sqlite3.Error as error:  # SQLAlchemy does not wrap what an event hook raises: do it here
            raise exc.OperationalError(statement, None, error) from error

    def connected(self) -> None:
        """Learn what needs a live server (SKIP LOCKED on MariaDB 10.6+ / MySQL 8.0.1+)."""
        if self.kind == "mysql":
            dialect: Any = self.engine.dialect
            version = tuple(dialect.server_version_info or ())
            self.skip_locked = version >= ((10, 6) if dialect.is_mariadb else (8, 0, 1))

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self._serial is None:
            yield
            return
        attempts = failures.current()
        wait = attempts.remaining() if attempts is not None else self.conflict_timeout
        if not self._serial.acquire(timeout=wait):
            raise Contention("another thread held the in-memory database for the whole conflict timeout")
        try:
            yield
        finally:
            self._serial.release()

    def classify(self, error: BaseException) -> Failure | None:
        """What an error raised by :meth:`run` means (``marconi.storage.failures``)."""
        if isinstance(error, (Contention, exc.TimeoutError)):  # no turn, or no pooled connection, in time
            return Failure.CONFLICT
        if isinstance(error, exc.DBAPIError):
            if error.connection_invalidated:  # lost before the commit (run says so otherwise): rolled back
                return Failure.RECONNECT
            return self._by_code(error.orig)
        if isinstance(error, (exc.SQLAlchemyError, self.dbapi_error)):
            return Failure.FATAL
        return None

    def _by_code(self, orig: BaseException | None) -> Failure:
        if self.kind == "postgresql":
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if code in _PG_RETRY:
                return Failure.RETRY
            if code in _PG_TIMEOUT:
                return Failure.CONFLICT
        elif self.kind == "mysql":
            args = getattr(orig, "args", ())
            code = args[0] if args and isinstance(args[0], int) else None
            if code in _MYSQL_RETRY:
                return Failure.RETRY
            if code in _MYSQL_TIMEOUT:
                return Failure.CONFLICT
        else:
            code = getattr(orig, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY:
                return Failure.CONFLICT  # the busy timeout has already waited
        return Failure.FATAL

    def _limit_lock_wait(self, connection: Connection) -> bool:
        """On a retry, wait for locks no longer than what is left; True if the session must be discarded."""
        attempts = failures.current()
        if attempts is None or attempts.number == 1:
            return False
        remaining = attempts.remaining()
        if self.kind == "postgresql":
            connection.execute(_SET_PG_LOCAL_LOCK_TIMEOUT, {"value": f"{max(1, math.ceil(remaining * 1000))}ms"})
        elif self.kind == "mysql":
            connection.execute(_SET_MYSQL_LOCK_WAIT_BOUND, {"value": max(1, math.ceil(remaining))})
            return True
        return False

    def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction and commit it.

        What ``work`` raises rolls the transaction back and propagates; so do the backend's errors, for the core
        to classify and retry. A failure during the commit itself is ``BackendError``: it may have committed.
        """
        committing = False
        try:
            with self._turn(), self.engine.connect() as connection:
                connection.execution_options(**{_WRITE_OPTION: write})
                discard = False
                try:
                    with connection.begin():
                        discard = self._limit_lock_wait(connection)
                        result = work(connection)
                        committing = True
                finally:
                    if discard:
                        connection.invalidate()
        except (exc.SQLAlchemyError, self.dbapi_error) as error:
            if committing:
                raise BackendError(
                    f"{self.backend} failed while committing; it may or may not have committed: "
                    f"{failures.describe(error)}"
                ) from error
            raise
        return result

    def close(self) -> None:
        self.engine.dispose()
