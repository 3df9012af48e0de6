"""A server killed in the middle of a post, and restarted on the same directory.

The test owns its server (it has to kill it): a SecantusDB started with ``--sync-on-commit``, the URI asking for
``journal=true``, since only journaled writes survive a SIGKILL. A producer is stopped right after its batch was
inserted (uncommitted), the server is killed with SIGKILL, the producer goes on, its commit fails with the
connection, and the server comes back. The producer reads its outcome back (nothing committed), fences the
counter past its slots and the core retries once: the batch is stored exactly once, whole; nothing of the first
attempt is ever visible; what was acknowledged before the crash is still there.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from marconi.storage.hooks import Outgoing
from marconi.tests.plugin import drain
from marconi.tests.servers import Server, free_port, secantusdb_server

from .conftest import STUCK_GUARD, Commands, fresh_clock, open_driver

pytestmark = pytest.mark.driver("mongodb")

QUEUE = "crashed"
MESSAGES = "marconi_messages"


class PauseAfterInsert(Commands):
    """Stops the first post's insert of messages once acknowledged, until released; records failed commands."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.inserted = threading.Event()
        self.release = threading.Event()
        self.on_success = self._pause

    def _pause(self, event: Any, collection: str) -> None:
        if self.armed and event.command_name == "insert" and collection == MESSAGES and not self.inserted.is_set():
            self.inserted.set()
            assert self.release.wait(STUCK_GUARD), "the test never released the paused producer"


@pytest.fixture
def server(tmp_path: Path) -> Any:
    """This test's own server (``mongo_uri`` only selects the test for MongoDB runs: that server is not killed)."""
    owned = secantusdb_server(tmp_path, free_port(), "--sync-on-commit").start()
    yield owned
    owned.stop()


def uri_of(server: Server) -> str:
    # Long enough a server selection for the restart to finish while the producer waits for it.
    return f"mongodb://127.0.0.1:{server.port}/crash?retryWrites=false&journal=true&serverSelectionTimeoutMS=30000"


def bodies(messages: list[dict[str, Any]]) -> list[Any]:
    return [message["body"] for message in messages]


def test_a_post_cut_off_by_a_server_crash_is_stored_once_whole(mongo_uri: str, server: Server) -> None:
    listener = PauseAfterInsert()
    project = f"crash-{uuid.uuid4().hex[:8]}"
    with open_driver(uri_of(server), clock=fresh_clock(), event_listeners=[listener]) as driver:
        messages = driver.message_controller
        driver.queue_controller.upsert(QUEUE, {}, project=project)
        before = messages.post(QUEUE, [{"ttl": 600, "body": "acknowledged"}], uuid.uuid4(), project=project)

        listener.armed = True
        outcome: dict[str, Any] = {}

        def produce() -> None:
            try:
                batch = [{"ttl": 600, "body": f"cut-{i}"} for i in range(3)]
                outcome["ids"] = messages.post(QUEUE, batch, uuid.uuid4(), project=project)
            except BaseException as error:
                outcome["error"] = error

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        assert listener.inserted.wait(STUCK_GUARD)
        server.kill()
        listener.release.set()  # its commit now meets a dead server; it waits for one to come back
        server.start()
        producer.join(STUCK_GUARD)
        assert not producer.is_alive(), "the post never returned"
        assert "error" not in outcome, f"the post failed: {outcome.get('error')!r}"
        assert listener.failures, "no command met the dead server: the crash came too late to test anything"

        seen, _ = drain(messages, QUEUE, project, limit=2)
        assert bodies(seen) == ["acknowledged", "cut-0", "cut-1", "cut-2"], "once, whole, after what was there"
        assert [m["id"] for m in seen] == before + outcome["ids"]
        stats = driver.queue_controller.stats(QUEUE, project=project)["messages"]
        assert stats["total"] == 4
        queue = driver.store.find_queue(QUEUE, project)
        assert queue is not None
        stored = driver.store.messages.count_documents({"q": queue.id})
        assert stored == 4, "the first attempt's documents were removed when it was read back as not applied"


def test_reading_back_a_commit_whose_reply_was_lost_reports_it_posted(mongo_uri: str, server: Server) -> None:
    """The other outcome of a dropped connection: the commit happened, its reply did not arrive."""
    project = f"crash-{uuid.uuid4().hex[:8]}"
    with open_driver(uri_of(server), clock=fresh_clock()) as driver:
        driver.queue_controller.upsert(QUEUE, {}, project=project)
        store = driver.store
        read = store.find_queue(QUEUE, project)
        assert read is not None
        now = driver.clock.now()
        batch = [Outgoing('"x"', now + 600, now, False)]
        _, after = store.append(read, now, batch, str(uuid.uuid4()))
        txn = after.window[-1]
        resolved = store.resolve(read, txn, after.counter, AutoReconnect("reply lost"), inserted=True, promoted=False)
        assert txn in resolved.window and resolved.counter == after.counter
        assert [m["body"] for m in drain(driver.message_controller, QUEUE, project)[0]] == ["x"]
