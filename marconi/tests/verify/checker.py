"""The checker of a verify run: every check of ``marconi.tests.history``, plus what consumers and stats add.

On top of the observers' and claims' checks (lost, unexpected, duplicated, skip, producer order, non-monotonic,
claim overlap):

``delivered-after-delete``
    a message listed, claimed or popped by an operation asked for after a delete or pop of it was acknowledged.
``duplicated``
    also: a message popped by two pops (deleted twice), or one value stored under two message ids (posted twice).
``stats``
    a queue's stats (total, claimed) outside what the history allows at the moment they were read, or
    ``claimed + free != total``.
``skip``
    also: a message an observer never received although a later page of its came back short, yet the final
    read found stored (the history module calls it lost for that observer; it is that observer's skip).
``incomplete``
    the run's final read of a queue never came back with a short page.

Operations of unknown outcome may or may not have happened, never twice: a post of unknown outcome may be
stored or not; a delete of unknown outcome may have removed its messages or not; a pop or a claim of unknown
outcome may have taken any messages up to its limit (the checks excuse as many as that, never more).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from marconi.tests.history import (
    Anomaly,
    AnomalyKind,
    Kind,
    Op,
    Outcome,
    Report,
    Value,
    WallClock,
    check_claims,
    check_observers,
    clock_of,
    effect_end,
    leases,
)

FINAL_PREFIX = "final-"  # the process name of the run's final read of a queue: final-<queue>
CLAIMERS = "claims"  # the process name of anomalies of a queue's claimers together


def _fmt(values: Iterable[Value], limit: int = 8) -> str:
    items = list(values)
    text = ", ".join(f"{p}#{s}" for p, s in items[:limit])
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _by_queue(ops: Iterable[Op]) -> dict[str, list[Op]]:
    grouped: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        grouped[op.queue].append(op)
    return grouped


Spans = dict[str, tuple[float, float]]


def _spans(ops: Sequence[Op], clock: WallClock) -> Spans:
    """Per claim of ``ops`` created, the span it was certainly live (``history.leases``)."""
    kinds = (Kind.CLAIM, Kind.RENEW, Kind.RELEASE)
    claims, renewals, releases = ([op for op in ops if op.kind is kind] for kind in kinds)
    return leases(claims, renewals, releases, clock)


def _certain_removals(ops: Sequence[Op], spans: Spans) -> list[Op]:
    """The acknowledged pops, and the acknowledged deletes that completed while their claim was certainly live.

    A delete under a claim leaves alone the messages its claim no longer holds, as of the "now" read when the call
    began: one that completed after the lease may have run out may have found some taken by another claim."""
    certain = []
    for op in ops:
        if op.kind not in (Kind.DELETE, Kind.POP) or op.outcome is not Outcome.OK or op.complete is None:
            continue
        if op.kind is Kind.DELETE and op.claim_id is not None:
            start, end = spans.get(op.claim_id, (math.inf, -math.inf))
            if not start <= op.complete < end:
                continue
        certain.append(op)
    return certain


def _removals(ops: Sequence[Op], spans: Spans) -> dict[Value, Op]:
    """Per value, the certain removal of it (see _certain_removals) that completed first."""
    first: dict[Value, Op] = {}
    for op in _certain_removals(ops, spans):
        if op.complete is not None:
            for value in op.values:
                if value not in first or op.complete < (first[value].complete or math.inf):
                    first[value] = op
    return first


def deliveries(queue: str, ops: Sequence[Op], spans: Spans) -> list[Anomaly]:
    """Delivered after deletion, popped twice, stored under two ids."""
    anomalies: list[Anomaly] = []
    removed = _removals(ops, spans)
    late: dict[tuple[str, str], list[Value]] = defaultdict(list)
    pops: dict[Value, int] = defaultdict(int)
    ids: dict[Value, set[str]] = defaultdict(set)
    for op in ops:
        if op.kind not in (Kind.LIST, Kind.CLAIM, Kind.POP) or op.outcome is not Outcome.OK:
            continue
        for index, value in enumerate(op.values):
            if index < len(op.ids):
                ids[value].add(op.ids[index])
            if op.kind is Kind.POP:
                pops[value] += 1
            removal = removed.get(value)
            if removal is not None and removal is not op and op.invoke > (removal.complete or math.inf):
                late[(op.process, f"{removal.kind} by {removal.process}")].append(value)
    for (process, how), values in late.items():
        anomalies.append(
            Anomaly(
                AnomalyKind.DELIVERED_AFTER_DELETE,
                queue,
                process,
                tuple(values),
                f"delivered after their {how} was acknowledged: {_fmt(values)}",
            )
        )
    twice = [value for value, count in pops.items() if count > 1]
    if twice:
        anomalies.append(
            Anomaly(AnomalyKind.DUPLICATED, queue, "pops", tuple(twice), f"popped more than once: {_fmt(twice)}")
        )
    stored = [value for value, known in ids.items() if len(known) > 1]
    if stored:
        anomalies.append(
            Anomaly(
                AnomalyKind.DUPLICATED,
                queue,
                "posts",
                tuple(stored),
                f"stored more than once (delivered under two message ids): {_fmt(stored)}",
            )
        )
    return anomalies


def _possible_ends(ops: Sequence[Op], clock: WallClock) -> dict[str, float]:
    """Per claim created (ok), the latest its lease may have lasted until (renewals of any outcome counted)."""
    renewals: dict[str, list[Op]] = defaultdict(list)
    released: dict[str, float] = {}
    for op in ops:
        if op.claim_id is None:
            continue
        if op.kind is Kind.RENEW and op.outcome is not Outcome.FAIL:
            renewals[op.claim_id].append(op)
        elif op.kind is Kind.RELEASE and op.outcome is Outcome.OK and op.complete is not None:
            released[op.claim_id] = min(released.get(op.claim_id, math.inf), op.complete)
    ends = {}
    for op in ops:
        if op.kind is Kind.CLAIM and op.outcome is Outcome.OK and op.claim_id is not None and op.complete is not None:
            end = op.complete + (op.claim_ttl or 0)
            for renewal in renewals.get(op.claim_id, ()):
                end = max(end, effect_end(renewal) + (renewal.claim_ttl or 0))
            ends[op.claim_id] = min(clock.possible_end(op.invoke, end), released.get(op.claim_id, math.inf))
    return ends


def _sweep(
    starts: dict[Value, float], ends: dict[Value, float], windows: Sequence[tuple[float, float]]
) -> Iterator[set[Value]]:
    """For each ``(enter, leave)`` of ``windows`` (each increasing): the values whose start is before ``enter`` and
    whose end (if any) is not before ``leave``. One set, updated in place from one window to the next."""
    by_start = sorted(starts.items(), key=lambda item: item[1])
    by_end = sorted(ends.items(), key=lambda item: item[1])
    present: set[Value] = set()
    gone: set[Value] = set()
    entered = left = 0
    for enter, leave in windows:
        while left < len(by_end) and by_end[left][1] < leave:
            gone.add(by_end[left][0])
            present.discard(by_end[left][0])
            left += 1
        while entered < len(by_start) and by_start[entered][1] < enter:
            if by_start[entered][0] not in gone:
                present.add(by_start[entered][0])
            entered += 1
        yield present


def stats(queue: str, ops: Sequence[Op], clock: WallClock, spans: Spans) -> list[Anomaly]:
    """Each stats read (``counts``) against the bounds the history puts on ``total`` and ``claimed`` then."""
    reads = [op for op in ops if op.kind is Kind.STATS and op.outcome is Outcome.OK and op.counts is not None]
    if not reads:
        return []
    posted_ok: dict[Value, float] = {}  # acknowledged at
    posted_maybe: dict[Value, float] = {}  # first attempted at (any outcome but failed)
    removed_ok: dict[Value, float] = {}
    removed_maybe: dict[Value, float] = {}
    for op in ops:
        if op.outcome is Outcome.FAIL:
            continue
        if op.kind is Kind.POST:
            for value in op.values:
                posted_maybe[value] = min(posted_maybe.get(value, math.inf), op.invoke)
                if op.outcome is Outcome.OK and op.complete is not None:
                    posted_ok[value] = min(posted_ok.get(value, math.inf), op.complete)
        elif op.kind in (Kind.DELETE, Kind.POP):
            for value in op.values:
                removed_maybe[value] = min(removed_maybe.get(value, math.inf), op.invoke)
    for op in _certain_removals(ops, spans):
        for value in op.values:
            removed_ok[value] = min(removed_ok.get(value, math.inf), op.complete or math.inf)
    claims = [op for op in ops if op.kind is Kind.CLAIM]
    possible_end = _possible_ends(ops, clock)
    unknown_pops = [op for op in ops if op.kind is Kind.POP and op.outcome is Outcome.UNKNOWN]
    unknown_claims = [op for op in claims if op.outcome is Outcome.UNKNOWN]
    held = sorted(
        (op for op in claims if op.outcome is Outcome.OK and op.claim_id in possible_end), key=lambda op: op.invoke
    )
    reads.sort(key=lambda op: op.invoke)
    windows = [(read.invoke, read.complete or math.inf) for read in reads]
    surely_sets = _sweep(posted_ok, removed_maybe, windows)
    maybe_sets = _sweep(posted_maybe, removed_ok, [(s1, s0) for s0, s1 in windows])
    live: list[tuple[float, int, Op]] = []  # claims that may be live, by when they surely are not
    taken = 0
    anomalies = []
    for read, (s0, s1), present_surely, present_maybe in zip(reads, windows, surely_sets, maybe_sets, strict=True):
        assert read.counts is not None
        claimed, free, total = read.counts
        pops = sum(op.limit or 0 for op in unknown_pops if op.invoke < s1)
        grabs = sum(
            op.limit or 0
            for op in unknown_claims
            if op.invoke < s1 and clock.possible_end(op.invoke, effect_end(op) + (op.claim_ttl or 0)) > s0
        )
        low = max(0, len(present_surely) - pops)
        high = len(present_maybe)
        while taken < len(held) and held[taken].invoke < s1:
            op = held[taken]
            assert op.claim_id is not None
            heapq.heappush(live, (max(possible_end[op.claim_id], spans.get(op.claim_id, (0.0, 0.0))[1]), taken, op))
            taken += 1
        while live and live[0][0] <= s0:
            heapq.heappop(live)
        held_surely: set[Value] = set()
        held_maybe: set[Value] = set()
        for _, _, op in live:
            assert op.claim_id is not None
            start, end = spans.get(op.claim_id, (math.inf, -math.inf))
            surely = start < s0 and end > s1
            maybe = possible_end[op.claim_id] > s0
            for value in op.values:
                if surely and value in present_surely:
                    held_surely.add(value)
                if maybe and value in present_maybe:
                    held_maybe.add(value)
        claimed_low = max(0, len(held_surely) - pops)
        claimed_high = len(held_maybe) + grabs
        problems = []
        if not low <= total <= high:
            problems.append(f"total {total}, the history allows {low} to {high}")
        if not claimed_low <= claimed <= claimed_high:
            problems.append(f"claimed {claimed}, the history allows {claimed_low} to {claimed_high}")
        if claimed + free != total:
            problems.append(f"claimed {claimed} + free {free} != total {total}")
        if problems:
            anomalies.append(
                Anomaly(
                    AnomalyKind.STATS,
                    queue,
                    read.process,
                    (),
                    f"stats read at {s0:.3f}-{s1:.3f}: {'; '.join(problems)}",
                )
            )
    return anomalies


def final_reads(queue: str, ops: Sequence[Op]) -> list[Anomaly]:
    """The run's final read of ``queue`` must have reached its end (a short page)."""
    final = [op for op in ops if op.process == f"{FINAL_PREFIX}{queue}"]
    if any(op.short for op in final):
        return []
    reader = f"{FINAL_PREFIX}{queue}"
    return [Anomaly(AnomalyKind.INCOMPLETE, queue, reader, (), "the final read never reached the end")]


def stored_not_lost(report: Report, ops: Sequence[Op]) -> None:
    """An observer's "lost" messages that the final read found were stored: that observer skipped them."""
    stored: dict[str, set[Value]] = defaultdict(set)
    for op in ops:
        if op.process.startswith(FINAL_PREFIX) and op.kind is Kind.LIST and op.outcome is Outcome.OK:
            stored[op.queue].update(op.values)
    anomalies = []
    for anomaly in report.anomalies:
        found = [value for value in anomaly.values if value in stored[anomaly.queue]]
        observer = anomaly.process != CLAIMERS and not anomaly.process.startswith(FINAL_PREFIX)
        if anomaly.kind is not AnomalyKind.LOST or not observer or not found:
            anomalies.append(anomaly)
            continue
        anomalies.append(
            Anomaly(
                AnomalyKind.SKIP,
                anomaly.queue,
                anomaly.process,
                tuple(found),
                f"never delivered to this observer, though a later page came back short, and stored (the final "
                f"read has them): {_fmt(found)}",
            )
        )
        rest = tuple(value for value in anomaly.values if value not in stored[anomaly.queue])
        if rest:
            anomalies.append(replace(anomaly, values=rest, detail=f"{anomaly.detail.split(':')[0]}: {_fmt(rest)}"))
    report.anomalies = anomalies


def check_run(history: Iterable[Op], *, final: bool = True) -> Report:
    """Every check of a verify run's history (``final``: the run ended with a final read of every queue)."""
    ops, clock = list(history), clock_of(history)
    report = check_observers(ops, require_end=False).extend(check_claims(ops, require_end=False, clock=clock))
    stored_not_lost(report, ops)
    for queue, mine in sorted(_by_queue(ops).items()):
        spans = _spans(mine, clock)
        report.anomalies += deliveries(queue, mine, spans)
        report.anomalies += stats(queue, mine, clock, spans)
        if final:
            report.anomalies += final_reads(queue, mine)
        report.stats["stats reads"] = report.stats.get("stats reads", 0) + sum(
            1 for op in mine if op.kind is Kind.STATS and op.outcome is Outcome.OK
        )
    report.stats["operations"] = len(ops)
    return report
