"""The raw floor on SQLite: the sqlite3 module on the driver's database file (WAL, as the driver leaves it).

It waits for SQLite's one writer as the driver does: short polled pauses (``PollingCursor``), not SQLite's own
busy handler, whose sleeps grow to 100 ms a try. With the busy handler a claimer beside a producer stalled for up
to 431 ms while the producer posted its whole share: the floor's producer then ran as if alone, and its
"post with a claimer" figure measured a starved consumer, not the work.
"""

from __future__ import annotations

import builtins
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from marconi_drivers.sql.engine import BUSY_POLL_CAP, BUSY_POLL_FIRST  # the driver's pauses, the same here

from ..contenders import Item
from . import _NAMED, QueueMissing, SQLFloor

BUSY_TIMEOUT = 10.0  # seconds a write waits for SQLite's one writer, as the driver's conflict_timeout
_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (the low byte of an extended code)


class PollingCursor:
    """A sqlite3 cursor whose statements, refused while another connection writes, run again after a short pause
    (a statement that got SQLITE_BUSY did nothing), for up to ``BUSY_TIMEOUT`` seconds."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Any = ()) -> PollingCursor:
        self._retrying(self._cursor.execute, sql, params)
        return self

    def executemany(self, sql: str, rows: Any) -> PollingCursor:
        self._retrying(self._cursor.executemany, sql, rows)
        return self

    def _retrying(self, run: Any, sql: str, params: Any) -> None:
        tries, deadline = 0, time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                run(sql, params)
                return
            except sqlite3.OperationalError as error:
                code = getattr(error, "sqlite_errorcode", 0)
                if code & 0xFF not in _BUSY or time.monotonic() >= deadline:
                    raise
            tries += 1
            time.sleep(random.uniform(0, min(BUSY_POLL_CAP, BUSY_POLL_FIRST * 2 ** min(tries, 20))))

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description


class SQLiteFloor(SQLFloor):
    dialect = "sqlite"

    @classmethod
    def prepare(cls, target: str, prefix: str, **options: Any) -> dict[str, Any]:
        import sqlalchemy as sa

        if sa.make_url(target).database in (None, "", ":memory:"):
            raise ValueError("the SQLite floor shares a database file with the driver: give sqlite:///path.db")
        return super().prepare(target, prefix, **options)

    def connect(self) -> None:
        self.connection = sqlite3.connect(str(self.url.database), timeout=BUSY_TIMEOUT, isolation_level=None)
        self.connection.execute("PRAGMA busy_timeout = 0")  # connecting waited for the writer; statements poll
        self.round_trips.attach(self.connection)
        self.cursor = PollingCursor(self.connection.cursor())

    def placeholders(self, text: str) -> str:
        return _NAMED.sub(r":\1", text).replace("%s", "?")

    def auto(self) -> Any:
        return self.cursor

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        self.cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield self.cursor
        except BaseException:
            self.cursor.execute("ROLLBACK")
            raise
        self.cursor.execute("COMMIT")

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        terms = self.claim_terms(queue, limit)
        with self.transaction() as cursor:
            cursor.execute(self.statement("claim"), terms)
            rows = cursor.fetchall()
            if not rows:
                if self.queue_id(queue) is None:
                    raise QueueMissing(queue)
                return None, []
            cursor.execute(self.statement("record_claim"), {**terms, "queue_id": rows[0][0]})
        return terms["claim"], self.items(rows)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        terms = self.claim_terms(queue, limit)
        self.cursor.execute(self.statement("pop"), terms)
        return self.items(self.cursor.fetchall())

    def facts(self) -> dict[str, Any]:
        return {**self.settings(), "commit_ms": self.commit_ms()}

    def settings(self) -> dict[str, Any]:
        journal = self.cursor.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = self.cursor.execute("PRAGMA synchronous").fetchone()[0]
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {
            "server": f"SQLite {sqlite3.sqlite_version}",
            "durability": {"journal_mode": journal, "synchronous": names.get(synchronous, synchronous)},
        }

    def close(self) -> None:
        self.connection.close()
