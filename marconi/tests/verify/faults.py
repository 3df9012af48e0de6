"""Faults a verify run injects, one class per kind, each with ``inject(run) -> detail`` that does its harm and
returns once the system is meant to be usable again (a restarted server answers), saying what it did.

Which faults a URI can have is chosen in one place, :func:`available`: killing worker processes works on any
driver whose workers are processes; killing the backend's connections by the URI's scheme (PostgreSQL
``pg_terminate_backend``, MariaDB ``KILL``, Redis ``CLIENT KILL``); killing a process inside a write transaction
on a SQLite file. Faults that need a server the caller owns (restarting it, failing over a Redis Cluster
master) are built by whoever owns it, a test or a script, and passed to the run next to these.

Connection faults reach only the URI's own database (PostgreSQL and MariaDB: connections to that database;
Redis: clients of that database number), never the verifier's own connection.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from marconi.tests import servers


class Fault(Protocol):
    """One kind of fault. ``inject`` gets the run (``kill_worker``, ``plan``) and returns what it did."""

    def inject(self, run: Any) -> str: ...


@dataclass(frozen=True)
class KillWorker:
    """SIGKILL a worker process of ``kind`` (producer, consumer) mid-run, wherever it is; a successor starts."""

    kind: str

    def inject(self, run: Any) -> str:
        detail: str = run.kill_worker(self.kind)
        return detail


@dataclass(frozen=True)
class TerminateBackends:
    """PostgreSQL: ``pg_terminate_backend`` every other connection to the URI's database."""

    uri: str

    def inject(self, run: Any) -> str:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.uri)
        with psycopg.connect(
            host=url.host or "localhost",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
        ) as connection:
            killed = connection.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()
        return f"pg_terminate_backend: {killed[0] if killed else 0} connections to {url.database}"


@dataclass(frozen=True)
class KillConnections:
    """MariaDB / MySQL: ``KILL`` every other connection using the URI's database."""

    uri: str

    def inject(self, run: Any) -> str:
        import pymysql
        from sqlalchemy.engine import make_url

        url = make_url(self.uri)
        connection = pymysql.connect(
            host=url.host or "localhost",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            database=url.database,
            autocommit=True,
        )
        killed = 0
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
                )
                for (thread,) in cursor.fetchall():
                    try:
                        cursor.execute("KILL %s", (int(thread),))
                        killed += 1
                    except pymysql.err.OperationalError:  # gone already
                        pass
        finally:
            connection.close()
        return f"KILL: {killed} connections to {url.database}"


@dataclass(frozen=True)
class ClientKill:
    """Redis: ``CLIENT KILL ID`` every other client of the URI's database number."""

    uri: str

    def inject(self, run: Any) -> str:
        import redis

        client = redis.Redis.from_url(self.uri)
        try:
            database = client.connection_pool.connection_kwargs.get("db", 0)
            mine = client.client_id()
            killed = 0
            for entry in client.client_list():
                if int(entry.get("db", -1)) == int(database) and int(entry["id"]) != mine:
                    killed += int(client.execute_command("CLIENT", "KILL", "ID", entry["id"]) or 0)
        finally:
            client.close()
        return f"CLIENT KILL: {killed} clients of db {database}"


def _hold_write_transaction(path: str, ready: Any) -> None:
    """Take SQLite's write lock and, inside the transaction, delete every row of every table; then wait to die."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        connection.execute(f'DELETE FROM "{table.replace(chr(34), chr(34) * 2)}"')  # names from the schema itself
    ready.set()
    time.sleep(3600)


@dataclass(frozen=True)
class KillSqliteWriter:
    """SQLite: a process takes the file's write lock, deletes every row inside its transaction, and is SIGKILLed
    before it commits; nothing of it may survive, and the workers' writes go on once the lock is free."""

    path: str
    patience: float = 30.0

    def inject(self, run: Any) -> str:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        writer = context.Process(target=_hold_write_transaction, args=(self.path, ready), daemon=True)
        writer.start()
        try:
            if not ready.wait(self.patience):
                return "the writer never got the write lock"
            os.kill(writer.pid or 0, signal.SIGKILL)
        finally:
            writer.join(10)
            if writer.is_alive():
                writer.kill()
        return f"SIGKILLed pid {writer.pid} inside a write transaction that had deleted every row"


@dataclass(frozen=True)
class RestartServer:
    """A server the caller owns, SIGKILLed and started again on its directory (Redis with AOF, SecantusDB)."""

    server: servers.Server

    def inject(self, run: Any) -> str:
        pid = self.server.pid
        self.server.kill()
        self.server.start()
        return f"SIGKILLed {self.server.name} (pid {pid}), started again on its directory (pid {self.server.pid})"


def replication(port: int) -> dict[str, str]:
    lines = servers.redis_command(port, "INFO", "replication").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


@dataclass
class FailOver:
    """A Redis Cluster the caller owns: a master with a replica is SIGKILLed; once its replica has taken over,
    it is started again and rejoins as a replica (the run goes on meanwhile)."""

    cluster: servers.RedisCluster
    timeout: float = 60.0

    def inject(self, run: Any) -> str:
        nodes = [node for node in self.cluster.nodes if node.port is not None and node.process is not None]
        masters = [node for node in nodes if replication(node.port or 0).get("role") == "master"]
        victim = run.rng.choice(masters)
        replica = next(node for node in nodes if replication(node.port or 0).get("master_port") == str(victim.port))
        victim.kill()
        servers.wait_until(lambda: replication(replica.port or 0)["role"] == "master", self.timeout, "the failover")
        victim.start()
        servers.wait_until(
            lambda: replication(victim.port or 0).get("master_link_status") == "up", self.timeout, "the rejoin"
        )
        return f"SIGKILLed master {victim.name}; {replica.name} took over; {victim.name} rejoined as its replica"


#: Fault makers by URI scheme (the part before ``+``): what the backend's connections are killed with.
CONNECTION_FAULTS: dict[str, Callable[[str], Fault]] = {
    "postgresql": TerminateBackends,
    "postgres": TerminateBackends,
    "mysql": KillConnections,
    "mariadb": KillConnections,
    "redis": ClientKill,
}


def sqlite_file(uri: str) -> str | None:
    """The file of a ``sqlite:///path`` URI; None for an in-memory database."""
    parts = urlsplit(uri)
    if parts.scheme.split("+")[0] != "sqlite" or parts.path in ("", "/", "/:memory:"):
        return None
    return parts.path[1:]


def available(uri: str, processes: bool = True) -> dict[str, Fault]:
    """The faults a run on ``uri`` can have by itself (``processes``: its workers are processes)."""
    faults: dict[str, Fault] = {}
    if processes:
        faults["kill-producer"] = KillWorker("producer")
        faults["kill-consumer"] = KillWorker("consumer")
    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme in CONNECTION_FAULTS:
        faults["connections"] = CONNECTION_FAULTS[scheme](uri)
    path = sqlite_file(uri)
    if path is not None:
        faults["kill-writer"] = KillSqliteWriter(path)
    return faults
