"""The database behind a SQL driver: SQLAlchemy's dialect and pool, and sessions that run prepared statements.

SQLAlchemy resolves the URL, loads the DBAPI, pools connections and creates the schema; the hot path runs the
driver's prepared statements (``statements.py``) straight on a pooled DBAPI connection, so a call costs its
round trips and little else. Connections stay in autocommit mode: a single statement is one round trip, and a
write of several runs in an explicit transaction (READ COMMITTED on PostgreSQL and MariaDB/MySQL, ``BEGIN
IMMEDIATE`` on SQLite). PostgreSQL's posts, claims and pops are each one statement, atomic by itself.

Guarantees: a lock is never waited on longer than what is left of the call's ``conflict_timeout``; a failure
while committing, whose outcome is unknown, is ``BackendError`` at once; a connection the server dropped is
discarded, and the call is retried once on a fresh one (the core does it: ``Database.classify``) only when the
loss came before anything was committed. Observers (``listen``) see every statement, for tests and benchmarks.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from marconi.storage import failures
from marconi.storage.errors import BackendError, InvalidInput
from marconi.storage.failures import Failure

from .statements import Statement, Statements
from .urls import is_memory, kind_of, missing_dbapi, resolve

T = TypeVar("T")

# Error codes that mean "another transaction was in the way": retry while time remains.
_PG_RETRY = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
_PG_TIMEOUT = frozenset({"55P03"})  # lock_not_available (lock_timeout)
_MYSQL_RETRY = frozenset({1213, 1020})  # deadlock; record changed since last read
_MYSQL_TIMEOUT = frozenset({1205})  # innodb_lock_wait_timeout exceeded
_SQLITE_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (low byte of extended codes)

#: How each backend begins a transaction, and how a session bounds its lock waits (seconds or milliseconds).
BEGIN = {"postgresql": "BEGIN", "mysql": "START TRANSACTION", "sqlite": "BEGIN IMMEDIATE"}
# Bitmap scans are off: every hot statement here wants the first rows of an index range in order (a page, a
# claim), and a planner misled by a young table's statistics (a queue filled since the last ANALYZE) would read
# the whole range through a bitmap and sort it: a page of 10 from 1,000 queued messages took 1.6 ms, not 0.1.
_PG_SESSION = (
    "SET lock_timeout = '{ms}ms'; SET default_transaction_isolation = 'read committed'; SET enable_bitmapscan = off"
)
_MYSQL_SESSION = (
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION innodb_lock_wait_timeout = {s}, lock_wait_timeout = {s}",
)
_SQLITE_WAL = "PRAGMA journal_mode=WAL"
# SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms), so a writer behind one that
# commits back to back missed the short gaps between its transactions and waited half a second. Statements get
# SQLITE_BUSY at once instead, and the session tries again after a short jittered pause.
_SQLITE_NO_BUSY_HANDLER = "PRAGMA busy_timeout = 0"
BUSY_POLL_FIRST, BUSY_POLL_CAP = 0.0001, 0.002  # seconds: the first pause is up to this long, doubling up to the cap
pause = time.sleep  # how the session waits between tries (tests count the pauses instead)
POOL_SIZE, MAX_OVERFLOW = 5, 10  # SQLAlchemy's defaults, made explicit: the pool's capacity is their sum
HOT_SECONDS = 1.0  # how long a connection serves calls between two passes through SQLAlchemy's pool
INSERT_CHUNK = 500  # rows per multi-row INSERT: far below every backend's limit on bound parameters

# SQLAlchemy's pool logs the failed reset of a connection a server has killed with a full traceback, through
# Python's last-resort handler when the application configured no logging. The driver recovers on its own;
# the pool's record of it belongs to whoever configures logging, not on a user's terminal.
logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())


class Contention(Exception):
    """The database was not ours in time (SQLite in memory: another thread held its one connection)."""


class Lost(Exception):
    """The server dropped the connection before anything of the call was committed."""


class Observer(Protocol):
    def __call__(self, phase: str, sql: str, connection: Any) -> None:
        """``phase``: "before" or "after" each statement a session sends (one round trip each)."""


class Counter:
    """An observer counting what calls send: statements (transaction control apart) and round trips."""

    CONTROL = ("BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SET ")

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.round_trips = 0

    def __call__(self, phase: str, sql: str, connection: Any) -> None:
        if phase != "before":
            return
        self.round_trips += 1
        if not sql.lstrip().upper().startswith(self.CONTROL):
            self.statements.append(" ".join(sql.split()))


@dataclass(slots=True)
class Result:
    """What one statement returned: its rows (empty when it returns none) and its row count."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class Connections:
    """An engine's pooled connections, kept checked out between calls that follow each other closely.

    A checkout from SQLAlchemy's pool and its return cost about as much as a short statement on SQLite. A
    connection a call gives back is taken by the next call here, for up to ``HOT_SECONDS`` after it left the pool;
    then it goes back to the pool, which recycles (and, with ``pool_pre_ping``, tests) connections as configured.
    A connection is never kept here while the pool is exhausted, so nobody waiting on the pool waits for it.
    """

    def __init__(self, engine: Engine, capacity: int | None) -> None:
        self.engine = engine
        self._capacity = capacity  # the pool's size plus overflow; None: keep nothing
        self._hot: list[tuple[Any, float]] = []

    def take(self) -> tuple[Any, float]:
        """A pooled connection, and when it left the pool."""
        hot = self._hot
        while hot:
            try:
                pooled, since = hot.pop()
            except IndexError:  # another thread took the last one
                break
            if time.monotonic() - since < HOT_SECONDS:
                return pooled, since
            pooled.close()
        return self.engine.raw_connection(), time.monotonic()

    def give(self, pooled: Any, since: float) -> None:
        """Take back a connection a call is done with, in a good state."""
        pool: Any = self.engine.pool
        if self._capacity is not None and time.monotonic() - since < HOT_SECONDS and pool.checkedout() < self._capacity:
            self._hot.append((pooled, since))
        else:
            pooled.close()

    def drop(self) -> None:
        """Discard every connection kept here (one was found dropped by the server: the others likely are)."""
        for pooled in self._emptied():
            pooled.invalidate()
            pooled.close()

    def close(self) -> None:
        for pooled in self._emptied():
            pooled.close()
        self.engine.dispose()

    def _emptied(self) -> Iterator[Any]:
        """Each kept connection, taken out, whatever other threads take meanwhile."""
        while self._hot:
            try:
                pooled, _ = self._hot.pop()
            except IndexError:
                return
            yield pooled


class Database:
    """One backend: the engine, the prepared statements, sessions on pooled connections, and error meanings."""

    def __init__(self, uri: str, conflict_timeout: float, names: Mapping[str, str], **engine_options: Any) -> None:
        self.conflict_timeout = conflict_timeout
        self.url = resolve(uri)
        self.backend = self.url.get_backend_name()
        self.kind = kind_of(self.backend)
        self.in_memory = is_memory(self.url)
        #: Held for each whole session on an in-memory SQLite database, whose one connection all threads share.
        self._serial: threading.Lock | None = threading.Lock() if self.in_memory else None
        self.engine = self._create_engine(dict(engine_options), autocommit=True)
        #: MariaDB/MySQL transactions run on a pool of their own whose connections are not in autocommit mode: the
        #: first statement begins the transaction, saving the round trip of a START TRANSACTION.
        self._transactional: Engine | None = None
        if self.kind == "mysql":
            self._transactional = self._create_engine(dict(engine_options), autocommit=False)
        capacity = None
        if not self.in_memory and not engine_options.get("pool_pre_ping"):
            capacity = engine_options.get("pool_size", POOL_SIZE) + engine_options.get("max_overflow", MAX_OVERFLOW)
        self._connections = Connections(self.engine, capacity)
        self._transactions = self._connections
        if self._transactional is not None:
            self._transactions = Connections(self._transactional, capacity)
        dbapi: Any = self.engine.dialect.loaded_dbapi
        self.dbapi_error: type[Exception] = dbapi.Error
        self.statements = Statements(self.kind, names, style="qmark" if self.kind == "sqlite" else "pyformat")
        self.observers: list[Observer] = []
        self._pausing = 0  # observers that may block a call between statements (see ``alone``)

    def _create_engine(self, options: dict[str, Any], autocommit: bool) -> Engine:
        connect_args: dict[str, Any] = {}
        if self.kind == "sqlite":
            connect_args["timeout"] = self.conflict_timeout  # how long connecting waits for the writer
        if self.kind == "mysql":
            connect_args["charset"] = "utf8mb4"
            options.setdefault("pool_recycle", 3600)
        if self.in_memory:
            connect_args["check_same_thread"] = False
            options["poolclass"] = StaticPool
        else:
            options.setdefault("pool_timeout", self.conflict_timeout)  # waiting for a connection is contention too
            options.setdefault("pool_size", POOL_SIZE)
            options.setdefault("max_overflow", MAX_OVERFLOW)
        try:
            engine = sa.create_engine(
                self.url,
                connect_args=connect_args,
                isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
                pool_reset_on_return=None,  # sessions end every transaction themselves
                **options,
            )
        except (ImportError, exc.NoSuchModuleError) as error:
            raise missing_dbapi(self.backend, str(error)) from None
        except (exc.ArgumentError, TypeError) as error:
            raise InvalidInput("uri", f"cannot make an engine for it: {error}") from None
        sa.event.listen(engine, "connect", self._on_connect)
        return engine

    def _on_connect(self, dbapi_connection: Any, record: Any) -> None:
        """Session settings of every new connection: READ COMMITTED, lock waits bounded by ``conflict_timeout``."""
        cursor = dbapi_connection.cursor()
        try:
            if self.kind == "sqlite":
                if not self.in_memory:
                    cursor.execute(_SQLITE_WAL)
                    cursor.fetchall()
                    cursor.execute(_SQLITE_NO_BUSY_HANDLER)
            elif self.kind == "postgresql":
                cursor.execute(_PG_SESSION.format(ms=max(1, math.ceil(self.conflict_timeout * 1000))))
            else:
                for setting in _MYSQL_SESSION:
                    cursor.execute(setting.format(s=max(1, math.ceil(self.conflict_timeout))))
        finally:
            cursor.close()

    @property
    def engines(self) -> list[Engine]:
        return [self.engine] if self._transactional is None else [self.engine, self._transactional]

    def listen(self, observer: Observer, *, pauses: bool = False) -> None:
        """Call ``observer`` around every statement sessions send (tests and benchmarks count them). One that
        ``pauses`` (blocks a call between two statements) makes one-statement writes run in a transaction."""
        self.observers.append(observer)
        self._pausing += pauses

    def unlisten(self, observer: Observer, *, pauses: bool = False) -> None:
        self.observers.remove(observer)
        self._pausing -= pauses

    def session(self, transactional: bool = False) -> Session:
        """A pooled connection for one call (``transactional``: for a transaction), as a context manager; one the
        server dropped is discarded, and the call raises Lost."""
        return Session(self, self._transactions if transactional else self._connections)

    def wait_turn(self) -> None:
        """Take the in-memory database's one connection, or raise Contention when no time is left for it."""
        assert self._serial is not None
        attempts = failures.current()
        wait = attempts.remaining() if attempts is not None else self.conflict_timeout
        if not self._serial.acquire(timeout=wait):
            raise Contention("another thread held the in-memory database for the whole conflict timeout")

    def read(self, statement: str, /, **params: Any) -> Result:
        """One statement on its own (autocommit): a read, or a write that is atomic by itself."""
        with self.session() as session:
            session.bound_lock_wait()
            return session.run(statement, **params)

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction and commit it; what ``work`` raises rolls it back and propagates."""
        with self.session(transactional=True) as session:
            session.begin()
            try:
                result = work(session)
            except BaseException:
                session.rollback()
                raise
            session.commit()
            return result

    def alone(self, statement: str, /, **params: Any) -> Result:
        """A write that is one statement, atomic by itself, sent alone in autocommit: one round trip. While an
        observer pauses calls between statements (tests), it runs in a transaction of its own instead, so that a
        pause right after it holds its locks until the commit."""
        if not self._pausing:
            return self.read(statement, **params)
        return self.transaction(lambda session: session.run(statement, **params))

    def disconnected(self, error: Exception, dbapi_connection: Any) -> bool:
        """Whether ``error`` says the server dropped the connection (SQLAlchemy's dialect knows each DBAPI's)."""
        dialect: Any = self.engine.dialect
        return bool(dialect.is_disconnect(error, dbapi_connection, None))

    def is_unique_violation(self, error: BaseException) -> bool:
        return isinstance(error, self.engine.dialect.loaded_dbapi.IntegrityError)

    def classify(self, error: BaseException) -> Failure | None:
        """What an error raised by a session means (``marconi.storage.failures``)."""
        if isinstance(error, (Contention, exc.TimeoutError)):  # no turn, or no pooled connection, in time
            return Failure.CONFLICT
        if isinstance(error, Lost):
            return Failure.RECONNECT
        orig = error.orig if isinstance(error, exc.DBAPIError) else error
        if isinstance(orig, self.dbapi_error):
            return self._by_code(orig)
        if isinstance(error, exc.SQLAlchemyError):
            return Failure.FATAL
        return None

    def _by_code(self, orig: BaseException) -> Failure:
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

    def close(self) -> None:
        self._connections.close()
        if self._transactions is not self._connections:
            self._transactions.close()


class Session:
    """One call's pooled connection: runs named statements, begins and ends transactions."""

    def __init__(self, database: Database, connections: Connections) -> None:
        self.database = database
        self._connections = connections
        self._serial = database._serial
        if self._serial is not None:
            database.wait_turn()
        try:
            self.pooled, self._since = connections.take()
        except BaseException:
            self._release()
            raise
        self.connection = self.pooled.dbapi_connection
        self.implicit = connections.engine is database._transactional  # the first statement begins a transaction
        self.committing = False
        self.discard = False  # a session setting was changed for this call only: do not pool the connection
        self._open_cursor: Any = None
        self._busy_tries = 0
        self._busy_until = 0.0

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        try:
            database = self.database
            if isinstance(error, database.dbapi_error) and database.disconnected(error, self.connection):
                self.discard = True
                self._connections.drop()
                if self.committing:
                    raise BackendError(
                        f"{database.backend} connection lost while committing; it may or may not have committed: "
                        f"{failures.describe(error)}"
                    ) from error
                raise Lost(failures.describe(error)) from error
        finally:
            if self._open_cursor is not None:
                self._close_cursor()
            if self.discard:
                self.pooled.invalidate()
                self.pooled.close()
            elif error is not None:  # the pool's reset on return leaves no trace of the failed call
                self.pooled.close()
            else:
                self._connections.give(self.pooled, self._since)
            self._release()

    def _close_cursor(self) -> None:
        try:
            self._open_cursor.close()
        except self.database.dbapi_error:  # its connection is gone: the session discards it
            self.discard = True

    def _release(self) -> None:
        if self._serial is not None:
            self._serial.release()

    def _notify(self, phase: str, sql: str) -> None:
        for observer in self.database.observers:
            observer(phase, sql, self.connection)

    def _cursor(self) -> Any:
        """The session's one cursor (made on first use, closed with the session)."""
        if self._open_cursor is None:
            self._open_cursor = self.connection.cursor()
        return self._open_cursor

    def _execute(
        self, statement: Statement, params: Mapping[str, Any], many: Sequence[Mapping[str, Any]] = ()
    ) -> Result:
        if not many:
            sql, bound = statement.render(params)
            return self._send(statement, sql, bound)
        rendered = [statement.render(row) for row in many]
        sql = rendered[0][0]
        cursor = self._cursor()
        self._notify("before", sql)
        cursor.executemany(sql, [row for _, row in rendered])
        result = Result([], cursor.rowcount)
        self._notify("after", sql)
        return result

    def _send(self, statement: Statement, sql: str, params: Mapping[str, Any]) -> Result:
        cursor = self._cursor()
        observed = bool(self.database.observers)
        if observed:
            self._notify("before", sql)
        self._run(cursor, sql, params)
        returns = statement.returns_rows
        if returns is None:
            returns = statement.returns_rows = cursor.description is not None
        result = Result(cursor.fetchall() if returns else [], cursor.rowcount)
        if observed:
            self._notify("after", sql)
        return result

    def run(self, statement: str, /, **params: Any) -> Result:
        return self._execute(self.database.statements[statement], params)

    def many(self, statement: str, rows: Sequence[Mapping[str, Any]]) -> Result:
        """One statement for each of ``rows`` (PyMySQL folds an INSERT's into one)."""
        return self._execute(self.database.statements[statement], {}, rows)

    def insert(self, statement: str, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (each its values in the order of the statement's VALUES group) with one multi-row INSERT
        per chunk (every backend's parameter limits respected)."""
        prepared = self.database.statements[statement]
        inserted = 0
        for start in range(0, len(rows), INSERT_CHUNK):
            sql, params = prepared.rows(rows[start : start + INSERT_CHUNK])
            inserted += self._send(prepared, sql, params).rowcount
        return inserted

    def _control(self, sql: str) -> None:
        self._notify("before", sql)
        self._run(self._cursor(), sql)
        self._notify("after", sql)

    def _run(self, cursor: Any, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Execute one statement, running it again while SQLite's writer is busy (see ``_waited_for_writer``)."""
        while True:
            try:
                if params is None:
                    cursor.execute(sql)
                else:
                    cursor.execute(sql, params)
                return
            except self.database.dbapi_error as error:
                if not self._waited_for_writer(error):
                    raise

    def _waited_for_writer(self, error: Exception) -> bool:
        """Whether ``error`` is SQLite's busy writer and a pause was taken before trying again; False once the
        call's ``conflict_timeout`` is used up (a statement that got SQLITE_BUSY did nothing: it can run again)."""
        code = getattr(error, "sqlite_errorcode", None)
        if not isinstance(code, int) or code & 0xFF not in _SQLITE_BUSY:
            return False
        now = time.monotonic()
        if not self._busy_tries:
            attempts = failures.current()
            self._busy_until = now + (attempts.remaining() if attempts is not None else self.database.conflict_timeout)
        if now >= self._busy_until:
            return False
        self._busy_tries += 1
        ceiling = min(BUSY_POLL_CAP, BUSY_POLL_FIRST * 2 ** min(self._busy_tries, 20))
        pause(min(self._busy_until - now, random.uniform(0, ceiling)))
        return True

    def bound_lock_wait(self) -> None:
        """On a retry, let this call's statements wait for locks no longer than the time left to it."""
        attempts = failures.current()
        if attempts is None or attempts.number == 1 or self.database.kind == "sqlite":
            return
        remaining = attempts.remaining()
        if self.database.kind == "postgresql":
            self._control(f"SET lock_timeout = '{max(1, math.ceil(remaining * 1000))}ms'")
        else:
            seconds = max(1, math.ceil(remaining))
            self._control(f"SET SESSION innodb_lock_wait_timeout = {seconds}, lock_wait_timeout = {seconds}")
        self.discard = True

    def begin(self) -> None:
        if not self.implicit:
            self._control(BEGIN[self.database.kind])
        self.bound_lock_wait()

    def commit(self) -> None:
        self.committing = True  # from here on, a failure leaves the outcome unknown
        try:
            self._control("COMMIT")
        except self.database.dbapi_error as error:
            if self.database.disconnected(error, self.connection):
                raise  # the session reports a connection lost while committing as an unknown outcome
            raise BackendError(
                f"{self.database.backend} failed while committing; it may or may not have committed: "
                f"{failures.describe(error)}"
            ) from error
        self.committing = False

    def rollback(self) -> None:
        try:
            self._control("ROLLBACK")
        except self.database.dbapi_error:
            self.discard = True  # a connection that cannot roll back is not pooled again
