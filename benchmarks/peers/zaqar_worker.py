"""Zaqar's own Redis driver, driven for marconi bench: run by the Python of Zaqar's virtualenv, not marconi's.

    <zaqar venv>/bin/python zaqar_worker.py REDIS_URI PROJECT

It imports only the standard library and Zaqar. Zaqar's ``DataDriver`` is built with oslo.config and no server
or config file (``zaqar.bootstrap`` registers the option groups; ``drivers.message_store=redis``). Messages and
claims go to the Redis ``DataDriver`` itself; queues go through Zaqar's storage pipeline, which also creates and
drops a queue's message set. Requests come as pickles on stdin (``multiprocessing.connection`` framing), each
``(op, args)``; each answer is ``("ok", result, writes)`` or ``("error", text, writes)``, where ``writes`` is the
number of redis-py writes (round trips: a command, or a whole pipeline) the request made.
"""

from __future__ import annotations

import builtins
import os
import sys
from multiprocessing.connection import Connection
from typing import Any

CLIENT_UUID = "6f0a2c4e-0000-4000-8000-0000000000be"
MESSAGE_TTL = 3600
CLAIM = {"ttl": 3600, "grace": 60}
SOCKET_TIMEOUT = 60.0  # seconds


class Writes:
    """Every write of every redis-py connection of this process, counted."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self.count = 0
        original: Any = AbstractConnection.send_packed_command

        def counted(connection: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(connection, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


def zaqar_uri(uri: str) -> str:
    """``uri`` (redis-py's form, the database in the path) in Zaqar's form: Zaqar reads the database from a
    ``dbid`` parameter and ignores the path, and its socket timeout (default 0.1 s, which a claim scanning past
    thousands of held messages outlasts) from ``socket_timeout``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    database = query.pop("db", None) or parts.path.strip("/") or "0"
    query.update({"dbid": database, "socket_timeout": query.get("socket_timeout", str(SOCKET_TIMEOUT))})
    return f"{parts.scheme}://{parts.netloc}?{urlencode(query)}"


def build(uri: str) -> Any:
    """Zaqar's storage pipeline on Redis at ``uri`` (its ``_storage`` is the Redis DataDriver)."""
    from oslo_config import cfg
    from zaqar import bootstrap
    from zaqar.conf import drivers_management_store_redis, drivers_message_store_redis

    conf = cfg.ConfigOpts()
    conf(args=[], project="zaqar", default_config_files=[])
    boot = bootstrap.Bootstrap(conf)
    conf.set_override("message_store", "redis", group="drivers")
    conf.set_override("management_store", "redis", group="drivers")
    conf.set_override("uri", zaqar_uri(uri), group=drivers_message_store_redis.GROUP_NAME)
    conf.set_override("uri", zaqar_uri(uri), group=drivers_management_store_redis.GROUP_NAME)
    return boot.storage


class Peer:
    """The operations marconi bench asks for, on Zaqar's driver; messages go back as (id, body) pairs."""

    def __init__(self, uri: str, project: str) -> None:
        self.project = project
        self.storage = build(uri)
        driver = self.storage._storage
        self.messages = driver.message_controller
        self.claims = driver.claim_controller
        self.redis = driver.connection

    def echo(self) -> None:
        """Nothing: what one request costs between the processes."""

    def database(self) -> int:
        """The Redis database Zaqar's connection uses."""
        return int(self.redis.connection_pool.connection_kwargs["db"])

    def create_queue(self, queue: str) -> None:
        self.storage.queue_controller.create(queue, project=self.project)

    def delete_queue(self, queue: str) -> None:
        """Zaqar's queue delete, after deleting the queue's claims (Zaqar leaves them to expire)."""
        from zaqar.storage.redis import utils

        claims = utils.scope_claims_set(queue, self.project, "claims")
        for claim_id in self.redis.zrange(claims, 0, -1):
            claim_id = claim_id.decode()
            self.redis.delete(claim_id, utils.scope_claim_messages(claim_id, "messages"))
        self.redis.delete(claims)
        self.storage.queue_controller.delete(queue, project=self.project)

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        messages = [{"ttl": MESSAGE_TTL, "body": body} for body in bodies]
        return list(self.messages.post(queue, messages, CLIENT_UUID, project=self.project))

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Any], str | None]:
        # marker "" for none: Zaqar's list ranks the marker it is given when include_claimed is set, and redis-py
        # refuses None.
        cursor = self.messages.list(
            queue, project=self.project, marker=marker or "", limit=limit, echo=True, include_claimed=include_claimed
        )
        page = [(message["id"], message["body"]) for message in next(cursor)]
        return page, (next(cursor) if page else marker)  # Zaqar has a next marker only after a message

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Any]]:
        claim_id, messages = self.claims.create(queue, CLAIM, project=self.project, limit=limit)
        taken = [(message["id"], message["body"]) for message in messages]
        return (claim_id if taken else None), taken

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.messages.delete(queue, message_id, project=self.project, claim=claim)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        self.messages.bulk_delete(queue, message_ids, project=self.project, claim_ids=[claim] if claim else None)

    def pop(self, queue: str, limit: int) -> builtins.list[Any]:
        return [(message["id"], message["body"]) for message in self.messages.pop(queue, limit, project=self.project)]


def serve(uri: str, project: str) -> None:
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # whatever a library prints goes to the log, never into the replies
    requests = Connection(0, writable=False)
    writes = Writes()
    peer = Peer(uri, project)
    replies.send(("ok", "ready", 0))
    while True:
        try:
            op, args = requests.recv()
        except EOFError:
            return
        if op == "close":
            return
        writes.count = 0
        try:
            result = getattr(peer, op)(*args)
        except Exception as error:
            replies.send(("error", f"{type(error).__name__}: {error}", writes.count))
        else:
            replies.send(("ok", result, writes.count))


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
