"""The raw floor on MariaDB/MySQL: PyMySQL, single statements in autocommit, transactions on a second
connection whose transactions start implicitly (no BEGIN sent)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from ..contenders import PROJECT, Item
from . import QueueMissing, SQLFloor


class MySQLFloor(SQLFloor):
    dialect = "mysql"

    def connect(self) -> None:
        url = self.url
        arguments: dict[str, Any] = {
            "host": url.host or "localhost",
            "port": url.port or 3306,
            "user": url.username or "root",
            "password": url.password or "",
            "database": url.database,
            "charset": "utf8mb4",
        }
        self.auto_connection = pymysql.connect(**arguments, autocommit=True)
        self.tx_connection = pymysql.connect(**arguments, autocommit=False)
        for connection in (self.auto_connection, self.tx_connection):
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            self.round_trips.attach(connection)
        self.auto_cursor = self.auto_connection.cursor()
        self.tx_cursor = self.tx_connection.cursor()

    def auto(self) -> Any:
        return self.auto_cursor

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        try:
            yield self.tx_cursor
        except BaseException:
            self.tx_connection.rollback()
            raise
        self.tx_connection.commit()

    def advance(self, cursor: Any, queue: str, n: int) -> tuple[int, int, int] | None:
        params = {"n": n, "project": PROJECT, "queue": queue}
        if not cursor.execute(self.statement("advance"), params):
            return None
        cursor.execute(self.statement("counters"), params)
        row = cursor.fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def _take(self, queue: str, limit: int, claim: bool) -> tuple[dict[str, Any], builtins.list[Any]]:
        terms = self.claim_terms(queue, limit)
        with self.transaction() as cursor:
            cursor.execute(self.statement("lock_eligible"), terms)
            rows = list(cursor.fetchall())
            if rows:
                numbers = {f"n{i}": row[1] for i, row in enumerate(rows)}
                params = {**terms, **numbers, "queue_id": rows[0][0]}
                if claim:
                    cursor.execute(self.statement("mark_claimed", len(rows)), params)
                    cursor.execute(self.statement("record_claim"), params)
                else:
                    cursor.execute(self.statement("remove", len(rows)), params)
        if not rows and self.queue_id(queue) is None:
            raise QueueMissing(queue)
        return terms, rows

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        terms, rows = self._take(queue, limit, claim=True)
        if not rows:
            return None, []
        return terms["claim"], self.items([(q, n, p, b) for q, n, p, b in rows])

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        _, rows = self._take(queue, limit, claim=False)
        return self.items([(q, n, p, b) for q, n, p, b in rows])

    def facts(self) -> dict[str, Any]:
        return {**self.settings(), "commit_ms": self.commit_ms()}

    def settings(self) -> dict[str, Any]:
        settings = ("innodb_flush_log_at_trx_commit", "sync_binlog", "log_bin", "innodb_doublewrite")
        cursor = self.auto_cursor
        cursor.execute("SELECT VERSION(), " + ", ".join(f"@@{name}" for name in settings))
        row = cursor.fetchone()
        server = "MariaDB" if "mariadb" in str(row[0]).lower() else "MySQL"
        return {"server": f"{server} {row[0]}", "durability": dict(zip(settings, row[1:], strict=True))}

    def close(self) -> None:
        self.auto_connection.close()
        self.tx_connection.close()
