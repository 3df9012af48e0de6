"""Workloads, declared in TOML (``workloads.toml`` ships the catalogue): who does what, how much, on what queue.

Each role is a process (or a thread, for a contender whose store lives in one process). Producers post
``messages`` each in batches of ``batch``; observers page with ``page`` (or read the first page again and again)
until they have read ``messages``; consumers claim ``claim`` at a time and delete them (one by one or in one bulk
delete under the claim), or pop, until they have taken ``messages`` or the queue is empty. With producers in the
run, observers and consumers instead go on until the producers are done and nothing more comes. Every role first
runs ``warmup`` ops untimed (counting their round trips), then its timed ops, stopping early at ``seconds``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

ROLES = ("producer", "observer", "consumer")
CONSUME = ("claim-delete", "claim-bulk-delete", "pop")
SETS = ("default", "full")


class WorkloadError(ValueError):
    """A workload file or option that cannot be run, naming what is wrong."""


@dataclass(frozen=True)
class Workload:
    name: str
    measures: str
    description: str = ""
    producers: int = 0
    observers: int = 0
    consumers: int = 0
    batch: int = 10
    page: int = 10
    first_page: bool = False
    include_claimed: bool = True
    claim: int = 10
    consume: str = "claim-delete"
    message_size: int = 100
    queues: int = 1
    messages: int = 1000
    seconds: float = 60.0
    warmup: int = 10
    fill: int = 0
    held: int = 0
    fixture: str | None = None
    sets: tuple[str, ...] = SETS

    def __post_init__(self) -> None:
        problems = []
        if self.measures not in ROLES:
            problems.append(f"measures must be one of {', '.join(ROLES)}")
        elif getattr(self, f"{self.measures}s") < 1:
            problems.append(f"measures {self.measures}, but it has no {self.measures}s")
        if self.consume not in CONSUME:
            problems.append(f"consume must be one of {', '.join(CONSUME)}")
        for name in ("batch", "page", "claim"):
            if not 1 <= getattr(self, name) <= 100:
                problems.append(f"{name} must be 1 to 100")
        for name in ("producers", "observers", "consumers", "fill", "held", "warmup"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if self.producers + self.observers + self.consumers > 16:
            problems.append("at most 16 roles")
        if self.queues < 1 or self.messages < 1 or self.message_size < 32 or self.seconds <= 0:
            problems.append("queues, messages and seconds must be positive, message_size at least 32")
        if self.held > self.fill:
            problems.append("held must not exceed fill")
        if self.fixture is not None and self.producers:
            problems.append("a fixture is shared by several workloads: it takes no producers")
        if problems:
            raise WorkloadError(f"workload {self.name!r}: {'; '.join(problems)}")

    @property
    def roles(self) -> list[str]:
        """One entry per role, in start order: producers, observers, consumers."""
        return ["producer"] * self.producers + ["observer"] * self.observers + ["consumer"] * self.consumers

    @property
    def needs(self) -> frozenset[str]:
        """The client operations the workload uses."""
        ops = {"post"} if self.producers else set()
        if self.observers:
            ops.add("list")
        if self.consumers:
            ops |= (
                {"pop"} if self.consume == "pop" else {"claim", "bulk_delete" if "bulk" in self.consume else "delete"}
            )
        return frozenset(ops)

    @property
    def prefilled(self) -> int:
        """Messages in each queue before the run: ``fill``, or enough for the consumers when there are no producers."""
        if self.fill or self.producers:
            return self.fill
        if self.consumers:
            per_queue = -(-self.consumers // self.queues)
            return per_queue * (self.messages + self.warmup * self.claim)
        return 0

    def scaled(self, factor: float) -> Workload:
        """The same workload with ``messages`` (not the fill) scaled, at least one batch."""
        return replace(self, messages=max(self.batch, round(self.messages * factor)))


def parse(data: dict[str, Any], source: str) -> list[Workload]:
    known = {f.name for f in fields(Workload)}
    workloads = []
    for entry in data.get("workload", []):
        unknown = set(entry) - known
        if unknown:
            raise WorkloadError(f"{source}: unknown workload fields {sorted(unknown)}")
        if "sets" in entry:
            entry = {**entry, "sets": tuple(entry["sets"])}
        try:
            workloads.append(Workload(**entry))
        except TypeError as error:
            raise WorkloadError(f"{source}: {error}") from None
    names = [w.name for w in workloads]
    if len(set(names)) != len(names):
        raise WorkloadError(f"{source}: workload names must be unique")
    return workloads


def catalogue(path: str | Path | None = None) -> list[Workload]:
    """The workloads of a TOML file (default: the shipped ``workloads.toml``)."""
    if path is None:
        text, source = files(__package__).joinpath("workloads.toml").read_text(), "workloads.toml"
    else:
        try:
            text, source = Path(path).read_text(), str(path)
        except OSError as error:
            raise WorkloadError(f"cannot read {path}: {error.strerror}") from None
    try:
        return parse(tomllib.loads(text), source)
    except tomllib.TOMLDecodeError as error:
        raise WorkloadError(f"{source}: {error}") from None


def select(workloads: list[Workload], names: list[str] | None, set_name: str) -> list[Workload]:
    """The named workloads (in the given order), or those of ``set_name``."""
    if names:
        by_name = {w.name: w for w in workloads}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise WorkloadError(f"no workload named {', '.join(missing)} (known: {', '.join(by_name)})")
        return [by_name[name] for name in names]
    if set_name not in SETS:
        raise WorkloadError(f"no workload set {set_name!r} (known: {', '.join(SETS)})")
    return [w for w in workloads if set_name in w.sets]
