"""The garbage collector service: call ``driver.gc()`` every ``gc_interval`` seconds until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from marconi.storage import DriverBase, StorageError
from marconi.storage.validation import redacted

log = logging.getLogger("marconi.gc")


def run(driver: DriverBase, stop: threading.Event, interval: float | None = None) -> int:
    """Collect until ``stop`` is set; return the total removed.

    A failing pass is logged and retried at the next interval: a collector outlives a backend's outage.
    """
    interval = driver.gc_interval if interval is None else interval
    total = 0
    log.info("collecting %s every %g s", redacted(driver.uri), interval)
    while not stop.is_set():
        try:
            removed = driver.gc()
        except StorageError as error:
            log.error("gc pass failed, retrying in %g s: %s", interval, error)
        else:
            total += removed
            log.info("removed %d expired messages and claims", removed)
        if stop.wait(interval):
            break
    log.info("stopped after removing %d in all", total)
    return total


def once(driver: DriverBase) -> int:
    """One pass: the number removed. A failed pass raises its StorageError."""
    removed = driver.gc()
    log.info("removed %d expired messages and claims from %s", removed, redacted(driver.uri))
    return removed


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT while inside the block, then restore the previous handlers."""

    def handle(signum: int, frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
