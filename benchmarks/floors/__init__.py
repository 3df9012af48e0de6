"""Raw floors: the least work that keeps the driver's guarantees, in hand-written SQL on the driver's own tables.

Each backend's floor talks to its DBAPI directly (sqlite3, psycopg 3, PyMySQL), with the statements in a sibling
``<dialect>.sql`` file (those every dialect shares are in ``common.sql``). It keeps the SQL driver's promises: a
post locks its queue row while it moves the counters and inserts the batch with one multi-row INSERT (markers
follow commit order); a page is one indexed range SELECT that reads the queue's counter in the same snapshot; a
claim takes the oldest eligible rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; taking turns on the queue row on
MariaDB, as the driver does) and records the claim row; a delete is one DELETE. What it writes, the driver reads,
and the other way round (same ids, bodies and order): the runner proves it before measuring.
"""

from __future__ import annotations

import builtins
import json
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any, ClassVar

import sqlalchemy as sa

from marconi.storage.tokens import decode_pair, encode_pair, new_claim_id

from ..contenders import (
    CLAIM_GRACE,
    CLAIM_TTL,
    CLIENT_UUID,
    MESSAGE_TTL,
    PROJECT,
    Client,
    DriverClient,
    Item,
    encode,
    fill_body,
    open_driver,
    page_marker,
)

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_NAMED = re.compile(r"%\((\w+)\)s")
FILL_CHUNK = 5000  # rows per INSERT while filling a deep queue
HOLD_CLAIM = 100  # messages per claim holding a deep queue's head (a claim's largest limit)


class QueueMissing(LookupError):
    """The floor found no such queue."""


#: What ``{unclaimed}`` and ``{holder}`` stand for in a statement.
UNCLAIMED = "AND (claim_expires IS NULL OR claim_expires <= %(now)s)"
HELD_BY_CLAIM = "AND claim_id = %(claim)s AND claim_expires > %(now)s"


@cache
def statements(dialect: str, prefix: str) -> dict[str, str]:
    """The named statements of ``common.sql`` and ``<dialect>.sql`` (which wins), tables named with ``prefix``."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", prefix) is None:
        raise ValueError(f"not a table prefix: {prefix!r}")
    found = {}
    for source in ("common", dialect):
        for name, text in named(f"{source}.sql").items():
            found[name] = text.replace("{p}", prefix)
    return found


def named(filename: str) -> dict[str, str]:
    """The sections of a file beside this module, each named by a ``-- name: NAME`` line, without comment lines."""
    parts = _NAME.split(files(__package__).joinpath(filename).read_text())
    found = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if line.strip() and not line.startswith("--")]
        found[name] = "\n".join(lines)
    return found


def drop_tables(target: str, prefix: str) -> None:
    """Drop the run's tables (the SQL driver's schema under ``prefix``), if they exist."""
    from marconi_drivers.sql import schema
    from marconi_drivers.sql.urls import resolve

    engine = sa.create_engine(resolve(target))
    try:
        schema.Tables(prefix).metadata.drop_all(engine, checkfirst=True)
    finally:
        engine.dispose()


class SQLDriverClient(DriverClient):
    """The SQL driver; a deep queue is filled through its backend's floor (the bulk path), then read by the driver."""

    cleanup_removes_queues = True

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        drop_tables(target, prefix)

    def _floor(self) -> SQLFloor:
        from ..contenders import CONTENDERS, backend_of, resolve

        entry = next(entry for entry in CONTENDERS[backend_of(self.target)] if entry.role == "floor")
        floor: SQLFloor = resolve(entry.client)(self.target, self.prefix)
        return floor

    def fill(self, queue: str, count: int, held: int, size: int) -> builtins.list[tuple[str, builtins.list[int]]]:
        floor = self._floor()
        try:
            return floor.fill(queue, count, held, size)
        finally:
            floor.close()

    def facts(self) -> dict[str, Any]:
        floor = self._floor()
        try:
            return floor.facts()
        finally:
            floor.close()


class SQLFloor(Client):
    """The floor's operations, shared by the dialects; each dialect connects and runs transactions its own way."""

    dialect: ClassVar[str] = ""
    cleanup_removes_queues = True

    def __init__(self, target: str, prefix: str, **options: Any) -> None:
        super().__init__(target, prefix)
        self.url = sa.make_url(target)
        self.sql = statements(self.dialect, prefix)
        self._statements: dict[tuple[str, int, str], str] = {}
        self.connect()

    @classmethod
    def prepare(cls, target: str, prefix: str, **options: Any) -> dict[str, Any]:
        open_driver(target, prefix).close()  # the driver creates its tables: the floor works on them
        return {}

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        drop_tables(target, prefix)

    # -- what a dialect provides ---------------------------------------------------------------------------------

    def connect(self) -> None:
        raise NotImplementedError

    def auto(self) -> Any:
        """A cursor whose every statement commits on its own."""
        raise NotImplementedError

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        """A cursor in one transaction, committed at the end (rolled back on an error)."""
        raise NotImplementedError
        yield

    def advance(self, cursor: Any, queue: str, n: int) -> tuple[int, int, int] | None:
        """Lock the queue row and move both counters by ``n``; (id, last_position, last_number) after."""
        cursor.execute(self.statement("advance"), {"n": n, "project": PROJECT, "queue": queue})
        row = cursor.fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def insert_rows(self, cursor: Any, rows: builtins.list[tuple[Any, ...]]) -> None:
        """Bulk-insert fill rows (all columns of ``fill_row``)."""
        cursor.executemany(self.statement("fill_row"), rows)

    def facts(self) -> dict[str, Any]:
        """The server's version and durability settings (``server``, ``durability``)."""
        return {}

    def commit_ms(self, commits: int = 30) -> float:
        """The median time of a one-row autocommitted INSERT: the price of a commit on this machine's disk."""
        cursor = self.auto()
        cursor.execute(self.statement("probe_create"))
        try:
            times = []
            for _ in range(commits):
                start = time.perf_counter()
                cursor.execute(self.statement("probe_insert"))
                times.append((time.perf_counter() - start) * 1000)
        finally:
            cursor.execute(self.statement("probe_drop"))
        return round(statistics.median(times), 3)

    # -- statements ------------------------------------------------------------------------------------------------

    def statement(self, name: str, numbers: int = 0, condition: str = "") -> str:
        """The named statement, with ``numbers`` placeholders for its ``{numbers}`` list and ``condition`` (UNCLAIMED,
        HELD_BY_CLAIM or nothing) for its ``{unclaimed}`` or ``{holder}``."""
        key = (name, numbers, condition)
        found = self._statements.get(key)
        if found is None:
            text = self.sql[name].replace("{unclaimed}", condition).replace("{holder}", condition)
            if numbers:
                text = text.replace("{numbers}", ", ".join(f"%(n{i})s" for i in range(numbers)))
            found = self._statements[key] = self.placeholders(text)
        return found

    def placeholders(self, text: str) -> str:
        return text

    def insert(self, n: int) -> str:
        key = ("insert", n, "")
        found = self._statements.get(key)
        if found is None:
            text = self.sql["insert"] + " " + ", ".join([self.sql["insert_row"]] * n)
            found = self._statements[key] = self.placeholders(text)
        return found

    # -- the operations ----------------------------------------------------------------------------------------

    def create_queue(self, queue: str) -> None:
        self.auto().execute(self.statement("create_queue"), {"project": PROJECT, "queue": queue})

    def queue_id(self, queue: str) -> int | None:
        cursor = self.auto()
        cursor.execute(self.statement("queue_id"), {"project": PROJECT, "queue": queue})
        row = cursor.fetchone()
        return None if row is None else int(row[0])

    def delete_queue(self, queue: str) -> None:
        queue_id = self.queue_id(queue)
        if queue_id is None:
            return
        with self.transaction() as cursor:
            for name in ("drop_messages", "drop_claims", "drop_queue"):
                cursor.execute(self.statement(name), {"queue_id": queue_id})

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        n, now = len(bodies), time.time()
        with self.transaction() as cursor:
            counters = self.advance(cursor, queue, n)
            if counters is None:
                raise QueueMissing(queue)
            queue_id, last_position, last_number = counters
            first_number, first_position = last_number - n + 1, last_position - n + 1
            values: builtins.list[Any] = []
            for i, body in enumerate(bodies):
                values += (queue_id, first_number + i, first_position + i, CLIENT_UUID, encode(body), now)
                values += (now + MESSAGE_TTL, now)
            cursor.execute(self.insert(n), values)
        return [encode_pair(queue_id, first_number + i) for i in range(n)]

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        after = decode_pair(marker) if marker is not None else None
        start = after[1] if after is not None else 0
        queue_id, last_position, rows = self._page(queue, start, limit, include_claimed)
        if after is not None and after[0] != queue_id and start > 0:  # a marker of an earlier incarnation
            start = 0
            queue_id, last_position, rows = self._page(queue, start, limit, include_claimed)
        items = [Item(encode_pair(queue_id, number), json.loads(body)) for number, _, body in rows]
        return items, page_marker(queue_id, start, limit, [position for _, position, _ in rows], last_position)

    def _page(self, queue: str, after: int, limit: int, include_claimed: bool) -> tuple[int, int, builtins.list[Any]]:
        cursor = self.auto()
        params = {"project": PROJECT, "queue": queue, "after": after, "now": time.time(), "limit": limit}
        cursor.execute(self.statement("page", condition="" if include_claimed else UNCLAIMED), params)
        head, rows = None, []
        for kind, number, position, body in cursor.fetchall():
            if kind == 0:
                head = (int(number), int(position))
            else:
                rows.append((int(number), int(position), body))
        if head is None:
            raise QueueMissing(queue)
        rows.sort(key=lambda row: row[1])
        return head[0], head[1], rows

    def claim_terms(self, queue: str, limit: int) -> dict[str, Any]:
        now = time.time()
        return {
            "project": PROJECT,
            "queue": queue,
            "claim": new_claim_id(),
            "now": now,
            "ttl": CLAIM_TTL,
            "expires": now + CLAIM_TTL,
            "floor": now + CLAIM_TTL + CLAIM_GRACE,
            "limit": limit,
        }

    @staticmethod
    def items(rows: builtins.list[Any]) -> builtins.list[Item]:
        """(queue_id, number, position, body) rows, in position order."""
        ordered = sorted(rows, key=lambda row: int(row[2]))
        return [Item(encode_pair(int(q), int(n)), json.loads(body)) for q, n, _, body in ordered]

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        ref = decode_pair(message_id)
        if ref is None:
            return
        params = {"queue_id": ref[0], "number": ref[1], "now": time.time(), "project": PROJECT, "queue": queue}
        if claim is not None:
            params["claim"] = claim
        self.auto().execute(self.statement("delete", condition=HELD_BY_CLAIM if claim else UNCLAIMED), params)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        refs = [ref for ref in map(decode_pair, message_ids) if ref is not None]
        if not refs:
            return
        queue_id = refs[0][0]
        numbers = [number for incarnation, number in refs if incarnation == queue_id]
        params: dict[str, Any] = {"queue_id": queue_id, "now": time.time(), "project": PROJECT, "queue": queue}
        params.update({f"n{i}": number for i, number in enumerate(numbers)})
        if claim is not None:
            params["claim"] = claim
        condition = HELD_BY_CLAIM if claim else UNCLAIMED
        self.auto().execute(self.statement("bulk_delete", len(numbers), condition), params)

    def fill(self, queue: str, count: int, held: int, size: int) -> builtins.list[tuple[str, builtins.list[int]]]:
        now = time.time()
        queue_id = self.queue_id(queue)
        if queue_id is None:
            raise QueueMissing(queue)
        holds: builtins.list[tuple[str, builtins.list[int]]] = []
        with self.transaction() as cursor:
            counters = self.advance(cursor, queue, count)
            assert counters is not None
            _, last_position, last_number = counters
            first_number, first_position = last_number - count + 1, last_position - count + 1
            rows: builtins.list[tuple[Any, ...]] = []
            claim: str | None = None
            for i in range(count):
                if i < held and i % HOLD_CLAIM == 0:
                    claim = new_claim_id()
                    holds.append((claim, []))
                if i < held:
                    holds[-1][1].append(i)
                held_by = (claim, now + CLAIM_TTL) if i < held else (None, None)
                text = encode(fill_body(i, size))
                row = (queue_id, first_number + i, first_position + i, CLIENT_UUID, text, now, now + MESSAGE_TTL, now)
                rows.append(row + held_by)
                if len(rows) == FILL_CHUNK:
                    self.insert_rows(cursor, rows)
                    rows = []
            if rows:
                self.insert_rows(cursor, rows)
            claims = [(claim_id, queue_id, CLAIM_TTL, now, now + CLAIM_TTL) for claim_id, _ in holds]
            if claims:
                cursor.executemany(self.statement("fill_claim"), claims)
        cursor = self.auto()
        cursor.execute(self.statement("analyze"))
        if cursor.description is not None:  # MariaDB's ANALYZE TABLE answers with a result set
            cursor.fetchall()
        return holds
