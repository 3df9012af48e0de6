"""pgmq on the same PostgreSQL, through its PyPI client, installed from the SQL file that client ships.

The client's ``init_extension`` is off: nothing runs ``CREATE EXTENSION``. The schema ``pgmq`` is installed when
the database has none, marked as installed by marconi's benchmark, and dropped again by the last run using it
(each run holds a shared advisory lock meanwhile) if it is so marked and holds no queue. A claim is
``read(vt, qty)``, a delete ``delete(msg_id)``, a bulk delete ``delete_batch``; pgmq cannot page through a
queue, so it takes no part in the observer workloads.
"""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from ..contenders import CLAIM_TTL, Client, Item, encode, fill_body
from ..floors.postgresql import conninfo

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('marconi-bench-pgmq'))"
#: Held (shared) by every run using the schema, from prepare to cleanup: the last one out may drop it.
_IN_USE = "SELECT pg_advisory_lock_shared(hashtext('marconi-bench-pgmq-in-use'))"
_ALONE = "SELECT pg_try_advisory_lock(hashtext('marconi-bench-pgmq-in-use'))"
_users: dict[tuple[str, str], psycopg.Connection[Any]] = {}
_MARK = "installed by marconi bench"
_HAS_SCHEMA = "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'pgmq'"


def _connect(target: str) -> psycopg.Connection[Any]:
    import sqlalchemy as sa

    return psycopg.connect(**conninfo(sa.make_url(target)))


def _messages(found: Any) -> builtins.list[Any]:
    """What read and pop return: a message, None, or a list (for qty > 1)."""
    return [] if found is None else list(found) if isinstance(found, list) else [found]


def _items(messages: builtins.list[Any]) -> builtins.list[Item]:
    """A read's or pop's messages in msg_id order: pgmq returns them in no particular order (RETURNING), though
    they are the oldest; sorted, they are compared with claims that hand out the oldest first, in order."""
    ordered = sorted(messages, key=lambda message: message.msg_id)
    return [Item(str(message.msg_id), message.message) for message in ordered]


class PGMQ(Client):
    ops = frozenset({"post", "claim", "delete", "bulk_delete", "pop"})
    cleanup_removes_queues = True

    def __init__(self, target: str, prefix: str, **options: Any) -> None:
        super().__init__(target, prefix)
        import sqlalchemy as sa
        from pgmq import PGMQueue

        info = " ".join(f"{key}={value}" for key, value in conninfo(sa.make_url(target)).items())
        self.pool = ConnectionPool(info, min_size=1, max_size=2, open=True, configure=self.round_trips.attach)
        self.pgmq = PGMQueue(pool=self.pool, init_extension=False)

    def name(self, queue: str) -> str:
        return f"{self.prefix}{queue}".lower()

    @classmethod
    def prepare(cls, target: str, prefix: str, **options: Any) -> dict[str, Any]:
        from pgmq.install import get_embedded_install_sql, get_embedded_sql_version

        user = _connect(target)
        user.autocommit = True
        user.execute(_IN_USE)
        _users[(target, prefix)] = user
        with _connect(target) as connection, connection.transaction():
            connection.execute(_LOCK)
            found = connection.execute(_HAS_SCHEMA).fetchone()
            if found is None:
                connection.execute(get_embedded_install_sql())
                connection.execute(f"COMMENT ON SCHEMA pgmq IS '{_MARK}'")
        return {"pgmq_sql": get_embedded_sql_version(), "installed_here": found is None}

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        """Drop this run's queues; drop the schema too if marconi installed it, no queue is left in it and no other
        run is using it."""
        user = _users.pop((target, prefix), None)
        if user is not None:
            user.close()  # releases this run's shared hold
        with _connect(target) as connection, connection.transaction():
            connection.execute(_LOCK)
            found = connection.execute(_HAS_SCHEMA).fetchone()
            if found is None:
                return
            queues = [row[0] for row in connection.execute("SELECT queue_name FROM pgmq.meta").fetchall()]
            for queue in queues:
                if queue.startswith(prefix.lower()):
                    connection.execute("SELECT pgmq.drop_queue(%s)", (queue,))
            left = connection.execute("SELECT count(*) FROM pgmq.meta").fetchone()
            if found[0] == _MARK and left is not None and left[0] == 0:
                alone = connection.execute(_ALONE).fetchone()  # session lock: released when this connection closes
                if alone is not None and alone[0]:
                    connection.execute("DROP SCHEMA pgmq CASCADE")

    def create_queue(self, queue: str) -> None:
        self.pgmq.create_queue(self.name(queue))

    def delete_queue(self, queue: str) -> None:
        self.pgmq.drop_queue(self.name(queue))

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        return [str(msg_id) for msg_id in self.pgmq.send_batch(self.name(queue), bodies)]

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        found = self.pgmq.read(self.name(queue), vt=CLAIM_TTL, qty=limit)
        messages = _messages(found)
        if not messages:
            return None, []
        return uuid.uuid4().hex, _items(messages)

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.pgmq.delete(self.name(queue), int(message_id))

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        self.pgmq.delete_batch(self.name(queue), [int(message_id) for message_id in message_ids])

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        found = self.pgmq.pop(self.name(queue), qty=limit)
        return _items(_messages(found))

    def fill(self, queue: str, count: int, held: int, size: int) -> builtins.list[tuple[str, builtins.list[int]]]:
        """COPY the messages into the queue's table; the first ``held`` invisible for CLAIM_TTL, read once."""
        table = sql.Identifier("pgmq", f"q_{self.name(queue)}")
        copy = sql.SQL("COPY {} (vt, read_ct, message) FROM STDIN").format(table)
        now = datetime.now(UTC)
        hidden_until = now + timedelta(seconds=CLAIM_TTL)
        with self.pool.connection() as connection, connection.transaction():
            with connection.cursor() as cursor, cursor.copy(copy) as writer:
                for i in range(count):
                    hidden = i < held
                    writer.write_row((hidden_until if hidden else now, int(hidden), encode(fill_body(i, size))))
        with self.pool.connection() as connection:
            connection.execute(sql.SQL("ANALYZE {}").format(table))  # as autovacuum would after so many inserts
        return [(uuid.uuid4().hex, list(range(i, min(held, i + 100)))) for i in range(0, held, 100)]

    def facts(self) -> dict[str, Any]:
        from pgmq.install import get_embedded_sql_version

        return {"pgmq_sql": get_embedded_sql_version()}

    def close(self) -> None:
        self.pool.close()
