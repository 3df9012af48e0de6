"""Fixtures of the HTTP transport's tests: one ``marconi serve`` process per driver URI for the whole session.

Each server is a real process (``marconi serve URI``) on a free loopback port, its output in a log file, stopped
by PID at the end. On a database the conformance suite shares, the server keeps to tables of its own
(``table_prefix``), because that suite moves its clock forward and collects what has "expired". Tests never
depend on expiry: every TTL and lease they use outlives the session. Each test works in projects of its own.
"""

from __future__ import annotations

import http.client
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from marconi.storage.loading import driver_class, scheme_of
from marconi.tests.servers import Server, free_port
from marconi.tests.transport.rest import Api

BIN = Path(sys.executable).parent
#: The tables of the transport's test servers, apart from the conformance suite's.
TABLE_PREFIX = "marconi_http_"


def isolation_options(uri: str) -> list[str]:
    """Options keeping a server's data apart from other users of the same database (see the module docstring).

    Each driver names the option that does so (``DriverBase.PREFIX_OPTION``).
    """
    option = driver_class(scheme_of(uri)).PREFIX_OPTION
    return ["--option", f"{option}={TABLE_PREFIX}"] if option else []


def answers_ping(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/v2/ping", headers={"X-Project-ID": "ping", "Client-ID": str(uuid.uuid4())})
        return connection.getresponse().status == 204
    finally:
        connection.close()


def serve(uri: str, directory: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """A started ``marconi serve`` on a free port (collector off: the tests never wait for expiry)."""
    port = free_port()
    command = [str(BIN / "marconi"), "serve", uri, "--port", str(port), "--no-gc", *extra]
    if env:
        command = ["env", *(f"{name}={value}" for name, value in env.items()), *command]
    return Server(f"marconi serve {uri}", command, directory, lambda: answers_ping(port), port).start()


@dataclass(frozen=True)
class Endpoint:
    uri: str
    url: str
    server: Server

    def api(self) -> Api:
        """A client in a fresh project."""
        return Api(self.url)


@pytest.fixture(scope="session")
def http_endpoint(marconi_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    server = serve(marconi_uri, tmp_path_factory.mktemp("marconi-serve"), *isolation_options(marconi_uri))
    try:
        yield Endpoint(marconi_uri, f"http://127.0.0.1:{server.port}", server)
    finally:
        server.stop()


@pytest.fixture
def api(http_endpoint: Endpoint) -> Iterator[Api]:
    """A raw-HTTP client of the URI's server, in a project of its own; what its projects hold is deleted after."""
    client = http_endpoint.api()
    yield client
    client.cleanup()
