"""A small raw-HTTP client for the transport's tests: exact requests, every status and header visible."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

TIMEOUT = 30.0  # seconds; only a bound against a hung server, never an assertion about speed


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


@dataclass
class Api:
    """One client of the server at ``url``: a project and a Client-ID of its own, sent with every request."""

    url: str
    project: str | None = field(default_factory=lambda: f"http-{uuid.uuid4().hex[:12]}")
    client_id: str | None = field(default_factory=lambda: str(uuid.uuid4()))
    #: Every client made from this one with ``other``, this one included (for ``cleanup``).
    family: list[Api] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.family.append(self)

    def other(self, **changes: Any) -> Api:
        """A client of the same server in another project (or as given)."""
        fresh = {"project": f"http-{uuid.uuid4().hex[:12]}", "client_id": str(uuid.uuid4())}
        return Api(self.url, **{**fresh, **changes, "family": self.family})

    def cleanup(self) -> None:
        """Delete every queue of every project in the family (a test's leftovers on a shared database)."""
        for member in self.family:
            if member.project is None or member.client_id is None:
                continue
            while True:
                reply = member.get("/v2/queues", params={"limit": 100})
                names = [queue["name"] for queue in (reply.json or {}).get("queues", [])]
                if reply.status != 200 or not names:
                    break
                for name in names:
                    member.delete(f"/v2/queues/{name}")

    def headers(self) -> dict[str, str]:
        sent = {}
        if self.project is not None:
            sent["X-Project-ID"] = self.project
        if self.client_id is not None:
            sent["Client-ID"] = self.client_id
        return sent

    def request(
        self,
        method: str,
        path: str,
        document: Any = None,
        *,
        params: dict[str, Any] | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """``document`` is sent as JSON; ``data`` as raw bytes; ``headers`` add to (or, as None, drop) the identity."""
        target = urlsplit(self.url)
        sent = self.headers()
        if document is not None:
            data = json.dumps(document).encode()
            sent["Content-Type"] = "application/json"
        for name, value in (headers or {}).items():
            if value is None:
                sent.pop(name, None)
            else:
                sent[name] = value
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, **options: Any) -> Reply:
        return self.request("GET", path, **options)

    def put(self, path: str, document: Any = None, **options: Any) -> Reply:
        return self.request("PUT", path, document, **options)

    def post(self, path: str, document: Any = None, **options: Any) -> Reply:
        return self.request("POST", path, document, **options)

    def patch(self, path: str, document: Any = None, **options: Any) -> Reply:
        return self.request("PATCH", path, document, **options)

    def delete(self, path: str, **options: Any) -> Reply:
        return self.request("DELETE", path, **options)

    # Shortcuts for setup; tests assert on the raw replies where the reply is the point.

    def post_messages(self, queue: str, bodies: list[Any], ttl: int = 300) -> list[str]:
        reply = self.post(f"/v2/queues/{queue}/messages", {"messages": [{"ttl": ttl, "body": b} for b in bodies]})
        assert reply.status == 201, reply
        return [href.rsplit("/", 1)[1] for href in reply.json["resources"]]

    def claim(self, queue: str, limit: int = 10, ttl: int = 300) -> tuple[str, list[dict[str, Any]]]:
        reply = self.post(f"/v2/queues/{queue}/claims", {"ttl": ttl, "grace": 60}, params={"limit": limit})
        assert reply.status == 201, reply
        return reply.headers["location"].rsplit("/", 1)[1], reply.json["messages"]
