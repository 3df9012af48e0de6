"""The SQL driver's three tables, their indexes, and idempotent creation.

Guarantees: a queue's id (its incarnation) is never reused, also on SQLite; project and queue names compare
exactly (byte for byte, no case folding, no trailing-space padding) and sort by code point on every backend;
times are 8-byte floats; bodies and metadata hold what the contract allows. Creating the schema twice, or from
several processes at once, leaves one schema.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import CreateIndex, CreateTable, ExecutableDDLElement

from marconi.storage.errors import BackendError, InvalidInput
from marconi.storage.validation import describe

if TYPE_CHECKING:
    from .engine import Database

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")
_MYSQL = ("mysql", "mariadb")

#: A queue's id: BIGINT, but INTEGER on SQLite so that it is the rowid and AUTOINCREMENT applies.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.Double[float] = sa.Double()
#: JSON text: MEDIUMTEXT on MySQL-family, whose TEXT holds only 64 KiB - 1.
JSON_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL)


def exact_text(length: int) -> sa.String:
    """Text compared byte for byte: binary, no-pad collation on MySQL-family, "C" on PostgreSQL."""
    return (
        sa.String(length)
        .with_variant(sa.String(length, collation="C"), "postgresql")
        .with_variant(mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_nopad_bin"), *_MYSQL)
    )


def token(length: int) -> sa.CHAR:
    """Fixed-width ASCII tokens (client uuids, claim ids)."""
    return sa.CHAR(length).with_variant(mysql.CHAR(length, charset="ascii", collation="ascii_bin"), *_MYSQL)


def table_prefix(value: object, field: str = "table_prefix") -> str:
    """An option check: 1-41 characters of A-Z a-z 0-9 _, not starting with a digit."""
    if not isinstance(value, str) or _PREFIX.fullmatch(value) is None:
        raise InvalidInput(
            field, f"must be 1-41 characters of A-Z a-z 0-9 _ not starting with a digit, got {describe(value)}"
        )
    return value


#: How the index of messages no claim holds orders them, by backend: PostgreSQL, which has no index hints, orders
#: it by an expression that no other index serves, so no plan can walk claimed messages instead.
FREE_POSITION = {"postgresql": "(position + 0)"}


def free_index(prefix: str, kind: str) -> sa.Index:
    """Messages no claim holds, by queue and position, so claims and unclaimed pages never walk claimed rows:
    a partial index where the backend has them, else one whose middle column is NULL for exactly those."""
    name = f"{prefix}messages_unclaimed"
    if kind == "mysql":
        return sa.Index(name, "queue_id", "claim_expires", "position")
    unclaimed = sa.text("claim_expires IS NULL")
    position = sa.text(FREE_POSITION.get(kind, "position"))
    return sa.Index(name, "queue_id", position, postgresql_where=unclaimed, sqlite_where=unclaimed)


class Tables:
    """The driver's tables, named ``<prefix>queues``, ``<prefix>messages``, ``<prefix>claims``, for a backend
    ``kind`` (its index of free messages differs)."""

    def __init__(self, prefix: str = "marconi_", kind: str = "postgresql") -> None:
        self.prefix = table_prefix(prefix)
        self.kind = kind
        self.metadata = sa.MetaData()
        options: dict[str, Any] = {
            "mysql_engine": "InnoDB",
            "mysql_charset": "utf8mb4",
            "mysql_collate": "utf8mb4_bin",
            "mariadb_engine": "InnoDB",
            "mariadb_charset": "utf8mb4",
            "mariadb_collate": "utf8mb4_bin",
        }
        self.queues = sa.Table(
            f"{prefix}queues",
            self.metadata,
            sa.Column("id", ID, primary_key=True, autoincrement=True),  # the queue's incarnation
            sa.Column("project", exact_text(256), nullable=False),  # '' is project None
            sa.Column("name", exact_text(64), nullable=False),
            sa.Column("metadata", JSON_TEXT, nullable=False),
            sa.Column("last_position", sa.BigInteger, nullable=False, server_default="0"),  # marker counter
            sa.Column("last_number", sa.BigInteger, nullable=False, server_default="0"),  # message-number counter
            sa.Column("next_due", TIME, nullable=True),  # earliest visible_at of a delayed, unpromoted message
            sa.UniqueConstraint("project", "name", name=f"{prefix}queues_project_name"),
            sa.Index(f"{prefix}queues_next_due", "next_due"),
            sqlite_autoincrement=True,
            **options,
        )
        self.messages = sa.Table(
            f"{prefix}messages",
            self.metadata,
            sa.Column("queue_id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("position", sa.BigInteger, nullable=True),  # the marker; NULL while delayed
            sa.Column("client", token(36), nullable=False),
            sa.Column("body", JSON_TEXT, nullable=False),
            sa.Column("created", TIME, nullable=False),
            sa.Column("expires", TIME, nullable=False),
            sa.Column("visible_at", TIME, nullable=False),
            sa.Column("claim_id", token(32), nullable=True),
            sa.Column("claim_expires", TIME, nullable=True),
            sa.UniqueConstraint("queue_id", "position", name=f"{prefix}messages_position"),
            sa.Index(f"{prefix}messages_expires", "expires"),
            sa.Index(f"{prefix}messages_claim", "claim_id"),
            sa.Index(f"{prefix}messages_queue_expires", "queue_id", "expires"),
            sa.Index(f"{prefix}messages_queue_claim_expires", "queue_id", "claim_expires"),
            free_index(prefix, kind),
            **options,
        )
        self.free = f"{prefix}messages_unclaimed"
        self.claims = sa.Table(
            f"{prefix}claims",
            self.metadata,
            sa.Column("id", token(32), primary_key=True),
            sa.Column("queue_id", sa.BigInteger, nullable=False),
            sa.Column("ttl", sa.Integer, nullable=False),
            sa.Column("created", TIME, nullable=False),
            sa.Column("expires", TIME, nullable=False),
            sa.Index(f"{prefix}claims_expires", "expires"),
            sa.Index(f"{prefix}claims_queue", "queue_id"),
            **options,
        )


#: Indexes earlier versions of the driver made and this one replaced: dropped where found.
RETIRED_INDEXES = ("messages_free",)


def missing(connection: sa.Connection, tables: Tables) -> list[ExecutableDDLElement | sa.TextClause]:
    """The DDL for whatever of the schema is not there yet (and for retired indexes to go), found by reading the
    catalog (which locks nothing)."""
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    statements: list[ExecutableDDLElement | sa.TextClause] = []
    for table in tables.metadata.sorted_tables:
        indexes = sorted(table.indexes, key=lambda index: str(index.name))
        if table.name in existing:
            present = {index["name"] for index in inspector.get_indexes(table.name)}
            indexes = [index for index in indexes if index.name not in present]
            for retired in RETIRED_INDEXES:
                name = f"{tables.prefix}{retired}"  # our prefix and name: identifiers, checked
                if name in present:
                    on = f" ON {table.name}" if connection.dialect.name in _MYSQL else ""
                    statements.append(sa.text(f"DROP INDEX {name}{on}"))
        else:
            statements.append(CreateTable(table, if_not_exists=True))
        statements.extend(CreateIndex(index, if_not_exists=True) for index in indexes)
    return statements


def create(database: Database, tables: Tables, attempts: int = 5) -> None:
    """Create whatever is missing; an existing schema costs only catalog reads, no DDL and no table locks.

    Creating takes the tables' locks (PostgreSQL's CREATE INDEX IF NOT EXISTS does so even when the index exists),
    which would deadlock with posts in flight, hence the look first. A concurrent creator's race is retried.
    """
    with database.engine.connect() as connection:
        if not missing(connection, tables):
            return
    for attempt in range(1, attempts + 1):
        try:
            with database.engine.connect() as connection:  # autocommit: each statement on its own
                for ddl in missing(connection, tables):
                    connection.execute(ddl)
            return
        except (exc.SQLAlchemyError, BackendError):
            # Two creators raced past IF NOT EXISTS (PostgreSQL catalog rows) or a lock: look again.
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
