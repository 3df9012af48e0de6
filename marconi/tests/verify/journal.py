"""A run's history as a JSON-lines file, written while the run goes on, by every process at once.

Each line is one event::

    {"event": "run", ...}                                        the run's plan (first line)
    {"event": "invoke", "process": P, "n": N, "op": {...}}        an operation begins (what is known before it)
    {"event": "complete", "process": P, "n": N, "op": {...}}      it ended: the whole operation (history.Op)
    {"event": "fault", "name": F, "start": T0, "end": T1, "detail": "..."}   a fault injected
    {"event": "error", "process": P, "detail": "..."}            a worker that crashed or could not start
    {"event": "clock", "monotonic": T, "wall": W}                the wall clock read beside the monotonic one

Times are ``time.monotonic()`` seconds. Every writer appends each line with one ``write`` on a descriptor opened
with ``O_APPEND``, so lines of several processes never interleave, and a process killed by SIGKILL leaves
every line it wrote whole: its last operation is an invoke without completion, of unknown outcome.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marconi.tests.history import History, Op, Outcome, WallClock


class Journal:
    """Appends events to a history file; one per process (or shared by threads: each line is one write)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, event: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ClockWatch:
    """Writes ``clock`` events while it runs: the wall clock against the monotonic one, read every ``every``
    seconds and written whenever their offset moved by ``step`` or more (with the reading before, so a step is
    placed between two readings ``every`` apart). The checker widens leases by what it shows (``WallClock``)."""

    def __init__(self, journal: Journal, every: float = 0.02, step: float = 0.001) -> None:
        self.journal, self.every, self.step = journal, every, step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="marconi-verify-clock", daemon=True)

    def __enter__(self) -> ClockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _read(self) -> tuple[float, float]:
        """The two clocks read together: the wall clock between two monotonic readings at most 1 ms apart (a
        thread descheduled between two readings would otherwise pass for a clock that jumped)."""
        for _ in range(5):
            before = time.monotonic()
            wall = time.time()
            after = time.monotonic()
            if after - before <= 0.001:
                break
        return (before + after) / 2, wall

    def _write(self, reading: tuple[float, float]) -> None:
        self.journal.write({"event": "clock", "monotonic": reading[0], "wall": reading[1]})

    def _watch(self) -> None:
        written = previous = self._read()
        self._write(written)
        while not self._stop.wait(self.every):
            reading = self._read()
            if abs((reading[1] - reading[0]) - (written[1] - written[0])) >= self.step:
                if previous != written:
                    self._write(previous)
                self._write(reading)
                written = reading
            previous = reading
        self._write(self._read())


@dataclass(frozen=True)
class Fault:
    """One fault injected during a run: what, when (monotonic seconds), and what it did."""

    name: str
    start: float
    end: float
    detail: str = ""


@dataclass
class Recorded:
    """A history file read back: the plan, the operations (invokes never completed are unknown), the faults."""

    plan: dict[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=History)
    faults: list[Fault] = field(default_factory=list)
    #: Errors workers reported (a driver that would not load, a crash), as "process: detail".
    errors: list[str] = field(default_factory=list)
    #: Lines that were not whole events (a file cut off by a crash of the whole run), by number.
    damaged: list[int] = field(default_factory=list)


def _invoke_key(line: str) -> str | None:
    """The ``"process":P,"n":N`` part of an invoke line as :class:`Journal` writes it (None if written otherwise):
    an invoke is parsed only if its completion never comes."""
    if line.startswith(_INVOKE):
        end = line.find(',"op":', len(_INVOKE))
        if end > 0:
            return line[len(_INVOKE) : end]
    return None


_INVOKE = '{"event":"invoke",'
_COMPLETE = '{"event":"complete",'


def read(path: Path | str) -> Recorded:
    """Read a history file. Raises OSError if it cannot be read, ValueError if it is not a history at all."""
    recorded = Recorded()
    pending: dict[str, tuple[int, str]] = {}
    ops: list[Op] = []
    clock: list[tuple[float, float]] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            key = _invoke_key(line)
            if key is not None:
                pending[key] = (number, line)
                continue
            try:
                event = json.loads(line)
                kind = event["event"]
                if kind == "complete":
                    pending.pop(f'"process":{json.dumps(event["process"])},"n":{event["n"]}', None)
                    ops.append(Op.from_dict(event["op"]))
                elif kind == "invoke":  # written by another writer than Journal: keyed the same way
                    pending[f'"process":{json.dumps(event["process"])},"n":{event["n"]}'] = (number, line)
                elif kind == "run":
                    recorded.plan = {key: value for key, value in event.items() if key != "event"}
                elif kind == "fault":
                    recorded.faults.append(
                        Fault(str(event["name"]), float(event["start"]), float(event["end"]), str(event["detail"]))
                    )
                elif kind == "error":
                    recorded.errors.append(f"{event['process']}: {event['detail']}")
                elif kind == "clock":
                    monotonic = float(event["monotonic"])
                    clock.append((monotonic, float(event["wall"]) - monotonic))
                else:
                    raise ValueError
            except (KeyError, TypeError, ValueError):
                recorded.damaged.append(number)
    if not recorded.plan and not ops:
        raise ValueError(f"{path} is not a marconi verify history (no run line, no operations)")
    for number, line in pending.values():  # invoked, never returned: the process died mid-call
        try:
            partial = json.loads(line)["op"]
            ops.append(Op.from_dict({**partial, "outcome": Outcome.UNKNOWN.value, "complete": None}))
        except (KeyError, TypeError, ValueError):
            recorded.damaged.append(number)
    ops.sort(key=lambda op: op.invoke)
    recorded.history = History(ops, WallClock(tuple(sorted(clock))))
    return recorded
