"""The Redis server (or Redis Cluster) behind a driver: where each key lives, one round trip per call, and what
the client's errors mean.

Guarantees:

- :meth:`Backend.run` sends a script (EVALSHA, its text loaded once per server on NOSCRIPT) and any commands
  that must follow it on the same connection (``WAIT``) in one write, and reads every reply: one round trip.
  A script whose server answered NOSCRIPT did not run, so it is sent again after the load; nothing else is ever
  sent twice. redis-py's own retries are switched off: what may be retried is the core's decision
  (``marconi.storage.failures``), made from :func:`classify`.
- A failure to reach the server, before anything was sent, is :class:`Unsent`; a connection lost after sending
  is redis-py's ``ConnectionError`` or ``TimeoutError``: the script may have run.
- On a cluster every call goes to the primary of its key's slot. A ``MOVED`` reply patches the slot map, a lost
  node or a ``CLUSTERDOWN``/``READONLY`` reply has the map read again before the next call; those replies mean the
  script did not run, so the call is retried within ``conflict_timeout`` (a failover takes a few seconds).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from redis import exceptions as rx
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from marconi.storage.errors import InvalidInput
from marconi.storage.failures import ErrorPolicy, Failure

from .urls import Target

Command = tuple[Any, ...]

#: Scripts run on a project's queue index, not on a queue: they take no prelude.
INDEX_SCRIPTS = ("index_add", "index_list", "index_remove")
QUEUE_SCRIPTS = (
    "post",
    "list",
    "claim",
    "claim_get",
    "claim_update",
    "claim_release",
    "delete",
    "bulk_delete",
    "bulk_get",
    "pop",
    "stats",
    "gc",
    "queue_upsert",
    "queue_drop",
)


class Unsent(rx.ConnectionError):
    """The server could not be reached: nothing was sent."""


@dataclass(frozen=True)
class Script:
    """A Lua script of the driver, sent by its SHA1 (EVALSHA) and loaded by its text when a server lacks it."""

    name: str
    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())

    def call(self, keys: Sequence[str], args: Sequence[Any]) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


def _source(name: str) -> str:
    return importlib.resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")


def load_scripts() -> dict[str, Script]:
    """Every script, by name, from the ``.lua`` files beside this module (queue scripts after ``lib.lua``)."""
    prelude = _source("lib")
    scripts = {name: Script(name, _source(name)) for name in INDEX_SCRIPTS}
    scripts.update({name: Script(name, f"{prelude}\n{_source(name)}") for name in QUEUE_SCRIPTS})
    return scripts


SCRIPTS = load_scripts()

# -- what redis-py's exceptions mean ---------------------------------------------------------------------------

#: Refused by the server before anything ran, and worth asking again: the dataset is loading, a slot moved or is
#: migrating, the cluster is failing over or a replica answered, the pool is full, a script is running too long.
_NOT_RUN = (
    rx.BusyLoadingError,
    rx.AskError,  # MovedError too
    rx.TryAgainError,
    rx.ClusterDownError,  # MasterDownError too
    rx.ReadOnlyError,
    rx.MaxConnectionsError,
    rx.SlotNotCoveredError,
)
_NOT_RUN_CODES = frozenset({"BUSY", "NOREPLICAS"})
_CONFIGURATION = (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError)

#: A standalone server: one that cannot be reached is tried again once, at once.
ERRORS = ErrorPolicy(
    retry=_NOT_RUN,
    reconnect=(Unsent,),
    lost=(rx.ConnectionError, rx.TimeoutError),
    backend=(rx.RedisError, rx.RedisClusterException),
)
#: A cluster: a node that cannot be reached (or a slot map that cannot be read) is a failover under way, retried
#: within conflict_timeout.
CLUSTER_ERRORS = ErrorPolicy(
    retry=(*_NOT_RUN, Unsent, rx.RedisClusterException),
    lost=(rx.ConnectionError, rx.TimeoutError),
    backend=(rx.RedisError,),
)


def classify(error: BaseException, cluster: bool) -> Failure | None:
    """What a redis-py exception raised by :class:`Backend` means (see ``marconi.storage.failures``)."""
    if isinstance(error, _CONFIGURATION):
        return Failure.FATAL
    if isinstance(error, rx.ResponseError) and str(error).split(" ", 1)[0] in _NOT_RUN_CODES:
        return Failure.RETRY  # redis-py has no class for these: the reply's first word tells
    return (CLUSTER_ERRORS if cluster else ERRORS).classify(error)


# -- the connection --------------------------------------------------------------------------------------------

#: redis-py retries nothing: an EVALSHA whose reply was lost may have run.
_NO_RETRY = Retry(NoBackoff(), 0)


def _client_options(target: Target) -> dict[str, Any]:
    # RESP2 whatever redis-py's default (3 from redis-py 8): the same replies and handshake with every redis-py
    # the extra allows, and no push messages on the driver's connections.
    return {"decode_responses": True, "retry": _NO_RETRY, "protocol": 2, **target.options}


def exchange(client: redis.Redis, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` on one pooled connection in one write and read every reply (error replies as
    exceptions in the list): one round trip. Unsent if no connection could be made."""
    pool = client.connection_pool
    try:
        connection: Any = pool.get_connection()  # redis-py's Connection is untyped
    except (rx.BusyLoadingError, rx.MaxConnectionsError, *_CONFIGURATION):
        raise
    except (rx.ConnectionError, rx.TimeoutError) as error:
        raise Unsent(str(error)) from error
    try:
        connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except rx.ResponseError as error:
                replies.append(error)
        return replies
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


class Backend:
    """One Redis server, or the primaries of a Redis Cluster, found from one URI."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cluster: Any = None  # a RedisCluster (partly untyped) once the server says it is a cluster node
        self._stale = False
        self._lock = threading.Lock()
        self._client = self._standalone()
        try:
            try:
                info = self.call(self._client, ("INFO", "cluster"))[0]
            except rx.ResponseError as error:  # SELECT, on connecting, refused the database
                raise self._no_such_database(error) from None
            if "cluster_enabled:1" in str(info):
                self._client.close()
                self._cluster = self._connect_cluster()
        except BaseException:
            self.close()
            raise

    @property
    def cluster(self) -> bool:
        return self._cluster is not None

    @property
    def topology(self) -> Any:
        """redis-py's ``RedisCluster`` holding the slot map (for tests and instrumentation); None on one server."""
        return self._cluster

    def _standalone(self) -> redis.Redis:
        target = self.target
        if target.path is not None:
            return redis.Redis(unix_socket_path=target.path, db=target.db, **_client_options(target))
        assert target.host is not None and target.port is not None
        return redis.Redis(host=target.host, port=target.port, db=target.db, **_client_options(target))

    def _no_such_database(self, error: rx.ResponseError) -> Exception:
        target, text = self.target, str(error)
        if "cluster mode" in text:
            return InvalidInput(
                "uri", f"names database {target.db}, but {target.where} is a Redis Cluster node (database 0 only)"
            )
        if "DB index" in text:
            return InvalidInput("uri", f"names database {target.db}, which {target.where} does not have ({text})")
        return error

    def _connect_cluster(self) -> RedisCluster:
        target = self.target
        if target.path is not None:
            raise InvalidInput("uri", f"names {target.path}, a Redis Cluster node: use redis://host:port for a cluster")
        if target.db_named and target.db != 0:
            raise InvalidInput(
                "uri", f"names database {target.db}, but {target.where} is a Redis Cluster node (database 0 only)"
            )
        options = _client_options(target)
        retry = options.pop("retry")
        assert target.port is not None
        return RedisCluster(host=target.host, port=target.port, retry=retry, require_full_coverage=True, **options)

    # -- routing -------------------------------------------------------------------------------------------------

    def client_for(self, key: str) -> redis.Redis:
        """The client of the server that holds ``key`` (on a cluster, its slot's primary)."""
        cluster = self._cluster
        if cluster is None:
            return self._client
        self._refresh()
        node = cluster.nodes_manager.get_node_from_slot(key_slot(key.encode()))
        client: redis.Redis = cluster.get_redis_connection(node)
        return client

    def primaries(self) -> list[redis.Redis]:
        """A client for every server holding keys."""
        cluster = self._cluster
        if cluster is None:
            return [self._client]
        self._refresh()
        return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]

    def _refresh(self) -> None:
        """Read the slot map again if a call found it out of date."""
        assert self._cluster is not None
        with self._lock:
            stale, self._stale = self._stale, False
        if stale:
            try:
                self._cluster.nodes_manager.initialize()
            except BaseException:
                self._stale = True
                raise

    @contextmanager
    def _watching(self) -> Iterator[None]:
        """Note what an error says about the slot map, and let the error go on."""
        try:
            yield
        except (rx.ConnectionError, rx.TimeoutError, rx.ClusterDownError, rx.ReadOnlyError):
            if self._cluster is not None:
                self._stale = True
            raise

    def check(self, reply: Any) -> Any:
        """``reply``, unless it is an error reply: then what it says about the slot map is noted and it is raised."""
        if isinstance(reply, Exception):
            if self._cluster is not None:
                if isinstance(reply, rx.MovedError):
                    self._cluster.nodes_manager.move_slot(reply)
                elif isinstance(reply, (rx.ClusterDownError, rx.ReadOnlyError)):
                    self._stale = True
            raise reply
        return reply

    # -- calls -----------------------------------------------------------------------------------------------------

    def call(self, client: redis.Redis, *commands: Command) -> list[Any]:
        """Plain commands on ``client``, in one round trip; their replies (an error reply raised)."""
        with self._watching():
            replies = exchange(client, commands)
        return [self.check(reply) for reply in replies]

    def command(self, key: str, *command: Any) -> Any:
        """One plain command on the server holding ``key``; its reply."""
        return self.call(self.client_for(key), command)[0]

    def run(self, script: str, keys: Sequence[str], args: Sequence[Any], then: Sequence[Command] = ()) -> list[Any]:
        """Run a script on the server holding ``keys`` and then ``then`` on the same connection, in one round
        trip; the script's reply, then those of ``then`` (errors raised)."""
        replies = self.run_many(self.client_for(keys[0]), [(SCRIPTS[script].call(keys, args), *then)])[0]
        return [self.check(reply) for reply in replies]

    def run_many(self, client: redis.Redis, groups: Sequence[Sequence[Command]]) -> list[list[Any]]:
        """Several groups (a script, then what follows it) on ``client`` in one round trip; each group's replies,
        errors included. A group whose script the server lacked is sent again once the scripts are loaded."""
        with self._watching():
            replies = self._split(groups, exchange(client, [command for group in groups for command in group]))
            missing = [i for i, group_replies in enumerate(replies) if isinstance(group_replies[0], rx.NoScriptError)]
            if missing:
                loads = [("SCRIPT", "LOAD", script.text) for script in SCRIPTS.values()]
                retried = [groups[i] for i in missing]
                again = exchange(client, [*loads, *(command for group in retried for command in group)])
                for load in again[: len(loads)]:
                    self.check(load)
                for i, group_replies in zip(missing, self._split(retried, again[len(loads) :]), strict=True):
                    replies[i] = group_replies
        return replies

    @staticmethod
    def _split(groups: Sequence[Sequence[Command]], replies: list[Any]) -> list[list[Any]]:
        out, at = [], 0
        for group in groups:
            out.append(replies[at : at + len(group)])
            at += len(group)
        return out

    def scan(self, client: redis.Redis, pattern: str, count: int = 1000) -> Iterator[list[str]]:
        """The keys matching ``pattern`` on ``client``'s server, a page at a time (SCAN: each key at least once)."""
        cursor = "0"
        while True:
            cursor, keys = self.call(client, ("SCAN", cursor, "MATCH", pattern, "COUNT", count))[0]
            if keys:
                yield list(keys)
            if cursor == "0":
                return

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
        self._client.close()
