"""The Redis driver: the storage contract on Redis 7 or a Redis Cluster, one Lua script per operation.

URIs (redis-py's forms, checked part by part; see ``urls.py``)::

    redis://[[user]:password@]host[:port][/db]     a server, or any node of a Redis Cluster (found out on connect;
                                                   a cluster has database 0 only)
    rediss://...                                   the same over TLS (ssl_* query options)
    unix:///path/to/redis.sock[?db=N]              a server on a Unix socket

Query options: ``db``, ``socket_timeout``, ``socket_connect_timeout``, ``socket_keepalive``, ``max_connections``,
``client_name``, ``username``, ``password`` (and ``ssl_*`` for rediss); any other is ``InvalidInput``. A pooled
connection the server closed is noticed when it is taken from the pool and opened again before anything is
sent, so no health-check PING is needed.

Capabilities: fifo, observer_once, claims, delay, pop, durable (messages live in the server, not in the process
that posted them), multiprocess.

Options: the core ones; ``key_prefix`` (default ``marconi``: every key this driver writes starts with it, so two
prefixes on one database are two independent stores); ``wait_replicas`` (default 0) and ``wait_timeout``
(default 1 s): with ``wait_replicas=N`` every post is followed, on the same connection and in the same round
trip, by ``WAIT N``, and is acknowledged only once N replicas hold it; fewer within ``wait_timeout`` is
``BackendError`` (the message may be visible, and may be lost if the primary fails); ``wait_timeout`` must be
shorter than the socket timeout (redis-py's 5 s unless the URI says otherwise).

Durability is the server's: with ``--save ""`` and no AOF (this project's test server) an acknowledged post
lives in memory only and does not survive a restart of the server; with ``appendonly yes`` it does (with
``appendfsync always`` also a crash of the machine; ``everysec`` may lose up to a second of posts then).
Replication is asynchronous: on a failover, a post acknowledged without ``wait_replicas`` may be lost, and
claims and deletes, which never wait, may be undone (a message may then be delivered again).

Every operation on messages and claims, and stats, is one script run in one round trip (EVALSHA, loaded on
NOSCRIPT) on the server holding the queue's hash slot; time is always the driver's clock, passed in. ``gc()``
collects every queue under the driver's key prefix, on every primary. How the keys, the scripts and the queue
index keep the contract's promises: docs/design.md, "Redis driver".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marconi.storage import validation
from marconi.storage.base import Capability, DriverBase
from marconi.storage.errors import InvalidInput
from marconi.storage.failures import Failure
from marconi.storage.hooks import Project
from marconi.storage.validation import Option

from . import backend, keys, urls
from .backend import SCRIPTS, Backend
from .claims import RedisClaims
from .keys import Keys
from .messages import RedisMessages
from .queues import RedisQueues

__all__ = ["RedisDriver"]

GC_CHUNK = 1000  # messages (and claims) per gc script run: a backlog never blocks the server for long
DEFAULT_SOCKET_TIMEOUT = 5.0  # redis-py's


class RedisDriver(DriverBase):
    """The storage contract on Redis; see the module docstring for URIs and options."""

    name = "redis"
    schemes = urls.SCHEMES
    CAPABILITIES = Capability.ALL
    ERRORS = backend.ERRORS
    PREFIX_OPTION = "key_prefix"
    OPTIONS = {
        "key_prefix": Option(keys.key_prefix, keys.DEFAULT_PREFIX, "the first part of every key the driver writes"),
        "wait_replicas": Option(
            validation.whole(0, 100), 0, "replicas that must hold each post (WAIT) before it is acknowledged"
        ),
        "wait_timeout": Option(
            lambda value, field: validation.positive_seconds(value, field, 60.0),
            1.0,
            "seconds a post waits for those replicas; fewer is BackendError",
        ),
    }

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri, **options)
        target = urls.parse(self.uri)
        socket_timeout = target.options.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
        if self.options["wait_replicas"] and self.options["wait_timeout"] >= socket_timeout:
            raise InvalidInput(
                "wait_timeout", f"must be shorter than the socket timeout ({socket_timeout:g} s), or WAIT times out"
            )
        self.keys = Keys(self.options["key_prefix"])
        self._backend: Backend | None = None
        self._backend = self.call(f"connect to {target.where}", lambda: Backend(target), idempotent=True)
        self._queue_controller = RedisQueues(self)
        self._message_controller = RedisMessages(self)
        self._claim_controller = RedisClaims(self)

    @property
    def backend(self) -> Backend:
        assert self._backend is not None
        return self._backend

    def classify(self, error: BaseException) -> Failure | None:
        return backend.classify(error, self._backend is not None and self._backend.cluster)

    @property
    def queue_controller(self) -> RedisQueues:
        return self._queue_controller

    @property
    def message_controller(self) -> RedisMessages:
        return self._message_controller

    @property
    def claim_controller(self) -> RedisClaims:
        return self._claim_controller

    def __enter__(self) -> RedisDriver:
        return self

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()

    def on_queue(self, script: str, name: str, project: Project, args: Sequence[Any]) -> Any:
        """Run a queue script on the queue's keys; its reply."""
        return self.backend.run(script, self.keys.queue(project, name), args)[0]

    def _gc(self, now: float) -> int:
        removed = 0
        server = self.backend
        for client in server.primaries():
            for page in server.scan(client, self.keys.queue_pattern()):
                bases = [Keys.base_of(key) for key in page]
                while bases:
                    groups = [[SCRIPTS["gc"].call(Keys.from_base(base), [now, GC_CHUNK])] for base in bases]
                    more = []
                    for base, (reply,) in zip(bases, server.run_many(client, groups), strict=True):
                        count, full = server.check(reply)
                        removed += int(count)
                        if full:
                            more.append(base)
                    bases = more
        return removed
