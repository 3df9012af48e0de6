"""Backend errors as data, and the one retry loop every driver shares.

A driver says what its client library's exceptions mean (:class:`ErrorPolicy`, or ``DriverBase.classify`` for
backends that report by error code); :func:`call` runs a hook and turns whatever it raises into the contract's
errors:

- :attr:`Failure.RETRY`: another client was in the way and nothing was done. Retried with jittered exponential
  backoff until the driver's ``conflict_timeout`` has passed, then a conflict (below).
- :attr:`Failure.CONFLICT`: a lock was waited on for the whole bound; nothing was done. A conflict at once.
- :attr:`Failure.RECONNECT`: the connection was lost before anything was done. Retried once, at once.
- :attr:`Failure.LOST`: the connection was lost, and the call may have taken effect. Retried once only for
  operations that may run twice (reads, deletes, renewals); otherwise ``BackendError``.
- :attr:`Failure.FATAL`: anything else the backend raised. ``BackendError``.

A conflict is ``MessageConflict`` for a post (safe to retry: nothing was posted) and ``BackendError`` for every
other call: post is the only call that raises ``MessageConflict``. Exceptions the policy does not recognise as
the backend's are left alone: they are bugs, and hiding them behind ``BackendError`` would hide them.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from marconi.storage.errors import BackendError, StorageError

T = TypeVar("T")

DEFAULT_CONFLICT_TIMEOUT = 10.0  # seconds a call may spend on contention before it gives up
BACKOFF_FIRST = 0.005  # seconds: the first retry waits up to this long ...
BACKOFF_CAP = 0.2  # ... doubling each time, up to this


class Failure(enum.Enum):
    RETRY = "retry"
    CONFLICT = "conflict"
    RECONNECT = "reconnect"
    LOST = "lost"
    FATAL = "fatal"


@dataclass(frozen=True)
class ErrorPolicy:
    """Which exceptions of a backend's client mean what; the first matching tuple wins, in field order.

    ``backend`` lists every exception of the client library (its base classes will do): those not matched by
    an earlier tuple are FATAL. Anything outside all tuples is not the backend's and propagates unchanged.
    """

    retry: tuple[type[BaseException], ...] = ()
    conflict: tuple[type[BaseException], ...] = ()
    reconnect: tuple[type[BaseException], ...] = ()
    lost: tuple[type[BaseException], ...] = ()
    backend: tuple[type[BaseException], ...] = ()

    def classify(self, error: BaseException) -> Failure | None:
        for failure, kinds in (
            (Failure.RETRY, self.retry),
            (Failure.CONFLICT, self.conflict),
            (Failure.RECONNECT, self.reconnect),
            (Failure.LOST, self.lost),
            (Failure.FATAL, self.backend),
        ):
            if kinds and isinstance(error, kinds):
                return failure
        return None


class Attempts:
    """The attempts of one call: a deadline, and jittered exponential backoff between tries."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + timeout
        self.timeout = timeout
        self.number = 1

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - self.clock())

    def backoff(self) -> bool:
        """Sleep before the next attempt; False (without sleeping) when no time is left for one."""
        remaining = self.remaining()
        if remaining <= 0:
            return False
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(self.number - 1, 30))
        time.sleep(min(remaining, random.uniform(0, ceiling)))
        self.number += 1
        return True

    def describe(self) -> str:
        return f"{self.number} attempt(s) in {self.clock() - self.started:.2f} s"


_current: ContextVar[Attempts | None] = ContextVar("marconi_attempts", default=None)


def current() -> Attempts | None:
    """The attempts of the call running in this context (drivers bound their lock waits by its deadline)."""
    return _current.get()


def describe(error: BaseException) -> str:
    """The first line of an error (or of what it wraps), at most 300 characters."""
    orig = getattr(error, "orig", None)
    lines = str(orig if orig is not None else error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def call(
    hook: Callable[[], T],
    *,
    classify: Callable[[BaseException], Failure | None],
    timeout: float,
    what: str,
    idempotent: bool,
    conflict: Callable[[str], StorageError] | None = None,
) -> T:
    """Run ``hook`` until it returns, retrying what ``classify`` says may be retried; see the module docstring.

    ``what`` names the call in error messages; ``conflict(detail)`` makes the conflict error (default
    ``BackendError``).
    """
    attempts = Attempts(timeout)
    reconnected = False
    while True:
        token = _current.set(attempts)
        try:
            try:
                return hook()
            finally:
                _current.reset(token)
        except StorageError:
            raise
        except Exception as error:
            failure = classify(error)
            if failure is None:
                raise
            if failure is Failure.RETRY and attempts.backoff():
                continue
            if failure in (Failure.RETRY, Failure.CONFLICT):
                detail = f"{what} gave up under contention after {attempts.describe()}: {describe(error)}"
                raise (conflict or BackendError)(detail) from error
            if not reconnected and (failure is Failure.RECONNECT or (failure is Failure.LOST and idempotent)):
                reconnected = True
                continue
            lost = "connection lost; it may or may not have taken effect" if failure is Failure.LOST else "failed"
            raise BackendError(f"{what}: {lost}: {describe(error)}") from error
