"""Servers the tests own: started on free loopback ports, in fresh directories, with their output in a log file,
and stopped by PID.

The tests start servers beyond the machine's own (a Redis Cluster, a Redis with AOF, a MongoDB wire server)
through :class:`Server`, and ``python -m marconi.tests.servers`` runs a command with such servers up, putting
their URIs into its arguments::

    python -m marconi.tests.servers --with redis-cluster -- pytest ... --marconi-uri={redis-cluster}

Each ``--with KIND`` starts one server of a kind named in :data:`KINDS`; ``{KIND}`` in the command becomes its
URI. Each ``--database URI`` first creates a PostgreSQL or MariaDB database, unless it exists. The servers are
stopped when the command ends, however it ends, and the command's exit code is returned. A server that does not
come up in time fails loudly, with the tail of its log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TextIO

STARTUP_TIMEOUT = 60.0  # seconds a server may take to come up; only a bound against hangs


class ServerError(RuntimeError):
    """A test-owned server failed to start or stop."""


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process has not handed out before
    (the kernel may offer a port again once its probe is closed, before the server it was meant for binds it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_until(ready: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll ``ready`` until it is true; ServerError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # a server that is not up yet refuses or resets: keep polling
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"{what} was not ready after {timeout:g} s")
        time.sleep(poll)


class Server:
    """One server process: ``command`` run in ``directory`` with stdin closed and output in ``directory/server.log``.

    ``ready`` tells when it answers. ``stop`` ends it (SIGTERM, then SIGKILL), ``kill`` crashes it (SIGKILL),
    ``start`` runs it again on the same directory (a restart).
    """

    def __init__(
        self, name: str, command: Sequence[str], directory: Path, ready: Callable[[], bool], port: int | None = None
    ) -> None:
        self.name = name
        self.port = port
        self.command = list(command)
        self.directory = directory
        self.ready = ready
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    def start(self, timeout: float = STARTUP_TIMEOUT) -> Server:
        if self.process is not None and self.process.poll() is None:
            raise ServerError(f"{self.name} is already running (pid {self.process.pid})")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the tests does not reach it; we stop it ourselves
        )
        try:
            wait_until(lambda: self._alive() and self.ready(), timeout, self.name)
        except ServerError:
            tail = self.log_tail()
            self.kill()
            raise ServerError(f"{self.name} did not come up; its log ends with:\n{tail}") from None
        return self

    def _alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.process.returncode if self.process else None}")
        return True

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerError(f"{self.name} was never started")
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would; waits until the process is gone."""
        self._end(signal.SIGKILL, 0.0)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; waits until the process is gone."""
        self._end(signal.SIGTERM, grace)

    def _end(self, signum: signal.Signals, grace: float) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)
            try:
                process.wait(grace or None)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def scratch_directory(prefix: str) -> Iterator[Path]:
    """A fresh directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"marconi-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def redis_ping(port: int) -> bool:
    """True when a Redis server on 127.0.0.1:``port`` answers PING."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
        connection.sendall(b"PING\r\n")
        return connection.recv(64).startswith(b"+PONG")


def redis_server(directory: Path, port: int | None = None, *extra: str) -> Server:
    """A standalone redis-server on 127.0.0.1 (``extra``: more options, e.g. ``--appendonly yes``)."""
    port = port or free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    command += ["--save", "", "--daemonize", "no", *extra]
    return Server(f"redis-server:{port}", command, directory, lambda: redis_ping(port), port)


@contextlib.contextmanager
def _redis(directory: Path) -> Iterator[str]:
    server = redis_server(directory).start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def mongo_ping(port: int) -> bool:
    """True when a MongoDB wire-protocol server on 127.0.0.1:``port`` answers ``ping`` (its port opens earlier)."""
    import pymongo  # only the MongoDB kinds need it

    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=500)
    with client:
        return bool(client.admin.command("ping").get("ok"))


def secantusdb_server(directory: Path, port: int | None = None, *extra: str) -> Server:
    """A SecantusDB server (MongoDB wire protocol, single-node replica set) keeping its data in ``directory/data``
    (``extra``: more options, e.g. ``--sync-on-commit``)."""
    port = port or free_port()
    beside = Path(sys.executable).parent / "secantusd-py"
    program = str(beside) if beside.exists() else (shutil.which("secantusd-py") or "secantusd-py")
    command = [program, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(directory / "data"), *extra]
    return Server(f"secantusd:{port}", command, directory, lambda: mongo_ping(port), port)


def secantusdb_uri(port: int | None, database: str = "marconi") -> str:
    """A test URI: no retryable-write bookkeeping (it slows the server down as it grows), a short server selection
    timeout (a dead server fails a call in seconds, not 30)."""
    return f"mongodb://127.0.0.1:{port}/{database}?retryWrites=false&serverSelectionTimeoutMS=5000"


@contextlib.contextmanager
def _secantusdb(directory: Path) -> Iterator[str]:
    server = secantusdb_server(directory).start()
    try:
        yield secantusdb_uri(server.port)
    finally:
        server.stop()


def redis_command(port: int, *args: str) -> str:
    """One command to the Redis server on 127.0.0.1:``port``; its reply as text (a bulk reply's content)."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(arg.encode())}\r\n{arg}\r\n" for arg in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request.encode())
        reply = b""
        while b"\r\n" not in reply:
            reply += connection.recv(65536) or b"\r\n"
        head, _, rest = reply.partition(b"\r\n")
        if not head.startswith(b"$") or head == b"$-1":
            return head.decode(errors="replace")
        size = int(head[1:])
        while len(rest) < size:
            chunk = connection.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest[:size].decode(errors="replace")


class RedisCluster:
    """A Redis Cluster on 127.0.0.1: ``masters`` primaries with ``replicas`` replicas each, every node in a
    fresh directory of its own under ``directory``; ``start`` returns once every node reports cluster_state:ok."""

    def __init__(self, directory: Path, masters: int = 3, replicas: int = 0, *extra: str) -> None:
        self.directory = directory
        cluster = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        self.nodes = [
            redis_server(directory / f"node{index}", None, *cluster, "--cluster-port", str(free_port()), *extra)
            for index in range(masters * (1 + replicas))
        ]
        self.masters, self.replicas = masters, replicas

    @property
    def uri(self) -> str:
        """A plain redis:// URI of one node: the driver finds the rest."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start(timeout)
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            log = self.directory / "create.log"
            with log.open("w") as output:
                created = subprocess.run(
                    [
                        "redis-cli",
                        "--cluster",
                        "create",
                        *addresses,
                        "--cluster-replicas",
                        str(self.replicas),
                        "--cluster-yes",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            if created.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise ServerError(f"redis-cli --cluster create failed ({created.returncode}):\n{tail}")
            for node in self.nodes:
                wait_until(partial(self.reports_ok, node), timeout, f"cluster_state:ok on {node.name}")
        except BaseException:
            self.stop()
            raise
        return self

    @classmethod
    def reports_ok(cls, node: Server) -> bool:
        return cls.state(node) == "ok"

    @staticmethod
    def state(node: Server) -> str:
        """What the node's CLUSTER INFO says of the cluster (``ok``, ``fail``)."""
        assert node.port is not None
        for line in redis_command(node.port, "CLUSTER", "INFO").splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def _redis_cluster(directory: Path) -> Iterator[str]:
    cluster = RedisCluster(directory, masters=3).start()
    try:
        yield cluster.uri
    finally:
        cluster.stop()


#: What ``--with`` can start: a name, and a context manager that runs the server in a directory and yields its URI.
KINDS: dict[str, Callable[[Path], contextlib.AbstractContextManager[str]]] = {
    "redis": _redis,
    "secantusdb": _secantusdb,
    "redis-cluster": _redis_cluster,
}


def create_database(uri: str) -> None:
    """Create the database a PostgreSQL or MariaDB/MySQL URI names, unless it exists (parts of ``make test`` that
    kill every connection to their database get one of their own)."""
    import re

    from sqlalchemy.engine import make_url

    url = make_url(uri)
    name, backend = url.database or "", url.get_backend_name()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ServerError(f"{uri}: not a database name this helper creates: {name!r}")
    if backend == "postgresql":
        import psycopg
        from psycopg import sql

        host, port = url.host or "localhost", url.port or 5432
        with psycopg.connect(
            host=host, port=port, user=url.username, password=url.password, dbname="postgres", autocommit=True
        ) as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    elif backend in ("mysql", "mariadb"):
        import pymysql

        connection = pymysql.connect(
            host=url.host or "localhost",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")  # the name is checked above
        finally:
            connection.close()
    else:
        raise ServerError(f"{uri}: only PostgreSQL and MariaDB/MySQL databases are created here")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        usage = "usage: python -m marconi.tests.servers [--with KIND ...] [--database URI ...] -- COMMAND ..."
        print(usage, file=sys.stderr)
        return 2
    at = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m marconi.tests.servers")
    parser.add_argument("--with", dest="kinds", action="append", default=[], choices=sorted(KINDS))
    parser.add_argument("--database", dest="databases", action="append", default=[], metavar="URI")
    args = parser.parse_args(argv[:at])
    command = argv[at + 1 :]
    for uri in args.databases:
        create_database(uri)
    with contextlib.ExitStack() as stack:
        uris = {}
        for kind in args.kinds:
            directory = stack.enter_context(scratch_directory(kind))
            uris[kind] = stack.enter_context(KINDS[kind](directory))
            print(f"marconi.tests.servers: {kind} at {uris[kind]}", file=sys.stderr, flush=True)
        for kind, uri in uris.items():
            command = [part.replace("{" + kind + "}", uri) for part in command]
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
