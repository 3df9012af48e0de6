"""The database behind a SQL driver: one engine per URI, transactions with bounded retry, error translation.

Guarantees: every transaction runs at READ COMMITTED on PostgreSQL and MariaDB/MySQL, and as a SQLite
``BEGIN IMMEDIATE`` (writes) or ``BEGIN`` (reads); a lock is never waited on longer than ``conflict_timeout``;
deadlocks and serialization failures are retried until that deadline; no SQLAlchemy or DBAPI exception leaves
:meth:`Database.run` (they become ``BackendError``, or the caller's conflict error when time runs out).
"""

from __future__ import annotations

import importlib.util
import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from marconi.storage.errors import BackendError, DriverLoadError, InvalidInput, StorageError

T = TypeVar("T")

#: The DBAPI to use when a URI names none, by backend: SQLAlchemy's default first, then the one our extras install.
_DBAPIS: dict[str, tuple[tuple[str, str], ...]] = {
    "postgresql": (("psycopg2", "psycopg2"), ("psycopg", "psycopg")),
    "mysql": (("mysqldb", "MySQLdb"), ("pymysql", "pymysql")),
    "mariadb": (("mysqldb", "MySQLdb"), ("pymysql", "pymysql")),
}
_EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb", "sqlite": "sqlite"}

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

_TRANSIENT, _TIMEOUT, _DISCONNECT, _FATAL = "transient", "timeout", "disconnect", "fatal"


def _missing_dbapi(backend: str, detail: str) -> DriverLoadError:
    extra = _EXTRAS.get(backend, "all")
    return DriverLoadError(
        f"no usable DBAPI for {backend!r} URIs ({detail}); install one with: pip install 'marconi[{extra}]'"
    )


def resolve_url(uri: str) -> URL:
    """The SQLAlchemy URL for ``uri``, naming an installed DBAPI when the URI names none."""
    try:
        url = sa.make_url(uri)
    except exc.ArgumentError as error:
        raise InvalidInput("uri", f"is not a SQLAlchemy database URL: {error}") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise InvalidInput("uri", f"names {backend!r}; the SQL driver serves sqlite, postgresql, mysql, mariadb")
    if "+" not in url.drivername and backend in _DBAPIS:
        for driver, module in _DBAPIS[backend]:
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=f"{backend}+{driver}")
        raise _missing_dbapi(backend, f"none of {', '.join(m for _, m in _DBAPIS[backend])} is installed")
    return url


def kind_of(backend: str) -> str:
    """``sqlite``, ``postgresql``, or ``mysql`` for MySQL and MariaDB alike."""
    return "mysql" if backend in ("mysql", "mariadb") else backend


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


class Database:
    """One backend: its engine and its dialect's abilities, and :meth:`run` for every transaction."""

    def __init__(self, uri: str, conflict_timeout: float, **engine_options: Any) -> None:
        self.conflict_timeout = conflict_timeout
        self.url = resolve_url(uri)
        self.backend = self.url.get_backend_name()
        self.in_memory = is_memory(self.url)
        #: Held for each whole transaction on an in-memory SQLite database, whose one connection all threads share.
        self._serial: threading.Lock | None = threading.Lock() if self.in_memory else None
        self.kind = kind_of(self.backend)
        self.engine = self._create_engine(engine_options)
        self.update_returning = bool(self.engine.dialect.update_returning)
        self.skip_locked = self.kind == "postgresql"  # MySQL-family decided once connected (server version)
        dbapi: Any = self.engine.dialect.loaded_dbapi
        self._dbapi_error: type[Exception] = dbapi.Error

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
            if "charset" not in self.url.query:
                connect_args["charset"] = "utf8mb4"
        try:
            engine = sa.create_engine(self.url, connect_args=connect_args, **options)
        except (ImportError, exc.NoSuchModuleError) as error:
            raise _missing_dbapi(self.backend, str(error)) from None
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
    def _turn(self, deadline: float) -> Iterator[bool]:
        if self._serial is None:
            yield True
            return
        acquired = self._serial.acquire(timeout=max(0.0, deadline - time.monotonic()))
        try:
            yield acquired
        finally:
            if acquired:
                self._serial.release()

    def _classify(self, error: exc.DBAPIError) -> str:
        if error.connection_invalidated:
            return _DISCONNECT
        orig = error.orig
        if self.kind == "postgresql":
            code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
            if code in _PG_RETRY:
                return _TRANSIENT
            if code in _PG_TIMEOUT:
                return _TIMEOUT
        elif self.kind == "mysql":
            args = getattr(orig, "args", ())
            code = args[0] if args and isinstance(args[0], int) else None
            if code in _MYSQL_RETRY:
                return _TRANSIENT
            if code in _MYSQL_TIMEOUT:
                return _TIMEOUT
        else:
            code = getattr(orig, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY:
                return _TIMEOUT
        return _FATAL

    def _limit_lock_wait(self, connection: Connection, remaining: float) -> bool:
        """On a retry, wait for locks no longer than what is left; True if the session must be discarded."""
        if self.kind == "postgresql":
            connection.execute(_SET_PG_LOCAL_LOCK_TIMEOUT, {"value": f"{max(1, math.ceil(remaining * 1000))}ms"})
        elif self.kind == "mysql":
            connection.execute(_SET_MYSQL_LOCK_WAIT_BOUND, {"value": max(1, math.ceil(remaining))})
            return True
        return False

    def run(
        self,
        work: Callable[[Connection], T],
        *,
        write: bool = True,
        conflict: Callable[[str], StorageError] | None = None,
    ) -> T:
        """Run ``work`` in one transaction and commit it; retried on deadlocks until ``conflict_timeout``.

        ``StorageError`` raised by ``work`` rolls back and propagates. When the deadline passes under contention,
        ``conflict(detail)`` is raised (default ``BackendError``); nothing of ``work`` has been committed then.
        """
        deadline = time.monotonic() + self.conflict_timeout
        attempt = 0
        disconnects = 0
        while True:
            attempt += 1
            committing = False
            try:
                with self._turn(deadline) as turn:
                    if not turn:
                        raise _GaveUp("another transaction held the database for the whole conflict timeout")
                    with self.engine.connect() as connection:
                        connection.execution_options(**{_WRITE_OPTION: write})
                        discard = False
                        try:
                            with connection.begin():
                                if attempt > 1:
                                    discard = self._limit_lock_wait(connection, deadline - time.monotonic())
                                result = work(connection)
                                committing = True
                        finally:
                            if discard:
                                connection.invalidate()
                return result
            except StorageError:
                raise
            except _GaveUp as gave_up:
                raise (conflict or BackendError)(str(gave_up)) from None
            except exc.TimeoutError as error:  # no pooled connection in time: nothing was sent
                detail = f"no free connection in {self.conflict_timeout:g} s: {error}"
                raise (conflict or BackendError)(detail) from error
            except exc.DBAPIError as error:
                kind = self._classify(error)
                if committing or kind == _FATAL:
                    raise BackendError(f"{self.backend} failed: {_describe(error)}") from error
                if kind == _DISCONNECT:
                    disconnects += 1
                    if disconnects > 1:
                        raise BackendError(f"{self.backend} connection lost: {_describe(error)}") from error
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    detail = f"gave up after {attempt} attempt(s) in {self.conflict_timeout:g} s: {_describe(error)}"
                    raise (conflict or BackendError)(detail) from error
                time.sleep(min(remaining, random.uniform(0, min(0.2, 0.005 * 2**attempt))))
            except exc.SQLAlchemyError as error:
                raise BackendError(f"{self.backend} failed: {_describe(error)}") from error
            except self._dbapi_error as error:  # raised where SQLAlchemy does not wrap (connect hooks)
                raise BackendError(f"{self.backend} failed: {_describe(error)}") from error

    def close(self) -> None:
        self.engine.dispose()


class _GaveUp(Exception):
    pass


def _describe(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
