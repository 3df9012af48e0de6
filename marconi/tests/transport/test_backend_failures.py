"""What the server answers when the driver fails: a post refused by contention, a backend that is down, a bug.

A "flaky" driver, registered by entry point from a temporary directory as a third-party driver would be, wraps
the memory driver: a post to a queue named ``busy...`` always meets contention (the core retries it until the
driver's ``conflict_timeout``, then raises MessageConflict), reads of ``down...`` queues and of project
``down`` fail as an unreachable backend does, and listing a ``bug...`` queue raises an exception no error
policy knows (a driver bug). Deterministic: each failure happens on every attempt.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator

import pytest

from marconi.tests.servers import Server
from marconi.tests.transport.conftest import serve
from marconi.tests.transport.rest import Api

FLAKY_DRIVER = '''
"""The memory driver with failures chosen by queue name."""

from marconi.storage import ErrorPolicy
from marconi_drivers.memory import MemoryDriver, MemoryMessages, MemoryQueues


class Busy(Exception):
    """Another client holds the queue."""


class Down(Exception):
    """The backend cannot be reached."""


class FlakyMessages(MemoryMessages):
    def _post(self, request):
        if request.queue.startswith("busy"):
            raise Busy("queue lock held by another client")
        return super()._post(request)

    def _list(self, request):
        if request.queue.startswith("down"):
            raise Down("connection refused")
        if request.queue.startswith("bug"):
            raise ZeroDivisionError("secret internal detail")
        return super()._list(request)


class FlakyQueues(MemoryQueues):
    def _list(self, project, after, limit, detailed):
        if project == "down":
            raise Down("connection refused")
        return super()._list(project, after, limit, detailed)


class FlakyDriver(MemoryDriver):
    name = "flaky"
    schemes = ("flaky",)
    ERRORS = ErrorPolicy(retry=(Busy,), backend=(Busy, Down))
    Queues = FlakyQueues
    Messages = FlakyMessages
'''


@pytest.fixture(scope="module")
def flaky_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("flaky")
    (root / "flaky_marconi.py").write_text(textwrap.dedent(FLAKY_DRIVER))
    dist = root / "flaky_marconi-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: flaky-marconi\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[marconi.storage]\nflaky = flaky_marconi:FlakyDriver\n")
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    server = serve("flaky://", root / "server", "--option", "conflict_timeout=0.2", env={"PYTHONPATH": path})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def flaky(flaky_server: Server) -> Api:
    return Api(f"http://127.0.0.1:{flaky_server.port}")


def test_a_post_refused_by_contention_is_503_with_retry_after(flaky: Api):
    reply = flaky.post("/v2/queues/busy/messages", {"messages": [{"ttl": 60, "body": 1}]})
    assert reply.status == 503, reply
    assert int(reply.headers["retry-after"]) >= 1
    assert "nothing was posted" in reply.json["description"]
    assert flaky.get("/v2/queues/busy/stats").json["messages"]["total"] == 0


def test_a_backend_failure_is_503(flaky: Api):
    flaky.post_messages("down", [1])
    reply = flaky.get("/v2/queues/down/messages")
    assert reply.status == 503, reply
    assert "retry-after" not in reply.headers  # the call may or may not have taken effect: no promise
    assert reply.json["title"] == "Service temporarily unavailable"


def test_ping_is_503_and_health_says_so_when_the_backend_is_down(flaky: Api):
    down = flaky.other(project="down")
    assert down.get("/v2/ping").status == 503
    assert down.get("/v2/health").json == {"storage_reachable": False}
    assert flaky.get("/v2/ping").status == 204


def test_a_driver_bug_is_500_and_tells_nothing_of_the_internals(flaky: Api, flaky_server: Server):
    flaky.post_messages("bug", [1])
    reply = flaky.get("/v2/queues/bug/messages")
    assert reply.status == 500, reply
    assert b"secret" not in reply.body and b"Traceback" not in reply.body
    assert "ZeroDivisionError: secret internal detail" in flaky_server.log_tail(200)  # the operator sees it
    assert flaky.get("/v2/ping").status == 204  # the server goes on serving


def test_other_queues_of_the_flaky_driver_work(flaky: Api):
    """The failures above come from the queue names, not from a broken server."""
    flaky.post_messages("calm", [1, 2])
    listed = flaky.get("/v2/queues/calm/messages", params={"echo": "true"}).json["messages"]
    assert [m["body"] for m in listed] == [1, 2]
