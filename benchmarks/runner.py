"""The benchmark run: every contender on every workload, alternating, repeated, each run's history checked.

For each workload, the repetitions go A B C A B C ... over the contenders that can run it (never all of A, then all
of B), each on a fresh queue (filled through the backend's bulk path when the workload starts from a full queue),
except that workloads naming one ``fixture`` share one filled queue per contender, read-only workloads first. A run
ends with a drain of its queue by claims, and its whole history (fill, holding claims, every role's ops, the
drain) goes through ``marconi.tests.history``; any anomaly or error makes the contender INVALID on that workload.
Before any measuring, each raw floor proves it is equivalent to its driver: each reads what the other wrote.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from marconi.tests.history import Anomaly, AnomalyKind, Kind, Op, Outcome, Report, check_claims, check_observers

from .contenders import CLAIM_TTL, FILLER, Client, Contender, body
from .roles import FIRST_PAGE, RoleResult, RoleSpec, histogram
from .workers import STARTUP, WorkerError, Workers
from .workloads import Workload, WorkloadError

PERCENTILES = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
MAX_ANOMALIES = 5  # kept per run in the results


@dataclass
class Measured:
    """One run: one contender, one workload, one repetition."""

    contender: str
    workload: str
    repetition: int
    rates: dict[str, float] = field(default_factory=dict)  # role kind -> messages/s
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # op -> p50, p99, p99.9, max, count
    round_trips: dict[str, float] = field(default_factory=dict)  # op -> per op ("unit": per iteration)
    statements: dict[str, int] = field(default_factory=dict)
    tallies: dict[str, int] = field(default_factory=dict)  # the clients' tallies, summed over the roles
    anomalies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def valid(self) -> bool:
        return not self.anomalies and not self.errors


@dataclass
class Results:
    """Everything a benchmark run produced."""

    contenders: list[Contender]
    workloads: list[Workload]
    runs: list[Measured] = field(default_factory=list)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # contender label -> prepare() and facts()
    equivalence: dict[str, list[str]] = field(default_factory=dict)  # floor label -> problems (empty: proven)
    skipped: dict[str, str] = field(default_factory=dict)  # contender label -> why it did not run


# --- checking ----------------------------------------------------------------------------------------------------


def fill_ops(queue: str, count: int, holds: list[tuple[str, list[int]]], invoke: float, complete: float) -> list[Op]:
    """The fill and the claims holding the head, as history ops (they are part of what the run is checked on)."""
    if not count:
        return []
    ops = [Op(FILLER, Kind.POST, queue, invoke, complete, Outcome.OK, values=tuple((FILLER, i) for i in range(count)))]
    for index, (claim_id, seqs) in enumerate(holds):
        values = tuple((FILLER, i) for i in seqs)
        ops.append(
            Op(f"holder-{index}", Kind.CLAIM, queue, invoke, complete, Outcome.OK, values=values, claim_id=claim_id,
               claim_ttl=CLAIM_TTL, limit=len(values))
        )  # fmt: skip
    return ops


def check_first_pages(ops: Iterable[Op], expected: tuple[Any, ...]) -> list[Anomaly]:
    """Every first page of an unchanging queue must be its oldest unheld messages, in order."""
    anomalies = []
    for op in ops:
        if op.outcome is Outcome.OK and op.values != expected:
            missing = tuple(value for value in expected if value not in op.values)
            kind = AnomalyKind.SKIP if missing else AnomalyKind.UNEXPECTED
            detail = f"first page {op.values[:3]}... is not {expected[:3]}..."
            anomalies.append(Anomaly(kind, op.queue, op.process, missing or op.values, detail))
    return anomalies


def check(ops: list[Op], workload: Workload, drained: bool, first_page: tuple[Any, ...]) -> Report:
    first = [op for op in ops if op.process.startswith(FIRST_PAGE)]
    rest = [op for op in ops if not op.process.startswith(FIRST_PAGE)]
    report = check_observers(rest, require_end=workload.producers > 0)
    report.extend(check_claims(rest, require_end=drained))
    report.anomalies += check_first_pages(first, first_page)
    return report


# --- metrics -----------------------------------------------------------------------------------------------------


def rates(results: list[RoleResult]) -> dict[str, float]:
    """Messages/s per role kind: all of its roles' timed messages over the span of their timed phases."""
    found = {}
    for kind in ("producer", "observer", "consumer"):
        mine = [r for r in results if r.kind == kind]
        if not mine:
            continue
        span = max(r.finished for r in mine) - min(r.started for r in mine)
        found[kind] = sum(r.messages for r in mine) / span if span > 0 else 0.0
    return found


def latencies(results: list[RoleResult]) -> dict[str, dict[str, float]]:
    merged: dict[str, HdrHistogram] = {}
    for result in results:
        for kind, encoded in result.histograms.items():
            merged.setdefault(kind, histogram()).decode_and_add(encoded)
    found = {}
    for kind, h in merged.items():
        figures = {name: h.get_value_at_percentile(p) / 1000 for name, p in PERCENTILES}
        found[kind] = {**figures, "max": h.get_max_value() / 1000, "count": h.get_total_count()}
    return found


def round_trips(results: list[RoleResult]) -> dict[str, float]:
    totals: dict[str, int] = {}
    counts: dict[str, int] = {}
    for result in results:
        for kind, trips in result.round_trips.items():
            totals[kind] = totals.get(kind, 0) + trips
            counts[kind] = counts.get(kind, 0) + result.counted.get(kind, 0)
    found = {kind: totals[kind] / counts[kind] for kind in totals if counts.get(kind)}
    units = sum(result.units for result in results)
    if units and totals:
        found["unit"] = sum(totals.values()) / units
    return found


# --- the run -----------------------------------------------------------------------------------------------------


def order(workloads: list[Workload]) -> list[list[Workload]]:
    """Groups run together: each workload alone, in the given order; then those sharing a fixture, read-only ones
    first, the fixtures from the smallest to the deepest (the deep queues are left for the end)."""
    groups: list[list[Workload]] = []
    by_fixture: dict[str, list[Workload]] = {}
    for workload in workloads:
        if workload.fixture is None:
            groups.append([workload])
        elif workload.fixture in by_fixture:
            by_fixture[workload.fixture].append(workload)
        else:
            by_fixture[workload.fixture] = [workload]
            groups.append(by_fixture[workload.fixture])
    for group in groups:
        group.sort(key=lambda w: bool(w.consumers or w.producers))
    return sorted(groups, key=lambda group: (group[0].fixture is not None, group[0].fill if group[0].fixture else 0))


class Runner:
    def __init__(
        self,
        contenders: list[Contender],
        workloads: list[Workload],
        repetitions: int = 3,
        progress: Callable[[str], None] | None = None,
        multiprocess: dict[str, bool] | None = None,
    ) -> None:
        self.contenders = contenders
        self.workloads = workloads
        self.repetitions = repetitions
        self.progress = progress or (lambda label: None)
        self.multiprocess = multiprocess or {}
        self.queue_serial = 0

    def able(self, workload: Workload) -> list[Contender]:
        return [c for c in self.contenders if workload.needs <= c.client_class.ops]

    def total(self) -> int:
        return sum(len(self.able(w)) * self.repetitions for w in self.workloads)

    def run(self, outcome: Results) -> None:
        size = max((len(w.roles) for w in self.workloads), default=1)
        with Workers(size) as workers:
            for group in order(self.workloads):
                self._group(workers, group, outcome)
            for contender in self.contenders:
                for index in range(len(workers)):
                    workers.send(index, "forget", contender)
                    workers.receive(index, 60)

    def _queues(self, workload: Workload) -> list[str]:
        self.queue_serial += 1
        return [f"w{self.queue_serial}q{k}" for k in range(workload.queues)]

    def _prepare_queues(
        self, workers: Workers, contender: Contender, queues: list[str], fill: int, held: int, size: int
    ) -> list[Op]:
        ops: list[Op] = []
        for queue in queues:
            workers.call(0, contender, "create_queue", queue)
            if fill:
                invoke = time.monotonic()
                holds = workers.call(0, contender, "fill", queue, fill, held, size)
                ops += fill_ops(queue, fill, holds, invoke, time.monotonic())
        return ops

    def _group(self, workers: Workers, group: list[Workload], outcome: Results) -> None:
        fixture = group[0].fixture
        shared: dict[Contender, tuple[list[str], list[Op]]] = {}
        if fixture is not None:
            first = group[0]
            needed = self.repetitions * sum(w.consumers * (w.messages + w.warmup * w.claim) for w in group)
            if needed > (first.fill - first.held) * first.queues:
                raise WorkloadError(
                    f"fixture {fixture!r}: its consumers take up to {needed} messages over {self.repetitions} "
                    f"repetitions, more than its {first.fill - first.held} free ones"
                )
            for contender in {c for w in group for c in self.able(w)}:
                queues = self._queues(first)
                shared[contender] = (
                    queues,
                    self._prepare_queues(workers, contender, queues, first.fill, first.held, first.message_size),
                )
        try:
            for workload in group:
                contenders = self.able(workload)
                for repetition in range(1, self.repetitions + 1):
                    for contender in contenders:  # alternating: A B C, A B C, ...
                        self.progress(f"{workload.name} {contender.label} #{repetition}")
                        if fixture is not None:  # checked with everything done on the fixture before
                            queues, setup = shared[contender]
                            measured = self._run(workers, contender, workload, repetition, queues, setup, drain=False)
                        else:
                            queues = self._queues(workload)
                            setup = self._prepare_queues(
                                workers, contender, queues, workload.prefilled, workload.held, workload.message_size
                            )
                            try:
                                measured = self._run(
                                    workers, contender, workload, repetition, queues, setup, drain=True
                                )
                            finally:
                                for queue in queues:
                                    workers.call(0, contender, "delete_queue", queue)
                        outcome.runs.append(measured)
        finally:
            for contender, (queues, _) in shared.items():
                if not contender.client_class.cleanup_removes_queues:
                    for queue in queues:
                        workers.call(0, contender, "delete_queue", queue)

    def _run(
        self,
        workers: Workers,
        contender: Contender,
        workload: Workload,
        repetition: int,
        queues: list[str],
        setup: list[Op],
        drain: bool,
    ) -> Measured:
        specs = []
        for index, kind in enumerate(workload.roles):
            name = f"{FIRST_PAGE}-{index}" if kind == "observer" and workload.first_page else f"{kind}-{index}"
            specs.append(RoleSpec(name, kind, queues[index % len(queues)], workload))
        measured = Measured(contender.label, workload.name, repetition)
        started = time.monotonic()
        results = self._play(workers, contender, workload, specs, measured)
        ops = setup  # grows: a fixture's next run is checked with this one's ops too
        for result in results:
            ops += result.ops
            measured.errors += result.errors
            for key, count in result.tallies.items():
                measured.tallies[key] = measured.tallies.get(key, 0) + count
        drained = False
        if drain and not measured.errors:
            for queue in queues:
                try:
                    ops += _drain(workers, contender, queue)
                    drained = True
                except WorkerError as error:
                    measured.errors.append(f"the drain after the run failed: {error}")
                    drained = False
        expected = tuple((FILLER, i) for i in range(workload.held, min(workload.fill, workload.held + workload.page)))
        report = check(ops, workload, drained, expected)
        measured.anomalies = [str(anomaly) for anomaly in report.anomalies[:MAX_ANOMALIES]]
        if len(report.anomalies) > MAX_ANOMALIES:
            measured.anomalies.append(f"... and {len(report.anomalies) - MAX_ANOMALIES} more")
        measured.checked = dict(report.stats)
        measured.rates = rates(results)
        measured.latency_ms = latencies(results)
        measured.round_trips = round_trips(results)
        measured.seconds = time.monotonic() - started
        return measured

    def _play(
        self, workers: Workers, contender: Contender, workload: Workload, specs: list[RoleSpec], measured: Measured
    ) -> list[RoleResult]:
        workers.done.clear()
        workers.stop.clear()
        together = self.multiprocess.get(contender.label, True) and len(specs) <= len(workers)
        assignment = [[spec] for spec in specs] if together else [specs]
        for index, assigned in enumerate(assignment):
            workers.send(index, "roles", contender, assigned)
        limit = workload.seconds + STARTUP
        for index in range(len(assignment)):
            workers.receive(index, limit)  # ready: warmed up
        for index in range(len(assignment)):
            workers.send(index, "go")
        results: list[RoleResult] = []
        pending = set(range(len(assignment)))
        producers = {i for i, assigned in enumerate(assignment) if any(s.kind == "producer" for s in assigned)}
        if not producers or not together:
            workers.done.set()
        deadline = time.monotonic() + limit
        while pending:
            for index in sorted(pending):
                if workers.pipes[index].poll(0.005):
                    results += workers.receive(index, 1)[1]
                    pending.discard(index)
            if not (producers & pending):
                workers.done.set()
            if time.monotonic() > deadline and not workers.stop.is_set():
                workers.stop.set()
                measured.errors.append(f"stopped after {limit:.0f} s: roles still running")
                deadline = time.monotonic() + 30
            elif time.monotonic() > deadline:
                raise WorkerError("roles did not stop when told to")
        return results


def _drain(workers: Workers, contender: Contender, queue: str) -> list[Op]:
    workers.send(0, "drain", contender, queue)
    ops: list[Op] = workers.receive(0, 600)[1]
    return ops


# --- equivalence of a floor and its driver ------------------------------------------------------------------------


def prove_equivalence(driver: Client, floor: Client) -> list[str]:
    """Each writes, the other reads: same ids, bodies and order in pages, claims and pops; deletes cross over."""
    problems: list[str] = []
    for writer, reader, queue in ((floor, driver, "equiv_f"), (driver, floor, "equiv_d")):
        who = f"{type(writer).__name__} wrote, {type(reader).__name__} read"
        writer.create_queue(queue)
        try:
            bodies = [body("equivalence", i, 64) for i in range(12)]
            ids = writer.post(queue, bodies[:5]) + writer.post(queue, bodies[5:])
            first, marker = reader.list(queue, None, 7, True)
            second, _ = reader.list(queue, marker, 7, True)
            page = first + second
            if [i.id for i in page] != ids or [i.body for i in page] != bodies:
                problems.append(f"{who}: pages differ ({[i.id for i in page]} vs {ids})")
            claim_id, held = reader.claim(queue, 4)
            if [i.id for i in held] != ids[:4] or [i.body for i in held] != bodies[:4]:
                problems.append(f"{who}: the claim took {[i.id for i in held]}, not {ids[:4]}")
            for item in held:
                writer.delete(queue, item.id, claim_id)
            writer.bulk_delete(queue, ids[4:8], None)
            popped = reader.pop(queue, 10)
            if [i.id for i in popped] != ids[8:] or [i.body for i in popped] != bodies[8:]:
                problems.append(f"{who}: the pop took {[i.id for i in popped]}, not {ids[8:]}")
            left, _ = writer.list(queue, None, 10, True)
            if left:
                problems.append(f"{who}: {len(left)} messages left after deleting everything")
        finally:
            writer.delete_queue(queue)
    return problems


# --- summaries -----------------------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Summary:
    """A contender on a workload: medians over its repetitions."""

    contender: str
    workload: str
    rate: float | None
    rates: dict[str, float]
    latency_ms: dict[str, dict[str, float]]
    round_trips: dict[str, float]
    valid: bool
    repetitions: int
    problems: list[str]
    tallies: dict[str, int] = field(default_factory=dict)  # summed over the repetitions


def summarise(outcome: Results) -> dict[tuple[str, str], Summary]:
    by_key: dict[tuple[str, str], list[Measured]] = {}
    for run in outcome.runs:
        by_key.setdefault((run.workload, run.contender), []).append(run)
    measures = {w.name: w.measures for w in outcome.workloads}
    found = {}
    for (workload, contender), runs in by_key.items():
        kinds = {kind for run in runs for kind in run.rates}
        role_rates = {kind: median([run.rates[kind] for run in runs if kind in run.rates]) or 0.0 for kind in kinds}
        ops = {op for run in runs for op in run.latency_ms}
        latency = {
            op: {
                figure: median([run.latency_ms[op][figure] for run in runs if op in run.latency_ms]) or 0.0
                for figure in ("p50", "p99", "p99.9", "max", "count")
            }
            for op in ops
        }
        trips = {op for run in runs for op in run.round_trips}
        round_trip = {op: median([run.round_trips[op] for run in runs if op in run.round_trips]) or 0.0 for op in trips}
        problems = [problem for run in runs for problem in run.errors + run.anomalies]
        tallies: dict[str, int] = {}
        for run in runs:
            for key, count in run.tallies.items():
                tallies[key] = tallies.get(key, 0) + count
        found[(workload, contender)] = Summary(
            contender,
            workload,
            role_rates.get(measures.get(workload, ""), None),
            role_rates,
            latency,
            round_trip,
            all(run.valid for run in runs),
            len(runs),
            problems[:MAX_ANOMALIES],
            tallies,
        )
    return found
