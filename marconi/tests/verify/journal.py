"""A run's history as a JSON-lines file, written while the run goes on, by every process at once.

Each line is one event::

    {"event": "run", ...}                                        the run's plan (first line)
    {"event": "invoke", "process": P, "n": N, "op": {...}}        an operation begins (what is known before it)
    {"event": "complete", "process": P, "n": N, "op": {...}}      it ended: the whole operation (history.Op)
    {"event": "fault", "name": F, "start": T0, "end": T1, "detail": "..."}   a fault injected
    {"event": "error", "process": P, "detail": "..."}            a worker that crashed or could not start

Times are ``time.monotonic()`` seconds. Every writer appends each line with one ``write`` on a descriptor opened
with ``O_APPEND``, so lines of several processes never interleave, and a process killed by SIGKILL leaves
every line it wrote whole: its last operation is an invoke without completion, of unknown outcome.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marconi.tests.history import History, Op, Outcome


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


def events(path: Path | str) -> Iterator[tuple[int, dict[str, Any] | None]]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                event = json.loads(line)
            except ValueError:
                yield number, None
                continue
            yield number, event if isinstance(event, dict) else None


def read(path: Path | str) -> Recorded:
    """Read a history file. Raises OSError if it cannot be read, ValueError if it is not a history at all."""
    recorded = Recorded()
    pending: dict[tuple[str, int], dict[str, Any]] = {}
    ops: list[Op] = []
    for number, event in events(path):
        kind = event.get("event") if event is not None else None
        try:
            if event is None:
                raise ValueError
            if kind == "run":
                recorded.plan = {key: value for key, value in event.items() if key != "event"}
            elif kind == "invoke":
                pending[(event["process"], event["n"])] = event["op"]
            elif kind == "complete":
                pending.pop((event["process"], event["n"]), None)
                ops.append(Op.from_dict(event["op"]))
            elif kind == "fault":
                recorded.faults.append(
                    Fault(str(event["name"]), float(event["start"]), float(event["end"]), str(event["detail"]))
                )
            elif kind == "error":
                recorded.errors.append(f"{event['process']}: {event['detail']}")
            else:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            recorded.damaged.append(number)
    if not recorded.plan and not ops:
        raise ValueError(f"{path} is not a marconi verify history (no run line, no operations)")
    for partial in pending.values():  # invoked, never returned: the process died mid-call
        ops.append(Op.from_dict({**partial, "outcome": Outcome.UNKNOWN.value, "complete": None}))
    ops.sort(key=lambda op: op.invoke)
    recorded.history = History(ops)
    return recorded
