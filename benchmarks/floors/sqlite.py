"""The raw floor on SQLite: the sqlite3 module on the driver's database file (WAL, as the driver leaves it)."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..contenders import Item
from . import _NAMED, QueueMissing, SQLFloor

BUSY_TIMEOUT = 10.0  # seconds a write waits for SQLite's one writer, as the driver's conflict_timeout


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
        self.round_trips.attach(self.connection)
        self.cursor = self.connection.cursor()

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
