"""The one source of "now" for every driver.

Drivers never call ``time.time()`` themselves: they ask their clock. Tests pass a :class:`ManualClock` and move
it, so expiry and claim leases are tested without sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, with sub-second resolution."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that stands still until it is moved. Thread-safe."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("a clock never goes backwards")
            self._now = float(when)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


def whole_seconds(seconds: float) -> int:
    """Round a duration down to whole seconds, as ``age`` is reported."""
    whole = int(seconds)
    return whole if whole > 0 else 0


def lifetime_seconds(seconds: float) -> int:
    """Round a lifetime up to whole seconds, as ``ttl`` is reported (a ttl of 30.2 s is reported as 31)."""
    whole = int(seconds)
    return whole if whole >= seconds else whole + 1


def isoformat(when: float) -> str:
    """UTC ISO 8601 with a ``Z``, to the second."""
    return datetime.fromtimestamp(int(when), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
