"""Backend round trips, counted where they happen: at the DBAPI connection, the same way for every contender.

A round trip is a request the client sends and waits for: a statement, and the BEGIN, COMMIT or ROLLBACK a
DBAPI sends on its own. Each DBAPI is asked in the way that sees exactly those:

- sqlite3: the connection's trace callback (every statement the library runs, BEGIN and COMMIT included);
- PyMySQL: every command the connection sends (``_execute_command``: statements, COMMIT, the pool's ROLLBACK);
- psycopg 3: libpq's protocol trace, counting the server's ReadyForQuery messages (one per request: psycopg's
  implicit BEGIN, each statement, COMMIT; a ROLLBACK of an idle connection sends nothing and counts nothing).

Other clients count their own with :meth:`RoundTrips.tick` (from redis-py's or pymongo's command hooks, say).
Counting costs time, so roles count only during their warm-up (:meth:`RoundTrips.counting` around each op) and
never while they are timed.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_READY = b"\tReadyForQuery"


class _Traced:
    """One DBAPI connection's round trips, counted while ``start``-ed."""

    def start(self) -> None: ...

    def stop(self) -> int:
        """Stop counting; the round trips since ``start``."""
        return 0


class _SQLite(_Traced):
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.count = 0

    def _tick(self, statement: str) -> None:
        self.count += 1

    def start(self) -> None:
        self.count = 0
        self.connection.set_trace_callback(self._tick)

    def stop(self) -> int:
        self.connection.set_trace_callback(None)
        return self.count


class _PyMySQL(_Traced):
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.count = 0

    def start(self) -> None:
        connection = self.connection
        self.count = 0
        send = type(connection)._execute_command

        def counted(command: int, sql: Any) -> Any:
            self.count += 1
            return send(connection, command, sql)

        connection._execute_command = counted

    def stop(self) -> int:
        connection = self.connection
        if "_execute_command" in vars(connection):
            del connection._execute_command
        return self.count


class _Psycopg(_Traced):
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.file = tempfile.TemporaryFile()

    def start(self) -> None:
        import psycopg

        connection = self.connection
        if connection.closed:
            return
        self.file.seek(0)
        self.file.truncate()
        connection.pgconn.trace(self.file.fileno())
        connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)

    def stop(self) -> int:
        connection = self.connection
        if connection.closed:
            return 0
        connection.pgconn.untrace()  # flushes libpq's buffer into the file
        self.file.seek(0)
        return self.file.read().count(_READY)


def _traced(connection: Any) -> _Traced:
    if isinstance(connection, sqlite3.Connection):
        return _SQLite(connection)
    module = type(connection).__module__
    if module.startswith("pymysql"):
        return _PyMySQL(connection)
    if module.startswith("psycopg"):
        return _Psycopg(connection)
    raise TypeError(f"cannot count the round trips of a {type(connection).__qualname__} connection")


class RoundTrips:
    """The round trips of every DBAPI connection a client uses (each one ``attach``-ed once, on first use)."""

    def __init__(self) -> None:
        self._connections: dict[int, _Traced] = {}
        self._active = False
        self._ticks = 0
        self.counted: dict[str, list[int]] = {}  # op kind -> round trips of each counted op

    def tick(self, count: int = 1) -> None:
        """Count round trips a client sees itself (redis-py's or pymongo's command hooks, an HTTP client's requests);
        only while counting."""
        if self._active:
            self._ticks += count

    def attach(self, connection: Any) -> None:
        """Count this DBAPI connection too (idempotent); call it whenever a connection is handed out."""
        key = id(connection)
        traced = self._connections.get(key)
        if traced is None or getattr(traced, "connection", None) is not connection:
            traced = self._connections[key] = _traced(connection)
            if self._active:
                traced.start()

    def attach_engine(self, engine: Any) -> None:
        """Count every connection a SQLAlchemy engine's pool hands out."""
        from sqlalchemy import event

        event.listen(engine, "checkout", lambda dbapi_connection, *_: self.attach(dbapi_connection))

    @contextmanager
    def counting(self, kind: str) -> Iterator[None]:
        """Count the round trips of what runs inside, as one op of ``kind``."""
        self._active, self._ticks = True, 0
        for traced in list(self._connections.values()):
            traced.start()
        try:
            yield
        finally:
            self._active = False
            total = self._ticks + sum(traced.stop() for traced in list(self._connections.values()))
            self.counted.setdefault(kind, []).append(total)
