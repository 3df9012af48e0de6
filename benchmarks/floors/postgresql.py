"""The raw floor on PostgreSQL: psycopg 3 in autocommit, one statement per operation but for a post."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ..contenders import Item
from . import QueueMissing, SQLFloor

_COLUMNS = "queue_id, number, position, client, body, created, expires, visible_at, claim_id, claim_expires"


def conninfo(url: Any) -> dict[str, Any]:
    """psycopg's connection arguments for a SQLAlchemy URL."""
    found = {"host": url.host, "port": url.port, "user": url.username, "password": url.password, "dbname": url.database}
    return {key: value for key, value in found.items() if value is not None} | dict(url.query)


class PostgreSQLFloor(SQLFloor):
    dialect = "postgresql"

    def connect(self) -> None:
        self.connection = psycopg.connect(**conninfo(self.url), autocommit=True)
        self.connection.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self.connection.execute("SET enable_bitmapscan = off")  # as the driver: ranges read in index order
        self.round_trips.attach(self.connection)
        self.cursor = self.connection.cursor()

    def auto(self) -> Any:
        return self.cursor

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        with self.connection.transaction():
            yield self.cursor

    def insert_rows(self, cursor: Any, rows: builtins.list[tuple[Any, ...]]) -> None:
        with cursor.copy(f"COPY {self.prefix}messages ({_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        terms = self.claim_terms(queue, limit)
        self.cursor.execute(self.statement("claim"), terms)
        rows = self.cursor.fetchall()
        if not rows:
            if self.queue_id(queue) is None:
                raise QueueMissing(queue)
            return None, []
        return terms["claim"], self.items(rows)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        self.cursor.execute(self.statement("pop"), self.claim_terms(queue, limit))
        return self.items(self.cursor.fetchall())

    def facts(self) -> dict[str, Any]:
        return {**self.settings(), "commit_ms": self.commit_ms()}

    def settings(self) -> dict[str, Any]:
        settings = ("synchronous_commit", "fsync", "full_page_writes", "wal_sync_method", "shared_buffers")
        row = self.cursor.execute(
            "SELECT version(), " + ", ".join(f"current_setting('{name}')" for name in settings)
        ).fetchone()
        assert row is not None
        return {"server": row[0].split(" on ")[0], "durability": dict(zip(settings, row[1:], strict=True))}

    def close(self) -> None:
        self.connection.close()
