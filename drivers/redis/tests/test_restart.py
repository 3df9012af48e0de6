"""Durability with AOF: a server killed (SIGKILL) mid-run and started again on the same directory still has every
acknowledged post, in order, once; the driver reconnects on its own, and markers go on where they were.

The tests start their own ``redis-server --appendonly yes`` (``appendfsync always`` and ``everysec``): a producer
thread posts until the test, once enough posts are acknowledged, kills the server under it. A post in flight then
has an unknown outcome; the history checker (``marconi.tests.history``) allows it either way, and nothing else.
"""

from __future__ import annotations

import threading
import time

import pytest

from marconi.storage import ManualClock
from marconi.tests import servers
from marconi.tests.history import History, Kind, Outcome, Recorder, body_of, check_observers, value_of
from marconi.tests.plugin import drain

from .conftest import CLIENT, open_driver

pytestmark = [pytest.mark.driver("redis"), pytest.mark.own_servers]

ACKNOWLEDGED_BEFORE_THE_KILL = 40
BATCH = 3


def produce(driver, recorder: Recorder, enough: threading.Event) -> None:
    """Post batches until one fails (the server is gone), setting ``enough`` once enough are acknowledged."""
    sent = 0
    while True:
        values = tuple(("producer", sent + i) for i in range(BATCH))
        sent += BATCH
        invoke = recorder.now()
        try:
            driver.message_controller.post("q", [{"ttl": 3600, "body": body_of(v)} for v in values], CLIENT)
        except Exception as error:
            # It returned (with an error), so it is over: the checker may rely on what came after it.
            recorder.record(Kind.POST, "q", invoke, Outcome.UNKNOWN, recorder.now(), values=values, error=str(error))
            return
        recorder.record(Kind.POST, "q", invoke, Outcome.OK, values=values)
        if sent >= ACKNOWLEDGED_BEFORE_THE_KILL * BATCH:
            enough.set()


def observe(driver, recorder: Recorder, marker: str | None = None) -> str | None:
    """Page to the end, recording each page for the checker; the last marker."""
    while True:
        invoke = recorder.now()
        page = driver.message_controller.list("q", marker=marker, limit=7, include_claimed=True)
        values = tuple(value_of(item["body"]) for item in page.items)
        recorder.record(Kind.LIST, "q", invoke, Outcome.OK, values=values, marker=marker, limit=7, exhaustive=True)
        marker = page.marker
        if len(values) < 7:
            return marker


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_acknowledged_posts_survive_a_kill_and_restart(fsync, redis_uri):
    with servers.scratch_directory(f"redis-aof-{fsync}") as directory:
        server = servers.redis_server(directory, None, "--appendonly", "yes", "--appendfsync", fsync).start()
        try:
            clock = ManualClock(float(int(time.time())))
            with open_driver(f"redis://127.0.0.1:{server.port}/0", clock=clock) as driver:
                driver.queue_controller.upsert("q", {"kept": True})
                producer, observer = Recorder("producer"), Recorder("observer")
                enough = threading.Event()
                thread = threading.Thread(target=produce, args=(driver, producer, enough), daemon=True)
                thread.start()
                assert enough.wait(60), "the producer never had enough posts acknowledged"
                server.kill()
                thread.join(60)
                assert not thread.is_alive()
                server.start()

                marker = observe(driver, observer)  # the same driver: its connections died with the server
                history = History.merge(producer.ops, observer.ops)
                report = check_observers(history)
                assert report.ok, report.summary()
                acknowledged = [v for op in producer.ops if op.outcome is Outcome.OK for v in op.values]
                assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_THE_KILL * BATCH
                assert driver.queue_controller.get("q") == {"kept": True}

                after = driver.message_controller.post("q", [{"ttl": 60, "body": "after"}], CLIENT)
                seen, _ = drain(driver.message_controller, "q", None, marker)
                assert [m["id"] for m in seen] == after, "positions go on after the restart, none reused"
        finally:
            server.stop()
