"""Errors as data: what redis-py's exceptions mean, and what the driver does when a reply never comes.

A script whose reply is lost may have run: post, pop and claim create are then ``BackendError`` and never sent
again (no duplicate, nothing taken twice); reads, deletes and renewals are sent once more. A server that cannot
be reached is tried again once and then ``BackendError``, at once. The lost replies are made by a TCP proxy
these tests run in front of a server of their own, which forwards a request and then cuts the connection
instead of forwarding the reply: the server really ran the script.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from redis import exceptions as rx

from marconi.storage import BackendError, Failure, ManualClock
from marconi.tests import servers

from ..backend import Unsent, classify
from .conftest import open_driver, post

pytestmark = [pytest.mark.driver("redis"), pytest.mark.own_servers]


class CuttingProxy:
    """Forwards TCP connections to a server; once armed, cuts the next connection that a reply comes back on,
    before the client gets it."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream))
                self.sockets += [client, server]
                threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if replies and self.armed.is_set():
                    self.armed.clear()
                    self.cut.set()  # before the client can see the cut
                    for end in (source, sink):
                        end.shutdown(socket.SHUT_RDWR)
                        end.close()
                    return
                sink.sendall(data)

    def arm(self) -> None:
        self.cut.clear()
        self.armed.set()

    def close(self) -> None:
        self.listener.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.close()


@pytest.fixture
def proxy(own_server: servers.Server) -> Iterator[CuttingProxy]:
    cutter = CuttingProxy(own_server.port or 0)
    yield cutter
    cutter.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def through_proxy(proxy: CuttingProxy, clock: ManualClock, redis_uri: str):
    with open_driver(f"redis://127.0.0.1:{proxy.port}/0", clock=clock) as driver:
        driver.queue_controller.upsert("q", {})
        yield driver
        driver.queue_controller.delete("q")


@pytest.fixture
def direct(own_server: servers.Server, clock: ManualClock):
    with open_driver(f"redis://127.0.0.1:{own_server.port}/0", clock=clock) as driver:
        yield driver


def bodies(driver) -> list[object]:
    items = driver.message_controller.list("q", limit=100, include_claimed=True).items
    return [item["body"] for item in items]


def test_a_post_whose_reply_is_lost_is_a_backend_error_and_is_not_posted_again(through_proxy, direct, proxy):
    proxy.arm()
    with pytest.raises(BackendError, match="may or may not have taken effect"):
        through_proxy.message_controller.post(
            "q", [{"ttl": 60, "body": "once"}], "6f0a2c4e-0000-4000-8000-0000000000e1"
        )
    assert proxy.cut.is_set()
    assert bodies(direct) == ["once"], "the server ran the post once, and it was not sent again"
    post(through_proxy, "q", None, 1)  # the driver goes on with a new connection
    assert bodies(direct) == ["once", {"n": 0}]


def test_a_pop_whose_reply_is_lost_takes_nothing_more(through_proxy, direct, proxy):
    post(direct, "q", None, 4)
    proxy.arm()
    with pytest.raises(BackendError, match="may or may not have taken effect"):
        through_proxy.message_controller.pop("q", 2)
    assert bodies(direct) == [{"n": 2}, {"n": 3}]


def test_a_claim_whose_reply_is_lost_takes_nothing_more(through_proxy, direct, proxy):
    post(direct, "q", None, 4)
    proxy.arm()
    with pytest.raises(BackendError, match="may or may not have taken effect"):
        through_proxy.claim_controller.create("q", {"ttl": 60}, limit=2)
    counts = direct.queue_controller.stats("q")["messages"]
    assert (counts["claimed"], counts["free"]) == (2, 2)


def test_a_read_whose_reply_is_lost_is_sent_again(through_proxy, direct, proxy):
    post(direct, "q", None, 3)
    proxy.arm()
    assert [item["body"] for item in through_proxy.message_controller.list("q").items] == [{"n": i} for i in range(3)]
    assert proxy.cut.is_set()


def test_a_server_that_cannot_be_reached_is_a_backend_error_at_once():
    with pytest.raises(BackendError, match="connect"):
        open_driver(f"redis://127.0.0.1:{servers.free_port()}/0")


def test_scripts_the_server_forgot_are_loaded_again_and_sent_once(direct):
    direct.queue_controller.upsert("q", {})
    try:
        post(direct, "q", None, 1)
        direct.backend.command("any", "SCRIPT", "FLUSH")
        post(direct, "q", None, 1)
        assert bodies(direct) == [{"n": 0}, {"n": 0}]
    finally:
        direct.queue_controller.delete("q")


MOVED = rx.MovedError("3999 127.0.0.1:7002")


@pytest.mark.parametrize(
    ("error", "standalone", "cluster"),
    [
        (Unsent("refused"), Failure.RECONNECT, Failure.RETRY),  # nothing sent; on a cluster, a failover under way
        (rx.ConnectionError("closed"), Failure.LOST, Failure.LOST),  # sent: the script may have run
        (rx.TimeoutError("no reply"), Failure.LOST, Failure.LOST),
        (rx.BusyLoadingError("loading"), Failure.RETRY, Failure.RETRY),
        (MOVED, Failure.RETRY, Failure.RETRY),
        (rx.TryAgainError("TRYAGAIN"), Failure.RETRY, Failure.RETRY),
        (rx.ClusterDownError("CLUSTERDOWN"), Failure.RETRY, Failure.RETRY),
        (rx.ReadOnlyError("READONLY"), Failure.RETRY, Failure.RETRY),
        (rx.MaxConnectionsError("pool full"), Failure.RETRY, Failure.RETRY),
        (rx.ResponseError("BUSY Redis is busy running a script."), Failure.RETRY, Failure.RETRY),
        (rx.ResponseError("NOREPLICAS Not enough good replicas to write."), Failure.RETRY, Failure.RETRY),
        (rx.SlotNotCoveredError("slot 3"), Failure.RETRY, Failure.RETRY),
        (rx.RedisClusterException("no node answered"), Failure.FATAL, Failure.RETRY),
        (rx.AuthenticationError("WRONGPASS"), Failure.FATAL, Failure.FATAL),
        (rx.NoPermissionError("NOPERM"), Failure.FATAL, Failure.FATAL),
        (rx.OutOfMemoryError("OOM"), Failure.FATAL, Failure.FATAL),
        (rx.ResponseError("ERR Error running script"), Failure.FATAL, Failure.FATAL),
        (ValueError("a bug"), None, None),  # not the backend's: left alone
    ],
)
def test_what_each_error_means(error, standalone, cluster):
    assert classify(error, cluster=False) is standalone
    assert classify(error, cluster=True) is cluster
