"""HTTP contenders: a driver served by ``marconi serve`` (Zaqar's v2 API), against the same driver called directly.

A URI ``http+<driver URI>`` (e.g. ``http+sqlite:///tmp/bench.db``, ``http+redis://127.0.0.1:6379/5``) is a
backend of its own whose "driver" is :class:`HTTPClient`, talking HTTP/1.1 with keep-alive (``http.client``, one
connection per client) to a ``marconi serve`` the run starts on a free loopback port, and whose "floor" is
:class:`Direct`, the same driver on the same store called in-process: the ratio driver/floor is what the
transport costs. The floor proves its equivalence as any floor does (each reads what the other wrote).

The server is ``marconi serve`` with its default threads and without its garbage collector (the direct driver runs
none either), its tables or keys under the run's prefix. An HTTP client's round trips are its HTTP requests
(one per operation); the backend round trips the server makes are the driver's, counted in the direct rows.
"""

from __future__ import annotations

import builtins
import http.client
import json
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from .contenders import (
    CLAIM_GRACE,
    CLAIM_TTL,
    CLIENT_UUID,
    CONTENDERS,
    MESSAGE_TTL,
    PROJECT,
    Client,
    Item,
    backend_of,
    open_driver,
    resolve,
)

SCHEME = "http+"
STARTUP = 60.0  # seconds the server may take to answer /v2/ping
_servers: dict[tuple[str, str], Any] = {}  # (target, prefix) -> the Server this process started for a run


def inner(target: str) -> str:
    """The driver URI an ``http+`` URI serves."""
    return target.removeprefix(SCHEME)


def direct_class(target: str) -> type[Client]:
    """The client that calls the served driver directly: the driver contender of its backend."""
    backend = backend_of(inner(target))
    entry = next((entry for entry in CONTENDERS.get(backend, ()) if entry.role == "driver"), None)
    cls: type[Client] = resolve(entry.client if entry else "marconi_benchmarks.contenders:DriverClient")
    return cls


class Refused(RuntimeError):
    """The server answered with an error status."""


class HTTPClient(Client):
    @classmethod
    def configure(cls, target: str) -> dict[str, Any]:
        from marconi.tests.servers import free_port

        return {"port": free_port()}

    @classmethod
    def prepare(cls, target: str, prefix: str, port: int = 0, **options: Any) -> dict[str, Any]:
        from marconi.tests.servers import Server

        driver = open_driver(inner(target), prefix)
        try:
            if "multiprocess" not in driver.capabilities:
                raise ValueError(f"{inner(target)}: the server and the direct driver must share a store")
            option = f"{driver.PREFIX_OPTION}={prefix}"
        finally:
            driver.close()
        command = [sys.executable, "-m", "marconi.cli", "serve", inner(target), "--port", str(port), "--no-gc"]
        command += ["--option", option]
        directory = Path(tempfile.mkdtemp(prefix="marconi-bench-http-"))
        server = Server(f"marconi serve:{port}", command, directory, lambda: _pings(port), port)
        _servers[(target, prefix)] = server.start(STARTUP)
        return {"server": "marconi serve (waitress)", "port": port}

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        server = _servers.pop((target, prefix), None)
        if server is not None:
            server.stop()
        direct_class(target).cleanup(inner(target), prefix)

    def __init__(self, target: str, prefix: str, port: int = 0, **options: Any) -> None:
        super().__init__(target, prefix)
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Client-ID": CLIENT_UUID, "X-Project-ID": PROJECT, "Accept": "application/json"}

    def request(self, method: str, path: str, document: Any = None, query: dict[str, Any] | None = None) -> Any:
        """One request on the kept-alive connection: (status, headers, the JSON answer or None)."""
        url = f"/v2/queues/{path}" + (f"?{urlencode(query)}" if query else "")
        headers = dict(self.headers)
        payload = None
        if document is not None:
            payload = json.dumps(document, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        self.round_trips.tick()
        self.connection.request(method, url, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 400:
            raise Refused(f"{method} {url}: {response.status} {data.decode(errors='replace')[:500]}")
        return response, json.loads(data) if data else None

    def create_queue(self, queue: str) -> None:
        self.request("PUT", quote(queue), {})

    def delete_queue(self, queue: str) -> None:
        self.request("DELETE", quote(queue))

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        messages = [{"ttl": MESSAGE_TTL, "body": body} for body in bodies]
        _, answer = self.request("POST", f"{quote(queue)}/messages", {"messages": messages})
        return [resource.rsplit("/", 1)[1] for resource in answer["resources"]]

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        query = {"limit": limit, "echo": "true", "include_claimed": str(include_claimed).lower()}
        if marker is not None:
            query["marker"] = marker
        _, answer = self.request("GET", f"{quote(queue)}/messages", query=query)
        items = [Item(message["id"], message["body"]) for message in answer["messages"]]
        if not answer["links"]:  # an empty page has no next link: the marker stays where it was (as in Zaqar)
            return items, marker
        return items, parse_qs(urlsplit(answer["links"][0]["href"]).query)["marker"][0]

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        terms = {"ttl": CLAIM_TTL, "grace": CLAIM_GRACE}
        response, answer = self.request("POST", f"{quote(queue)}/claims", terms, {"limit": limit})
        if answer is None:  # 204: nothing to claim
            return None, []
        claim_id = response.getheader("Location").rsplit("/", 1)[1]
        return claim_id, [Item(message["id"], message["body"]) for message in answer["messages"]]

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        query = {"claim_id": claim} if claim else None
        self.request("DELETE", f"{quote(queue)}/messages/{quote(message_id)}", query=query)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        query = {"ids": ",".join(message_ids), **({"claim_ids": claim} if claim else {})}
        self.request("DELETE", f"{quote(queue)}/messages", query=query)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        _, answer = self.request("DELETE", f"{quote(queue)}/messages", query={"pop": limit})
        return [Item(message["id"], message["body"]) for message in answer["messages"]]

    def fill(self, queue: str, count: int, held: int, size: int) -> builtins.list[tuple[str, builtins.list[int]]]:
        """Through the served driver's own bulk path (what it writes, the server reads)."""
        direct = direct_class(self.target)(inner(self.target), self.prefix)
        try:
            return direct.fill(queue, count, held, size)
        finally:
            direct.close()

    def close(self) -> None:
        self.connection.close()


def _pings(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/v2/ping", headers={"Client-ID": CLIENT_UUID, "X-Project-ID": PROJECT})
        return connection.getresponse().status in (200, 204)
    finally:
        connection.close()


class Direct(Client):
    """The served driver, called in this process on the same store: the HTTP contender's floor."""

    def __init__(self, target: str, prefix: str, port: int = 0, **options: Any) -> None:
        super().__init__(target, prefix)
        self.driver = direct_class(target)(inner(target), prefix)
        self.round_trips, self.tallies = self.driver.round_trips, self.driver.tallies
        self.counts_round_trips = self.driver.counts_round_trips

    @classmethod
    def prepare(cls, target: str, prefix: str, port: int = 0, **options: Any) -> dict[str, Any]:
        return direct_class(target).prepare(inner(target), prefix)

    @classmethod
    def cleanup(cls, target: str, prefix: str, **options: Any) -> None:
        direct_class(target).cleanup(inner(target), prefix)

    def create_queue(self, queue: str) -> None:
        self.driver.create_queue(queue)

    def delete_queue(self, queue: str) -> None:
        self.driver.delete_queue(queue)

    def post(self, queue: str, bodies: builtins.list[Any]) -> builtins.list[str]:
        return self.driver.post(queue, bodies)

    def list(
        self, queue: str, marker: str | None, limit: int, include_claimed: bool
    ) -> tuple[builtins.list[Item], str | None]:
        return self.driver.list(queue, marker, limit, include_claimed)

    def claim(self, queue: str, limit: int) -> tuple[str | None, builtins.list[Item]]:
        return self.driver.claim(queue, limit)

    def delete(self, queue: str, message_id: str, claim: str | None) -> None:
        self.driver.delete(queue, message_id, claim)

    def bulk_delete(self, queue: str, message_ids: builtins.list[str], claim: str | None) -> None:
        self.driver.bulk_delete(queue, message_ids, claim)

    def pop(self, queue: str, limit: int) -> builtins.list[Item]:
        return self.driver.pop(queue, limit)

    def fill(self, queue: str, count: int, held: int, size: int) -> builtins.list[tuple[str, builtins.list[int]]]:
        return self.driver.fill(queue, count, held, size)

    def facts(self) -> dict[str, Any]:
        return self.driver.facts()

    def close(self) -> None:
        self.driver.close()
