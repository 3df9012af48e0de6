"""Operation histories of a queue workload, and checkers that find anomalies in them, in Jepsen's style.

A workload records every operation it performs as an :class:`Op`: which process (or thread) did it, what kind
of operation it was, on which queue, when it was invoked and when it completed, how it completed (``ok``,
``fail`` when it certainly had no effect, ``unknown`` when it may or may not have), and the *values* it carried.
Every message body carries a unique value ``(producer, seq)``: a producer numbers its messages in the order it
posts them, so a value names one message across every driver, process and page.

The checkers read only the history: no driver, no backend. They return a :class:`Report` listing anomalies:

``lost``
    an acknowledged post never delivered to an observer although the observer later asked for a page that
    came back short (nothing more was eligible) after the post was acknowledged; or, for claims, never claimed
    by anyone although a claim came back empty after the post was acknowledged.
``unexpected``
    delivered, yet never posted (no post of it was attempted on that queue, or its post certainly failed).
``duplicated``
    an observer saw a message twice, or one claim handed out the same message twice.
``producer-order``
    a consumer received one producer's messages out of the order they were posted; or a claim took a message
    older than one an earlier, completed claim had taken (claims take the oldest eligible messages first).
``non-monotonic``
    an observer received a message before one whose post was acknowledged before the first was even posted
    (visibility must follow marker order, and markers follow real time).
``skip``
    an observer's marker passed a message it never received (it received a message posted after this one was
    acknowledged), or received it only after a short page that should have contained it.
``claim-overlap``
    a message held by two claims while both were certainly live.
``incomplete``
    a consumer never reached the end of its queue (only with ``require_end``), so "lost" could not be decided.

Times are ``time.monotonic()`` seconds, comparable between processes of one Linux host. A claim's lease runs on
the driver's clock (a wall clock, or a ManualClock standing still): where a history carries samples of the wall
clock against the monotonic one (:class:`WallClock`), a lease's bounds widen by as much as the two moved apart
meanwhile, so a host that slews or steps its wall clock does not pass for claims that overlap.

Histories pickle, and convert to and from JSON (:meth:`History.to_json`), so processes can send them back.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

#: A message's unique value: (producer, sequence number in that producer's posting order).
Value = tuple[str, int]


class Kind(StrEnum):
    POST = "post"  # values: the batch posted, in input order
    LIST = "list"  # values: the page received, in order
    CLAIM = "claim"  # values: the messages a new claim holds
    RELEASE = "release"  # claim delete; claim_id: the claim released
    DELETE = "delete"  # values: the messages deleted
    POP = "pop"  # values: the messages popped
    RENEW = "renew"  # claim update; claim_id: the claim, claim_ttl: its new lease
    STATS = "stats"  # queue stats; counts: (claimed, free, total) as reported


class Outcome(StrEnum):
    OK = "ok"  # completed and took effect
    FAIL = "fail"  # certainly took no effect (e.g. MessageConflict from post)
    UNKNOWN = "unknown"  # may or may not have taken effect (an error, a crash, never returned)


class AnomalyKind(StrEnum):
    LOST = "lost"
    UNEXPECTED = "unexpected"
    DUPLICATED = "duplicated"
    PRODUCER_ORDER = "producer-order"
    NON_MONOTONIC = "non-monotonic"
    SKIP = "skip"
    CLAIM_OVERLAP = "claim-overlap"
    INCOMPLETE = "incomplete"
    DELIVERED_AFTER_DELETE = "delivered-after-delete"
    STATS = "stats"


@dataclass(frozen=True)
class Op:
    """One operation: invoked by ``process`` at ``invoke``, completed at ``complete`` (None: never returned)."""

    process: str
    kind: Kind
    queue: str
    invoke: float
    complete: float | None
    outcome: Outcome
    values: tuple[Value, ...] = ()
    ids: tuple[str, ...] = ()  # message ids, parallel to values when known
    marker: str | None = None  # list: the marker asked for
    next_marker: str | None = None  # list: the marker returned
    limit: int | None = None  # list, claim, pop: the limit asked for
    exhaustive: bool = False  # list: nothing was filtered out (claimed ones included, none hidden by echo)
    claim_id: str | None = None  # claim, release: the claim
    claim_ttl: float | None = None  # claim: the lease asked for, in seconds
    error: str | None = None  # fail, unknown: what was raised
    counts: tuple[int, int, int] | None = None  # stats: (claimed, free, total) as reported

    @property
    def short(self) -> bool:
        """A list page shorter than its limit: nothing more was eligible when it was read."""
        return self.kind is Kind.LIST and self.outcome is Outcome.OK and len(self.values) < (self.limit or 0)

    def to_dict(self) -> dict[str, Any]:
        """The operation as JSON-ready data; fields at their defaults are left out (``from_dict`` fills them)."""
        data: dict[str, Any] = {
            "process": self.process,
            "kind": self.kind.value,
            "queue": self.queue,
            "invoke": self.invoke,
            "complete": self.complete,
            "outcome": self.outcome.value,
        }
        if self.values:
            data["values"] = [list(value) for value in self.values]
        if self.ids:
            data["ids"] = list(self.ids)
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None and value is not False:
                data[name] = list(value) if name == "counts" else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Op:
        values = data.get("values")
        counts = data.get("counts")
        return cls(
            **{
                **data,
                "kind": _KINDS[data["kind"]],
                "outcome": _OUTCOMES[data["outcome"]],
                "values": _values(values) if values else (),
                "ids": tuple(data.get("ids", ())),
                "counts": None if counts is None else (int(counts[0]), int(counts[1]), int(counts[2])),
            }
        )


_KINDS = {kind.value: kind for kind in Kind}
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}


def _values(items: Iterable[Any]) -> tuple[Value, ...]:
    values: tuple[Any, ...] = tuple(tuple(item) for item in items)
    if not all(type(p) is str and type(s) is int for p, s in values):
        return tuple((str(p), int(s)) for p, s in values)
    return values


_OPTIONAL = ("marker", "next_marker", "limit", "exhaustive", "claim_id", "claim_ttl", "error", "counts")


def body_of(value: Value) -> dict[str, Any]:
    """The message body that carries ``value``."""
    return {"p": value[0], "s": value[1]}


def value_of(body: Any) -> Value:
    """The value a message body carries; a body that carries none gets a value no producer ever posts."""
    if isinstance(body, dict) and isinstance(body.get("p"), str) and type(body.get("s")) is int:
        return body["p"], body["s"]
    return f"<not a history value: {json.dumps(body, sort_keys=True)[:60]}>", -1


class Recorder:
    """Records the operations of one process (or thread), in the order it performs them. Not thread-safe.

    With a ``sink``, every operation is also streamed as it happens: :meth:`invoke` sends an ``invoke`` event
    before the call, :meth:`complete` (or :meth:`record`) a ``complete`` event with the whole operation after it,
    each a JSON-ready dict numbered per process (``n``). A process killed mid-call leaves an invoke without its
    completion: an operation of unknown outcome that never returned.
    """

    def __init__(
        self,
        process: str,
        now: Callable[[], float] = time.monotonic,
        sink: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.process = process
        self.now = now
        self.ops: list[Op] = []
        self.sink = sink
        self._number = 0
        self._open = False  # invoke() began an operation that record() has not yet ended
        self._pending: tuple[Kind, str, float, dict[str, Any]] | None = None

    def invoke(self, kind: Kind, queue: str, **details: Any) -> float:
        """Begin an operation (what is known before the call in ``details``); its invoke time."""
        invoke = self.now()
        self._pending = (kind, queue, invoke, details)
        self._number += 1
        self._open = True
        if self.sink is not None:
            partial = Op(self.process, kind, queue, invoke, None, Outcome.UNKNOWN, **details).to_dict()
            self.sink({"event": "invoke", "process": self.process, "n": self._number, "op": partial})
        return invoke

    def complete(self, outcome: Outcome, **details: Any) -> Op:
        """End the operation begun by :meth:`invoke`, now: a call that returned, even with an error."""
        if self._pending is None:
            raise RuntimeError(f"{self.process}: complete() without invoke()")
        kind, queue, invoke, known = self._pending
        self._pending = None
        return self.record(kind, queue, invoke, outcome, self.now(), **{**known, **details})

    def record(
        self, kind: Kind, queue: str, invoke: float, outcome: Outcome, complete: float | None = None, **details: Any
    ) -> Op:
        """Append an operation invoked at ``invoke`` and completing now (or at ``complete``)."""
        if complete is None and outcome is not Outcome.UNKNOWN:
            complete = self.now()
        op = Op(self.process, kind, queue, invoke, complete, outcome, **details)
        self.ops.append(op)
        if not self._open:  # recorded whole, without invoke(): a number of its own
            self._number += 1
        self._open = False
        if self.sink is not None:
            self.sink({"event": "complete", "process": self.process, "n": self._number, "op": op.to_dict()})
        return op


#: Leases are counted on the drivers' clocks and histories on the monotonic clock: a lease is taken to be
#: certainly live, or certainly over, only this many seconds inside its bounds (beyond what the run's
#: :class:`WallClock` samples show the two clocks drifted apart).
CLOCK_SLACK = 0.05


@dataclass(frozen=True)
class WallClock:
    """The wall clock's offset from the monotonic one (``time.time() - time.monotonic()``), sampled during a run.

    Drivers run leases on the wall clock, which hosts slew and step; histories time operations on the monotonic
    one. Between two monotonic times a lease may run shorter or longer than asked by as much as the offset moved
    then: :meth:`certain_end` and :meth:`possible_end` widen a lease's bounds by that. No samples: the clocks are
    taken to agree (within ``CLOCK_SLACK``).
    """

    samples: tuple[tuple[float, float], ...] = ()  # (monotonic, offset), in time order

    def spread(self, start: float, end: float) -> float:
        """How far the offset moved between ``start`` and ``end``: its range over the samples inside, and the last
        one before and first one after (so a step between two samples is counted whole)."""
        if len(self.samples) < 2 or not end > start:
            return 0.0
        first = max(0, bisect.bisect_left(self.samples, (start, -math.inf)) - 1)
        last = bisect.bisect_right(self.samples, (end, math.inf)) + 1
        offsets = [offset for _, offset in self.samples[first:last]]
        return max(offsets) - min(offsets) if len(offsets) > 1 else 0.0

    def certain_end(self, start: float, end: float) -> float:
        """Before when a lease asked for at ``start`` to last until ``end`` (monotonic) was certainly still live."""
        return end - CLOCK_SLACK - self.spread(start, end)

    def possible_end(self, start: float, end: float) -> float:
        """By when a lease asked for at ``start`` to last until ``end`` (monotonic) had certainly run out."""
        return end + CLOCK_SLACK + self.spread(start, end)


#: Clocks that agree: the default of histories recorded without samples.
STEADY = WallClock()


@dataclass
class History:
    """Every operation of a run, from any number of processes."""

    ops: list[Op] = field(default_factory=list)
    #: The wall clock as the run saw it (leases run on it); none sampled: taken to agree with the monotonic one.
    clock: WallClock = STEADY

    @classmethod
    def merge(cls, *parts: Iterable[Op]) -> History:
        return cls([op for part in parts for op in part])

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def queues(self) -> list[str]:
        return sorted({op.queue for op in self.ops})

    def on(self, queue: str) -> list[Op]:
        return [op for op in self.ops if op.queue == queue]

    def to_json(self) -> str:
        return json.dumps([op.to_dict() for op in self.ops])

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls([Op.from_dict(item) for item in json.loads(text)])


@dataclass(frozen=True)
class Anomaly:
    kind: AnomalyKind
    queue: str
    process: str  # the consumer that suffered it ("claims" for the claimers of a queue as a group)
    values: tuple[Value, ...]
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} on {self.queue!r} for {self.process}: {self.detail}"


@dataclass
class Report:
    """What a checker found. ``ok`` when no anomaly was found; ``stats`` counts what was checked."""

    anomalies: list[Anomaly] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def of(self, kind: AnomalyKind) -> list[Anomaly]:
        return [anomaly for anomaly in self.anomalies if anomaly.kind is kind]

    def kinds(self) -> set[AnomalyKind]:
        return {anomaly.kind for anomaly in self.anomalies}

    def extend(self, other: Report) -> Report:
        self.anomalies.extend(other.anomalies)
        for key, count in other.stats.items():
            self.stats[key] = self.stats.get(key, 0) + count
        return self

    def summary(self, limit: int = 20) -> str:
        counts = ", ".join(f"{key}={value}" for key, value in sorted(self.stats.items()))
        if self.ok:
            return f"no anomalies ({counts})"
        by_kind: dict[AnomalyKind, int] = defaultdict(int)
        for anomaly in self.anomalies:
            by_kind[anomaly.kind] += 1
        lines = [
            f"{len(self.anomalies)} anomalies ({', '.join(f'{k}: {n}' for k, n in sorted(by_kind.items()))}); "
            f"checked {counts}"
        ]
        lines += [f"  {anomaly}" for anomaly in self.anomalies[:limit]]
        if len(self.anomalies) > limit:
            lines.append(f"  ... and {len(self.anomalies) - limit} more")
        return "\n".join(lines)


# --- the checkers ----------------------------------------------------------------------------------------------


class _Posted(NamedTuple):
    """What the producers did with one value: attempted at ``invoke``, acknowledged at ``ack`` (inf: never)."""

    process: str
    invoke: float
    ack: float
    failed: bool  # every attempt certainly failed


def _posts(ops: Sequence[Op]) -> dict[Value, _Posted]:
    posted: dict[Value, _Posted] = {}
    for op in ops:
        if op.kind is not Kind.POST:
            continue
        ack = op.complete if op.outcome is Outcome.OK and op.complete is not None else math.inf
        for value in op.values:
            earlier = posted.get(value)
            if earlier is None:
                posted[value] = _Posted(op.process, op.invoke, ack, op.outcome is Outcome.FAIL)
            else:  # posted again (a retry): the earliest acknowledgement counts
                posted[value] = earlier._replace(
                    invoke=min(earlier.invoke, op.invoke),
                    ack=min(earlier.ack, ack),
                    failed=earlier.failed and op.outcome is Outcome.FAIL,
                )
    return posted


def _removed(ops: Sequence[Op]) -> set[Value]:
    """Values a delete or pop may have removed: no consumer can be blamed for missing them."""
    return {
        value
        for op in ops
        if op.kind in (Kind.DELETE, Kind.POP) and op.outcome is not Outcome.FAIL
        for value in op.values
    }


def uncertain_pops(ops: Iterable[Op]) -> int:
    """How many messages pops of unknown outcome may have removed: no one knows which."""
    return sum(op.limit or 0 for op in ops if op.kind is Kind.POP and op.outcome is Outcome.UNKNOWN)


#: An operation whose process died before it returned is assumed to have taken effect, if at all, within this
#: many seconds of its invocation (a server finishes or aborts a dead client's request by then).
PENDING_HORIZON = 30.0


def effect_end(op: Op) -> float:
    """By when ``op`` took effect, if it did."""
    return op.complete if op.complete is not None else op.invoke + PENDING_HORIZON


def _by_process(ops: Iterable[Op], kinds: tuple[Kind, ...]) -> dict[str, list[Op]]:
    grouped: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.kind in kinds:
            grouped[op.process].append(op)
    for process_ops in grouped.values():
        process_ops.sort(key=lambda op: op.invoke)  # stable: recording order breaks ties
    return dict(grouped)


def _last_post_completion(ops: Sequence[Op]) -> float:
    """When the last post completed; inf if one never returned (no consumer can then be sure it has the end)."""
    ends = [op.complete if op.complete is not None else math.inf for op in ops if op.kind is Kind.POST]
    return max(ends, default=-math.inf)


def _fmt(values: Iterable[Value], limit: int = 8) -> str:
    items = list(values)
    text = ", ".join(f"{p}#{s}" for p, s in items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def unexpected(queue: str, consumer: str, delivered: Iterable[Value], posted: dict[Value, _Posted]) -> list[Anomaly]:
    """Values delivered on ``queue`` that no post on it attempted, or whose every post certainly failed."""
    found: list[Value] = []
    for value in dict.fromkeys(delivered):
        origin = posted.get(value)
        if origin is None or origin.failed:
            found.append(value)
    if not found:
        return []
    return [Anomaly(AnomalyKind.UNEXPECTED, queue, consumer, tuple(found), f"delivered, never posted: {_fmt(found)}")]


def duplicated(queue: str, consumer: str, delivered: Sequence[Value]) -> list[Anomaly]:
    """Values delivered more than once in ``delivered``."""
    seen: set[Value] = set()
    twice: list[Value] = []
    for value in delivered:
        if value in seen:
            twice.append(value)
        seen.add(value)
    if not twice:
        return []
    return [Anomaly(AnomalyKind.DUPLICATED, queue, consumer, tuple(dict.fromkeys(twice)), f"seen again: {_fmt(twice)}")]


def producer_order(queue: str, consumer: str, delivered: Sequence[Value]) -> list[Anomaly]:
    """Pairs of one producer's values delivered in an order other than the producer posted them."""
    last: dict[str, int] = {}
    anomalies = []
    for producer, seq in delivered:
        if producer in last and seq < last[producer]:
            anomalies.append(
                Anomaly(
                    AnomalyKind.PRODUCER_ORDER,
                    queue,
                    consumer,
                    ((producer, last[producer]), (producer, seq)),
                    f"{producer}#{seq} delivered after {producer}#{last[producer]}",
                )
            )
        last[producer] = max(seq, last.get(producer, seq))
    return anomalies


def non_monotonic(queue: str, consumer: str, delivered: Sequence[Value], posted: dict[Value, _Posted]) -> list[Anomaly]:
    """Values delivered after a value whose post began only once theirs had been acknowledged."""
    anomalies = []
    latest_invoke, latest = -math.inf, None
    for value in dict.fromkeys(delivered):
        origin = posted.get(value)
        if origin is None:
            continue
        if latest is not None and origin.ack < latest_invoke:
            anomalies.append(
                Anomaly(
                    AnomalyKind.NON_MONOTONIC,
                    queue,
                    consumer,
                    (latest, value),
                    f"{_fmt([value])} (acknowledged before {_fmt([latest])} was posted) delivered after it",
                )
            )
        if origin.invoke > latest_invoke:
            latest_invoke, latest = origin.invoke, value
    return anomalies


def observer_gaps(
    queue: str,
    consumer: str,
    pages: Sequence[Op],
    posted: dict[Value, _Posted],
    removed: set[Value],
    uncertain: int = 0,
) -> list[Anomaly]:
    """Lost and skipped values of one observer that paged through ``pages`` (its list ops, in order).

    A short page (fewer than its limit, nothing filtered out) says nothing more was eligible when it was read:
    every value acknowledged before it was asked for must have been delivered by then. A value never delivered
    although such a page followed its acknowledgement is *lost*; one delivered only after such a page, or never
    delivered although the observer received a value posted after it was acknowledged, was *skipped*.
    ``uncertain``: how many messages pops of unknown outcome may have removed (which, no one knows): as many
    values never delivered are excused.
    """
    first_delivery: dict[Value, int] = {}
    for index, page in enumerate(pages):
        if page.outcome is Outcome.OK:
            for value in page.values:
                first_delivery.setdefault(value, index)
    short_invokes = [page.invoke for page in pages if page.short and page.exhaustive]
    short_indexes = [index for index, page in enumerate(pages) if page.short and page.exhaustive]
    latest_invoke = max((posted[v].invoke for v in first_delivery if v in posted), default=-math.inf)
    lost, late, passed = [], [], []
    for value, origin in sorted(posted.items(), key=lambda item: item[1].ack):
        if origin.ack == math.inf or value in removed:
            continue
        after = bisect.bisect_right(short_invokes, origin.ack)
        due_by = short_indexes[after] if after < len(short_indexes) else None  # first short page after the ack
        delivered_at = first_delivery.get(value)
        if delivered_at is None and due_by is not None:
            lost.append(value)
        elif delivered_at is not None and due_by is not None and delivered_at > due_by:
            late.append(value)
        elif delivered_at is None and origin.ack < latest_invoke:
            passed.append(value)
    if len(lost) + len(passed) <= uncertain:
        lost, passed = [], []
    anomalies = []
    if lost:
        anomalies.append(
            Anomaly(
                AnomalyKind.LOST,
                queue,
                consumer,
                tuple(lost),
                f"acknowledged, never delivered though a later page came back short: {_fmt(lost)}",
            )
        )
    if late:
        anomalies.append(
            Anomaly(
                AnomalyKind.SKIP,
                queue,
                consumer,
                tuple(late),
                f"missing from a short page asked for after they were acknowledged: {_fmt(late)}",
            )
        )
    if passed:
        anomalies.append(
            Anomaly(
                AnomalyKind.SKIP,
                queue,
                consumer,
                tuple(passed),
                f"never delivered, though later-posted messages were: {_fmt(passed)}",
            )
        )
    return anomalies


def check_observers(history: Iterable[Op], *, require_end: bool = True) -> Report:
    """Check every observer (a process with list ops) of every queue in ``history``.

    With ``require_end``, an observer whose last short, unfiltered page was not asked for after every post to
    its queue had completed is reported ``incomplete``.
    """
    report = Report()
    by_queue: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_queue[op.queue].append(op)
    for queue, ops in sorted(by_queue.items()):
        posted = _posts(ops)
        removed = _removed(ops)
        last_post = _last_post_completion(ops)
        for observer, pages in sorted(_by_process(ops, (Kind.LIST,)).items()):
            delivered = [value for page in pages if page.outcome is Outcome.OK for value in page.values]
            report.stats["observers"] = report.stats.get("observers", 0) + 1
            report.stats["delivered"] = report.stats.get("delivered", 0) + len(delivered)
            report.anomalies += unexpected(queue, observer, delivered, posted)
            report.anomalies += duplicated(queue, observer, delivered)
            report.anomalies += producer_order(queue, observer, delivered)
            report.anomalies += non_monotonic(queue, observer, delivered, posted)
            report.anomalies += observer_gaps(queue, observer, pages, posted, removed, uncertain_pops(ops))
            ended = any(page.short and page.exhaustive and page.invoke >= last_post for page in pages)
            if require_end and not ended:
                report.anomalies.append(
                    Anomaly(
                        AnomalyKind.INCOMPLETE,
                        queue,
                        observer,
                        (),
                        "never read a short page after the last post completed",
                    )
                )
        report.stats["acknowledged"] = report.stats.get("acknowledged", 0) + sum(
            1 for origin in posted.values() if origin.ack < math.inf
        )
    return report


@dataclass(frozen=True)
class _Lease:
    claim_id: str
    process: str
    start: float  # the claim certainly existed from here (its create completed) ...
    end: float  # ... until here (its lease, counted from when create was invoked, or its release was invoked)


def leases(
    claims: Sequence[Op], renewals: Sequence[Op], releases: Sequence[Op], clock: WallClock = STEADY
) -> dict[str, tuple[float, float]]:
    """Per claim created (ok), the span it was certainly live: from its creation's completion until its lease
    (counted from when it was asked for, set anew by each renewal acknowledged while the lease certainly ran, cut
    short by any other renewal, which may have shortened it) ran out or its release was asked for.

    A driver reads "now" once, when a call begins: a renewal that waited (on a lock, say) past its lease's end
    may still succeed as of its "now", after another claim took some of its messages; it proves nothing then."""
    released: dict[str, float] = {}
    for op in releases:
        if op.claim_id is not None:
            released[op.claim_id] = min(released.get(op.claim_id, math.inf), op.invoke)
    renewed: dict[str, list[Op]] = defaultdict(list)
    for op in renewals:
        if op.claim_id is not None and op.outcome is not Outcome.FAIL:
            renewed[op.claim_id].append(op)
    spans = {}
    for op in claims:
        if op.outcome is not Outcome.OK or op.complete is None or not op.values or op.claim_id is None:
            continue
        end = op.invoke + (op.claim_ttl if op.claim_ttl is not None else math.inf)
        for renewal in sorted(renewed.get(op.claim_id, ()), key=lambda r: r.invoke):
            renewed_end = renewal.invoke + (renewal.claim_ttl or 0)  # a renewal sets the lease: maybe shorter
            if renewal.outcome is Outcome.OK and renewal.complete is not None and renewal.complete < end:
                end = renewed_end
            else:  # unknown, or acknowledged only after the lease may have run out: it proves no renewal
                end = min(end, renewed_end)
        spans[op.claim_id] = (op.complete, min(clock.certain_end(op.invoke, end), released.get(op.claim_id, math.inf)))
    return spans


def claim_overlaps(
    queue: str, claims: Sequence[Op], releases: Sequence[Op], renewals: Sequence[Op] = (), clock: WallClock = STEADY
) -> list[Anomaly]:
    """Values handed out by two claims while both were certainly live."""
    spans = leases(claims, renewals, releases, clock)
    holders: dict[Value, list[_Lease]] = defaultdict(list)
    for op in claims:
        if op.claim_id not in spans:
            continue
        start, end = spans[op.claim_id]
        lease = _Lease(op.claim_id, op.process, start, end)
        for value in dict.fromkeys(op.values):
            holders[value].append(lease)
    overlapping: dict[tuple[str, str], list[Value]] = defaultdict(list)
    for value, held in holders.items():
        for i, first in enumerate(held):
            for second in held[i + 1 :]:
                if first.claim_id != second.claim_id and first.start < second.end and second.start < first.end:
                    overlapping[(first.claim_id, second.claim_id)].append(value)
    return [
        Anomaly(
            AnomalyKind.CLAIM_OVERLAP,
            queue,
            "claims",
            tuple(values),
            f"held by live claims {first} and {second} at once: {_fmt(values)}",
        )
        for (first, second), values in overlapping.items()
    ]


def _doubtful(claims: Sequence[Op], done: Sequence[Op], clock: WallClock) -> set[int]:
    """Indexes into ``done`` of the claims made while a claim of unknown outcome may have held messages (which,
    no one knows): whatever they did not take may have been held."""
    windows = [
        (
            op.invoke,
            clock.possible_end(op.invoke, effect_end(op) + (op.claim_ttl if op.claim_ttl is not None else math.inf)),
        )
        for op in claims
        if op.outcome is Outcome.UNKNOWN
    ]
    if not windows:
        return set()
    return {
        index
        for index, op in enumerate(done)
        if any(start < (op.complete or math.inf) and op.invoke < end for start, end in windows)
    }


def claim_order(queue: str, claims: Sequence[Op], clock: WallClock = STEADY) -> list[Anomaly]:
    """Claims that took one producer's messages out of order.

    If claim X completed before claim Y was asked for, and Y holds a message of producer P older than one X
    holds, then that older message was already visible and held by no claim when X chose (it is held by Y only),
    so X did not take the oldest eligible messages first. Messages held by more than one claim (released or
    lapsed, then claimed again) are left to ``claim_overlaps``; so are claims X made while a claim of unknown
    outcome may have held messages.
    """
    done = sorted(
        (op for op in claims if op.outcome is Outcome.OK and op.complete is not None and op.values),
        key=lambda op: op.complete or 0.0,
    )
    doubtful = _doubtful(claims, done, clock)
    holders: dict[Value, int] = defaultdict(int)
    for op in done:
        for value in set(op.values):
            holders[value] += 1
    ends = [op.complete or 0.0 for op in done]
    # Per producer, the running maximum (in completion order) of the newest message a claim held.
    newest: dict[str, list[tuple[int, int]]] = defaultdict(list)  # producer -> [(prefix length, seq)] best so far
    best: dict[str, tuple[int, int]] = {}
    for index, op in enumerate(done):
        if index in doubtful:
            continue
        for producer, seq in op.values:
            if producer not in best or seq > best[producer][0]:
                best[producer] = (seq, index)
                newest[producer].append((index, seq))
    anomalies = []
    for later in done:
        before = bisect.bisect_left(ends, later.invoke)  # claims completed before this one was asked for
        reported: set[str] = set()
        for producer, seq in later.values:
            if producer in reported or holders[(producer, seq)] != 1 or producer not in newest:
                continue
            record = newest[producer]
            at = bisect.bisect_left(record, (before, -1)) - 1  # the best among done[:before]
            if at < 0 or record[at][1] <= seq:
                continue
            earlier = done[record[at][0]]
            reported.add(producer)
            anomalies.append(
                Anomaly(
                    AnomalyKind.PRODUCER_ORDER,
                    queue,
                    "claims",
                    ((producer, record[at][1]), (producer, seq)),
                    f"{earlier.process} claimed {producer}#{record[at][1]} (claim {earlier.claim_id}), and only "
                    f"afterwards {later.process} claimed the older {producer}#{seq} (claim {later.claim_id})",
                )
            )
    return anomalies


def check_claims(history: Iterable[Op], *, require_end: bool = True, clock: WallClock | None = None) -> Report:
    """Check the claimers of every queue in ``history``, each claimer alone and all of a queue's together.

    Each claimer must get one producer's messages in posting order, and so must the claimers together (a claim
    asked for after another completed never gets an older message of the same producer); no claim may hold a
    value twice or one no one posted; no two live claims may hold one value; and once a claim has come back
    empty, every value acknowledged before it was asked for must have been claimed by someone (unless a claim of
    unknown outcome may hold it). With ``require_end``, a queue whose claimers never came back empty after the
    last post completed is reported ``incomplete``. Leases run on ``clock`` (by default the history's own).
    """
    clock = clock_of(history) if clock is None else clock
    report = Report()
    by_queue: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_queue[op.queue].append(op)
    for queue, ops in sorted(by_queue.items()):
        claims = [op for op in ops if op.kind is Kind.CLAIM]
        if not claims:
            continue
        posted = _posts(ops)
        removed = _removed(ops)
        claimed: set[Value] = set()
        for claimer, mine in sorted(_by_process(claims, (Kind.CLAIM,)).items()):
            delivered = [value for op in mine if op.outcome is Outcome.OK for value in op.values]
            claimed.update(delivered)
            report.stats["claimers"] = report.stats.get("claimers", 0) + 1
            report.stats["claimed"] = report.stats.get("claimed", 0) + len(delivered)
            report.anomalies += unexpected(queue, claimer, delivered, posted)
            for op in mine:
                report.anomalies += duplicated(queue, claimer, op.values)
                report.anomalies += producer_order(queue, claimer, op.values)
        report.anomalies += claim_order(queue, claims, clock)
        renewals = [op for op in ops if op.kind is Kind.RENEW]
        releases = [op for op in ops if op.kind is Kind.RELEASE]
        report.anomalies += claim_overlaps(queue, claims, releases, renewals, clock)
        empties = [op for op in claims if op.outcome is Outcome.OK and not op.values]
        empty = [op.invoke for op in empties]
        doubtful = _doubtful(claims, empties, clock)
        certain = [op.invoke for index, op in enumerate(empties) if index not in doubtful]
        if certain:
            last_empty = max(certain)
            lost = [
                value
                for value, origin in posted.items()
                if origin.ack < last_empty and value not in claimed and value not in removed
            ]
            if len(lost) <= uncertain_pops(op for op in ops if op.invoke < last_empty):
                lost = []
            if lost:
                report.anomalies.append(
                    Anomaly(
                        AnomalyKind.LOST,
                        queue,
                        "claims",
                        tuple(lost),
                        f"acknowledged, never claimed though a later claim came back empty: {_fmt(lost)}",
                    )
                )
        if require_end and not any(when >= _last_post_completion(ops) for when in empty):
            report.anomalies.append(
                Anomaly(
                    AnomalyKind.INCOMPLETE,
                    queue,
                    "claims",
                    (),
                    "no claim came back empty after the last post completed",
                )
            )
    return report


def clock_of(history: Iterable[Op]) -> WallClock:
    """The wall clock a history recorded (:class:`History`), or clocks that agree."""
    return history.clock if isinstance(history, History) else STEADY


def check(history: Iterable[Op], *, require_end: bool = True) -> Report:
    """Every check: observers and claims of every queue."""
    ops, clock = list(history), clock_of(history)
    return check_observers(ops, require_end=require_end).extend(check_claims(ops, require_end=require_end, clock=clock))
