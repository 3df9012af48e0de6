"""The three roles of a workload, as loops over a contender's client, recording a history and a latency histogram.

A role warms up first (``warmup`` ops, untimed; the round trips of all but the first are counted), then waits at
the gate until every role of the run is warm, then runs its timed ops. Every op, warm-up or timed, is recorded in
the run's history (``marconi.tests.history``): a contender is checked on everything it did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from hdrh.histogram import HdrHistogram

from marconi.tests.history import Kind, Op, Outcome, Recorder, Value, value_of

from .contenders import CLAIM_TTL, Client, Item, body
from .workloads import Workload

#: Latencies are recorded in microseconds, from 1 us to 10 minutes, to 3 significant digits.
LOWEST_US, HIGHEST_US, DIGITS = 1, 600_000_000, 3
IDLE_PAUSE = 0.002  # a consumer that found nothing, while producers still run, asks again after this long
FIRST_PAGE = "first-page"  # observers reading the first page again and again are named so


def histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


class Flag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class RoleSpec:
    name: str
    kind: str  # producer | observer | consumer
    queue: str
    workload: Workload


@dataclass
class RoleResult:
    """What a role sends back: its ops, its timed messages and seconds, latencies, round trips, errors."""

    name: str
    kind: str
    ops: list[Op] = field(default_factory=list)
    messages: int = 0  # handled in the timed phase
    started: float = 0.0  # monotonic time the timed phase began and ended
    finished: float = 0.0
    histograms: dict[str, bytes] = field(default_factory=dict)  # op kind -> encoded HDR histogram (us)
    round_trips: dict[str, int] = field(default_factory=dict)  # op kind -> round trips of the counted warm-up ops
    counted: dict[str, int] = field(default_factory=dict)  # op kind -> ops counted
    units: int = 0  # warm-up iterations counted (one post, one page, one claim with its deletes, one pop)
    tallies: dict[str, int] = field(default_factory=dict)  # the client's tallies over the role (Client.tallies)
    errors: list[str] = field(default_factory=list)


class _Run:
    """The machinery every role shares: timing, counting, recording, when to stop."""

    def __init__(self, client: Client, spec: RoleSpec, gate: Callable[[], None], done: Flag, stop: Flag) -> None:
        self.client, self.spec, self.gate, self.done, self.stop = client, spec, gate, done, stop
        self.workload = spec.workload
        self.result = RoleResult(spec.name, spec.kind)
        self.recorder = Recorder(spec.name)
        self.iteration = 0
        self.timed = False
        self.deadline = float("inf")
        self.histograms: dict[str, HdrHistogram] = {}
        self.counting = False
        self.tallied = dict(client.tallies)

    def op(self, kind: str, call: Callable[[], Any]) -> tuple[float, Any, float]:
        """Run one op; (invoke, what it returned, complete). Timed ops go to the histograms, warm ones are counted."""
        if self.counting:
            with self.client.round_trips.counting(kind):
                invoke = time.monotonic()
                returned = call()
                complete = time.monotonic()
            self.result.counted[kind] = self.result.counted.get(kind, 0) + 1
        else:
            invoke = time.monotonic()
            returned = call()
            complete = time.monotonic()
        if self.timed:
            found = self.histograms.get(kind)
            if found is None:
                found = self.histograms[kind] = histogram()
            found.record_value(max(LOWEST_US, round((complete - invoke) * 1e6)))
        return invoke, returned, complete

    def begin_iteration(self) -> bool:
        """Before each iteration: warm up, open the gate, or stop. False when the role must stop."""
        if self.stop.is_set():
            self.result.errors.append(f"{self.spec.name}: told to stop")
            return False
        warmup = self.workload.warmup
        # The last warm-up iterations (at most 4) are counted: connections are open and psycopg has prepared its
        # statements (after 5 executions) by then, so what is counted is what every later op costs.
        self.counting = self.client.counts_round_trips and max(1, warmup - 4) <= self.iteration < warmup
        if self.counting:
            self.result.units += 1
        if self.iteration == warmup and not self.timed:
            self.gate()
            self.timed = True
            self.result.started = time.monotonic()
            self.deadline = self.result.started + self.workload.seconds
        self.iteration += 1
        return not (self.timed and time.monotonic() > self.deadline)

    def handled(self, count: int) -> None:
        if self.timed:
            self.result.messages += count

    def enough(self) -> bool:
        """The role has handled its ``messages`` (with producers in the run, only producers stop so)."""
        if self.spec.kind != "producer" and self.workload.producers:
            return False
        return self.timed and self.result.messages >= self.workload.messages

    def finish(self) -> RoleResult:
        if not self.timed:  # ended during warm-up (an error, an empty queue): the others must not wait for it
            self.gate()
            self.result.started = time.monotonic()
        self.result.finished = time.monotonic()
        self.result.ops.extend(self.recorder.ops)
        for kind, found in self.histograms.items():
            self.result.histograms[kind] = found.encode()
        self.result.round_trips = dict((kind, sum(counts)) for kind, counts in self.client.round_trips.counted.items())
        tallies = self.client.tallies
        self.result.tallies = {key: tallies[key] - self.tallied.get(key, 0) for key in tallies}
        return self.result

    def failed(self, kind: Kind, invoke: float, error: BaseException, **details: Any) -> None:
        self.recorder.record(
            kind, self.spec.queue, invoke, Outcome.UNKNOWN, error=f"{type(error).__name__}: {error}", **details
        )
        self.result.errors.append(f"{self.spec.name}: {kind} raised {type(error).__name__}: {error}")


def produce(run: _Run) -> None:
    w, spec, queue = run.workload, run.spec, run.spec.queue
    batches = w.warmup + -(-w.messages // w.batch)  # made before the first post: the timed loop only posts
    planned = []
    for start in range(0, batches * w.batch, w.batch):
        values: tuple[Value, ...] = tuple((spec.name, seq) for seq in range(start, start + w.batch))
        planned.append((values, [body(p, s, w.message_size) for p, s in values]))
    for values, bodies in planned:
        if not run.begin_iteration() or run.enough():
            return
        invoke = time.monotonic()
        try:
            invoke, ids, complete = run.op("post", partial(run.client.post, queue, bodies))
        except Exception as error:
            run.failed(Kind.POST, invoke, error, values=values)
            return
        run.recorder.record(Kind.POST, queue, invoke, Outcome.OK, complete, values=values, ids=tuple(ids))
        run.handled(len(values))


def observe(run: _Run) -> None:
    w, spec, queue = run.workload, run.spec, run.spec.queue
    producers = w.producers > 0
    marker: str | None = None
    passes = 0
    run.recorder = Recorder(f"{spec.name}.0")
    while run.begin_iteration() and not run.enough():
        finished = run.done.is_set()
        asked = None if w.first_page else marker
        invoke = time.monotonic()
        try:
            invoke, (items, next_marker), complete = run.op(
                "list", partial(run.client.list, queue, asked, w.page, w.include_claimed)
            )
        except Exception as error:
            run.failed(Kind.LIST, invoke, error, marker=asked, limit=w.page)
            return
        run.recorder.record(
            Kind.LIST,
            queue,
            invoke,
            Outcome.OK,
            complete,
            values=tuple(value_of(item.body) for item in items),
            ids=tuple(item.id for item in items),
            marker=asked,
            next_marker=next_marker,
            limit=w.page,
            exhaustive=w.include_claimed,
        )
        run.handled(len(items))
        marker = next_marker
        if len(items) < w.page and not w.first_page:
            if producers:
                if finished:
                    return
                time.sleep(IDLE_PAUSE)
            else:  # the end of a prefilled queue: the next pass starts at its head, as a new observer
                passes += 1
                run.result.ops.extend(run.recorder.ops)
                run.recorder = Recorder(f"{spec.name}.{passes}")
                marker = None


def consume(run: _Run) -> None:
    w, spec, queue, client = run.workload, run.spec, run.spec.queue, run.client
    producers = w.producers > 0
    taken = 0
    while run.begin_iteration() and not run.enough():
        finished = run.done.is_set()
        invoke = time.monotonic()
        if w.consume == "pop":
            try:
                invoke, items, complete = run.op("pop", lambda: client.pop(queue, w.claim))
            except Exception as error:
                run.failed(Kind.CLAIM, invoke, error, limit=w.claim)
                return
            taken += 1
            # A pop is a claim that never ends: the claim checks (exclusive, oldest first, nothing lost) apply.
            claim_id: str | None = f"pop:{spec.name}:{taken}"
            ttl: float | None = None
        else:
            try:
                invoke, (claim_id, items), complete = run.op("claim", lambda: client.claim(queue, w.claim))
            except Exception as error:
                run.failed(Kind.CLAIM, invoke, error, limit=w.claim, claim_ttl=CLAIM_TTL)
                return
            ttl = CLAIM_TTL
        values = tuple(value_of(item.body) for item in items)
        run.recorder.record(
            Kind.CLAIM, queue, invoke, Outcome.OK, complete, values=values, ids=tuple(i.id for i in items),
            limit=w.claim, claim_id=claim_id, claim_ttl=ttl,
        )  # fmt: skip
        if items and w.consume != "pop" and not _delete(run, items, claim_id):
            return
        run.handled(len(items))
        if not items:
            if not producers or finished:
                return
            time.sleep(IDLE_PAUSE)


def _delete(run: _Run, items: list[Item], claim_id: str | None) -> bool:
    queue, client = run.spec.queue, run.client
    batches = [items] if run.workload.consume == "claim-bulk-delete" else [[item] for item in items]
    for batch in batches:
        values = tuple(value_of(item.body) for item in batch)
        ids = [item.id for item in batch]
        invoke = time.monotonic()
        try:
            if run.workload.consume == "claim-bulk-delete":
                invoke, _, complete = run.op("bulk_delete", partial(client.bulk_delete, queue, ids, claim_id))
            else:
                invoke, _, complete = run.op("delete", partial(client.delete, queue, ids[0], claim_id))
        except Exception as error:
            run.failed(Kind.DELETE, invoke, error, values=values)
            return False
        run.recorder.record(Kind.DELETE, queue, invoke, Outcome.OK, complete, values=values, ids=tuple(ids))
    return True


LOOPS = {"producer": produce, "observer": observe, "consumer": consume}


def run_role(client: Client, spec: RoleSpec, gate: Callable[[], None], done: Flag, stop: Flag) -> RoleResult:
    """Play ``spec`` on ``client``: warm up, pass the gate, run the timed ops; the role's result."""
    client.round_trips.counted.clear()
    run = _Run(client, spec, gate, done, stop)
    try:
        LOOPS[spec.kind](run)
    except Exception as error:  # a bug of the harness or the client, not an op's failure: report it, do not hang
        run.result.errors.append(f"{spec.name} crashed: {type(error).__name__}: {error}")
    return run.finish()


def drain(client: Client, queue: str, name: str = "verifier") -> list[Op]:
    """Claim everything left in ``queue``, 100 at a time, recording it (the end of the run's history)."""
    recorder = Recorder(name)
    for _ in range(1_000_000):
        invoke = time.monotonic()
        claim_id, items = client.claim(queue, 100)
        recorder.record(
            Kind.CLAIM, queue, invoke, Outcome.OK, values=tuple(value_of(item.body) for item in items),
            ids=tuple(item.id for item in items), limit=100, claim_id=claim_id, claim_ttl=CLAIM_TTL,
        )  # fmt: skip
        if not items:
            break
    return recorder.ops
