"""OpenStack Zaqar's own Redis driver as Redis's peer: ``zaqar[redis]==23.0.1`` in a virtualenv of its own, driven
by ``zaqar_worker.py`` in a process of that virtualenv's Python.

The virtualenv is made once per machine from ``zaqar-requirements.txt`` (every package pinned), under
``$MARCONI_ZAQAR_VENV`` or else ``~/.cache/marconi-bench/zaqar-<hash of the requirements>``; ``make install`` makes
it (``python -m marconi_benchmarks.peers.zaqar``), and a run that finds none makes it first (it needs the package
index then). Each client starts one worker and sends it each operation as a request over a pipe; the worker
counts the redis-py writes each request makes, which are this client's round trips. A request's own cost
between the processes (tens of microseconds) is measured, and reported as the peer's ``ipc_us``: it is part of
every Zaqar latency in the table, and never of the driver's.

Zaqar keeps a queue's keys under its project (``<project>.<queue>...``) and its messages and claims under their
UUIDs: every run gives Zaqar a project of its own (the run's prefix), deletes each queue's claims and then the
queue through Zaqar, and at the end removes whatever is left under the project.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from importlib.resources import files
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..contenders import Client, Item

STARTUP = 60.0  # seconds a worker may take to import Zaqar and connect
REQUIREMENTS = "zaqar-requirements.txt"


class ZaqarUnavailable(RuntimeError):
    """Zaqar's virtualenv could not be made, or its worker did not start."""


def requirements() -> str:
    return files(__package__).joinpath(REQUIREMENTS).read_text()


def venv_dir() -> Path:
    found = os.environ.get("MARCONI_ZAQAR_VENV")
    if found:
        return Path(found)
    tag = hashlib.sha256(f"{sys.version_info[:2]}\n{requirements()}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "marconi-bench" / f"zaqar-{tag}"


def ensure_venv() -> Path:
    """The Python of Zaqar's virtualenv, made first if there is none (one maker at a time, others wait)."""
    where = venv_dir()
    python, done = where / "bin" / "python", where / ".installed"
    if done.exists():
        return python
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{where}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return python
        venv.create(where, with_pip=True, clear=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
            listed.write(requirements())
            listed.flush()
            install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", listed.name]
            made = subprocess.run(install, capture_output=True, text=True)
        if made.returncode != 0:
            raise ZaqarUnavailable(f"could not install Zaqar into {where}: {made.stderr.strip()[-2000:]}")
        done.write_text(requirements())
    return python


def project_of(prefix: str) -> str:
    """Zaqar's project for a run: its prefix (Zaqar's keys are ``<project>.<queue>``, so no dot in it)."""
    return f"{prefix}zaqar"


class ZaqarPeer(Client):
    ops = frozenset({"post", "list", "claim", "delete", "bulk_delete", "pop"})

    def __init__(self, target: str, prefix: str, **options: Any) -> None:
        super().__init__(target, prefix)
        worker = Path(__file__).with_name("zaqar_worker.py")
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [str(ensure_venv()), "-I", str(worker), target, project_of(prefix)],  # -I: not this directory on sys.path
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.replies = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        try:
            self._answer(STARTUP)
        except BaseException:
            self.close()
            raise

    @classmethod
    def prepare(cls, target: str, prefix: str, **options: Any) -> dict[str, Any]:
        python = ensure_venv()
        version = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('zaqar'), m.version('redis'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return {"zaqar": version[0], "redis_py": version[1], "venv": str(python.parent.parent)}

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        """Remove what is left under the run's project: keys, and its message sets in Zaqar's global index."""
        import redis

        project = project_of(prefix)
        client = redis.Redis.from_url(target, decode_responses=True)
        try:
            keys = list(client.scan_iter(match=f"{project}.*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            ours = [str(key) for key in client.zrange("msgset_index", 0, -1) if str(key).startswith(f"{project}.")]
            if ours:
                client.zrem("msgset_index", *ours)
        finally:
            client.close()

    def _answer(self, timeout: float) -> Any:
        if not self.replies.poll(timeout):
            raise ZaqarUnavailable(f"Zaqar's worker did not answer within {timeout:g} s{self._log_tail()}")
        try:
            kind, result, writes = self.replies.recv()
        except EOFError:
            raise ZaqarUnavailable(f"Zaqar's worker exited ({self.process.wait()}){self._log_tail()}") from None
        self.round_trips.tick(writes)
        if kind == "error":
            raise RuntimeError(f"Zaqar: {result}")
        return result

    def _log_tail(self) -> str:
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip()
        return f": {text[-2000:]}" if text else ""

    def request(self, op: str, *args: Any) -> Any:
        self.requests.send((op, args))
        return self._answer(STARTUP)

    def create_queue(self, queue: str) -> None:
        self.request("create_queue", queue)

    def delete_queue(self, queue: str) -> None:
        self.request("delete_queue", queue)

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        ids: builtins.list[str] = self.request("post", queue, bodies)
        return ids

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        page, next_marker = self.request("list", queue, marker, limit, include_claimed)
        return [Item(*pair) for pair in page], next_marker

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        claim_id, taken = self.request("claim", queue, limit)
        return claim_id, [Item(*pair) for pair in taken]

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.request("delete", queue, message_id, claim)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        self.request("bulk_delete", queue, message_ids, claim)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        return [Item(*pair) for pair in self.request("pop", queue, limit)]

    def facts(self) -> dict[str, Any]:
        """The median cost of one request between the processes, in microseconds; the database Zaqar uses."""
        times = []
        for _ in range(200):
            start = time.perf_counter()
            self.request("echo")
            times.append((time.perf_counter() - start) * 1e6)
        return {"ipc_us": round(statistics.median(times), 1), "database": self.request("database")}

    def close(self) -> None:
        try:
            self.requests.send(("close", ()))
        except OSError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.requests.close()
        self.replies.close()
        self.log.close()


def main() -> int:
    """Make Zaqar's virtualenv (if it is not made yet) and print where it is."""
    print(ensure_venv().parent.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
