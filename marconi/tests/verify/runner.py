"""The verify run: producers, observers and consumers working on queues of one URI while faults are injected,
every operation streamed to a history file (:mod:`.journal`).

Workers are processes (:mod:`marconi.tests.processes`), each loading its own driver from the URI; a driver that
does not declare ``multiprocess`` (its store lives in one process, like ``memory://``) runs them as threads sharing
one driver.
The run ends after ``ops`` operations in all or ``seconds`` seconds, whichever comes first. Every worker runs
the workload's one role loop (``marconi.tests.workloads``), persisting through backend errors, behind a
:class:`Gate` that counts the run's operations, closes at the end, and holds every worker at a quiet point.

Quiet points: every ``quiet_every`` seconds the run pauses every worker between two operations, reads each
queue's stats (recorded as a ``stats`` operation of the process ``auditor``) and lets them go on; and once more
when the workers have stopped. Faults (:mod:`.faults`) are injected one at a time, in turn, every ``fault_every``
seconds, never during a quiet point, each recorded with its start, end and what it did. A worker killed by a
fault is replaced by a new process of a new name (``producer-0~1``): the checker sees a new producer, whose
sequence numbers start again. At the end a reader pages through every queue from its head (``final-q0``): the
checker's proof of what was stored. All along, the wall clock is recorded beside the monotonic one
(:class:`.journal.ClockWatch`): drivers run leases on the wall clock, and hosts slew and step it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from marconi.storage import Capability, DriverBase, load
from marconi.tests import workloads
from marconi.tests.history import Kind, Outcome, Recorder, value_of
from marconi.tests.processes import worker_context
from marconi.tests.verify.journal import ClockWatch, Journal

#: Seconds a quiet point waits for every worker to finish its operation in flight before it gives up.
QUIET_PATIENCE = 10.0
#: Seconds the workers get to start and load their drivers (spawned interpreters, on a loaded machine).
STARTUP_PATIENCE = 120.0
#: Seconds a worker keeps trying to load its driver (a fault may be under way as it starts).
LOAD_PATIENCE = 30.0
#: Seconds stopped workers get to finish their last operation before they are killed.
STOP_PATIENCE = 30.0
#: The page size of the final read.
FINAL_LIMIT = 50
#: How often the final read tries a page again after a backend error (a server still coming back).
FINAL_ATTEMPTS = 50
#: Seconds between two looks of the run's main loop (progress, faults, quiet points).
TICK = 0.05
#: Seconds between two looks at a quiet point's flags (workers held there, and the run waiting for them): every
#: worker looks at once, so a short period burns the CPU a loaded machine lacks.
HOLD_TICK = 0.01


class RunError(RuntimeError):
    """The run itself failed: a worker crashed on its own, the URI does not load, the queues cannot be made."""


@dataclass(frozen=True)
class Plan:
    """What to run. ``wrap``: ``"module:callable"`` applied to every worker's driver (planted-bug tests)."""

    uri: str
    producers: int = 2
    observers: int = 2
    consumers: int = 3
    queues: int = 1
    ops: int = 10_000
    seconds: float = 60.0
    faults: tuple[str, ...] = ()
    fault_every: float = 1.5
    quiet_every: float = 5.0
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    wrap: str | None = None
    threads: bool | None = None  # None: threads only for a driver that cannot share its store between processes

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "faults": list(self.faults)}


@dataclass
class Progress:
    """What the run has done so far, for a progress bar."""

    ops: int = 0
    elapsed: float = 0.0
    faults: int = 0
    quiet_points: int = 0


@dataclass
class RunResult:
    path: Path
    project: str
    queues: list[str]
    progress: Progress
    errors: list[str]
    faults: dict[str, int]
    seed: int


def resolve(name: str) -> Callable[[DriverBase], DriverBase]:
    """``"package.module:callable"`` as the callable."""
    module_name, _, attribute = name.partition(":")
    module = __import__(module_name, fromlist=[attribute])
    wrapper: Callable[[DriverBase], DriverBase] = getattr(module, attribute)
    return wrapper


def open_driver(plan: Plan) -> DriverBase:
    driver = load(plan.uri, **plan.options)
    return resolve(plan.wrap)(driver) if plan.wrap else driver


# Shared cells, each written by one side only and never behind a lock: a worker SIGKILLed while holding a shared
# lock would stop every other worker and the run with it.
STOP, PAUSE, GO, DEADLINE = range(4)  # the run's signals (RawArray of doubles), written by the run
OPS, READY, PAUSED = range(3)  # a worker's cells (RawArray of longs), written by that worker


@dataclass
class Gate:
    """The gate of every worker: closes at the end, holds workers at a quiet point, counts the worker's ops.

    ``signals`` (STOP, PAUSE, GO, DEADLINE) are the run's; ``mine`` (OPS, READY, PAUSED) this worker's. The run
    ends the run when the workers' operations add up to its bound.
    """

    signals: Any
    mine: Any

    def start(self) -> bool:
        """Report ready and wait for the run to start; False if it stopped first."""
        self.mine[READY] = 1
        while not self.signals[GO]:
            if self.signals[STOP]:
                return False
            time.sleep(0.01)
        return True

    def proceed(self) -> bool:
        if self.signals[PAUSE]:
            self.mine[PAUSED] = 1
            while self.signals[PAUSE] and not self.signals[STOP]:
                time.sleep(HOLD_TICK)
            self.mine[PAUSED] = 0
        if self.signals[STOP] or time.monotonic() > self.signals[DEADLINE]:
            return False
        self.mine[OPS] += 1
        return True


class _Never:
    def is_set(self) -> bool:
        return False


def _work(driver: DriverBase, role: workloads.Role, gate: Gate, journal: Journal) -> None:
    if gate.start():
        role.loop(driver, _Never(), gate, Recorder(role.name, sink=journal.write))


def _worker_main(plan: Plan, role: workloads.Role, path: str, gate: Gate) -> None:
    """One worker process: its own driver, its own descriptor on the history file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run stops its workers itself
    with Journal(path) as journal:
        driver = _load_through_faults(plan, role, journal)
        if driver is None:
            raise SystemExit(3)
        try:
            _work(driver, role, gate, journal)
        except BaseException:
            journal.write({"event": "error", "process": role.name, "detail": traceback.format_exc()})
            raise SystemExit(1) from None
        finally:
            with contextlib.suppress(Exception):
                driver.close()


def _load_through_faults(plan: Plan, role: workloads.Role, journal: Journal) -> DriverBase | None:
    """The worker's driver. A worker started while a fault is under way (a successor, right as connections are
    killed or the server restarts) may see its driver's setup fail: it tries again for ``LOAD_PATIENCE`` seconds."""
    deadline = time.monotonic() + LOAD_PATIENCE
    while True:
        try:
            return open_driver(plan)
        except Exception as error:
            if time.monotonic() > deadline:
                journal.write({"event": "error", "process": role.name, "detail": f"cannot load the driver: {error!r}"})
                return None
            time.sleep(0.2)


class Worker:
    """One worker: a role, run in a process or a thread, with its pause flag."""

    def __init__(self, role: workloads.Role, kind: str, gate: Gate, process: Any) -> None:
        self.role = role
        self.kind = kind  # producer | observer | consumer
        self.gate = gate
        self.process = process
        self.killed = False

    @property
    def alive(self) -> bool:
        return bool(self.process.is_alive())


class Run:
    """One verify run (see the module docstring). ``faults``: fault objects by name (:mod:`.faults`)."""

    def __init__(
        self,
        plan: Plan,
        history: Path | str,
        faults: dict[str, Any] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.plan = plan
        self.path = Path(history)
        self.fault_kinds = faults or {}
        missing = sorted(set(plan.faults) - set(self.fault_kinds))
        if missing:
            raise RunError(f"no fault named {', '.join(missing)} for {plan.uri}")
        self.report_progress = progress or (lambda progress: None)
        self.rng = random.Random(plan.seed)
        self.project = f"verify-{uuid.uuid4().hex[:10]}"
        self.queues = [f"q{index}" for index in range(plan.queues)]
        self.context = worker_context(plan.uri)
        self.signals = self.context.RawArray("d", 4)
        self.signals[DEADLINE] = float("inf")
        self.workers: list[Worker] = []
        self.incarnations: dict[str, int] = {}
        self.errors: list[str] = []
        self.progress = Progress()
        self.injected: dict[str, int] = {name: 0 for name in plan.faults}
        self.driver: DriverBase | None = None
        self.threads = False

    # --- the run ------------------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        self.path.unlink(missing_ok=True)
        with Journal(self.path) as journal:
            self.journal = journal
            try:
                self.driver = open_driver(self.plan)
            except Exception as error:
                raise RunError(f"cannot load a driver for {self.plan.uri}: {error}") from error
            try:
                self.threads = (
                    self.plan.threads
                    if self.plan.threads is not None
                    else Capability.MULTIPROCESS not in self.driver.capabilities
                )
                if self.threads and any(getattr(self.fault_kinds[name], "kind", None) for name in self.plan.faults):
                    raise RunError(
                        f"{self.plan.uri}: the driver does not declare multiprocess, so its workers are threads "
                        "and none can be killed (drop kill-producer / kill-consumer)"
                    )
                journal.write({"event": "run", **self.plan.describe(), "project": self.project, "queues": self.queues})
                with ClockWatch(journal):
                    for queue in self.queues:
                        self.driver.queue_controller.upsert(queue, {"verify": True}, project=self.project)
                    self._run_workers()
                    self._quiet_point()
                    for queue in self.queues:
                        self._final_read(queue)
            finally:
                self._cleanup()
        return RunResult(
            self.path, self.project, self.queues, self.progress, self.errors, self.injected, self.plan.seed
        )

    def _run_workers(self) -> None:
        plan = self.plan
        for index in range(plan.producers):
            self._start(self._role("producer", f"producer-{index}", index))
        for index in range(plan.observers):
            self._start(self._role("observer", f"observer-{index}", index))
        for index in range(plan.consumers):
            self._start(self._role("consumer", f"consumer-{index}", index))
        startup = time.monotonic() + STARTUP_PATIENCE
        while not all(worker.gate.mine[READY] for worker in self.workers):
            self._check_workers()
            if self.errors or time.monotonic() > startup:
                self.signals[STOP] = 1
                self._join()
                raise RunError(f"workers did not start: {'; '.join(self.errors) or 'timed out'}")
            time.sleep(TICK)
        started = time.monotonic()
        self.signals[DEADLINE] = started + plan.seconds
        self.signals[GO] = 1
        next_fault = started + plan.fault_every * (0.5 + self.rng.random())
        turn = self.rng.randrange(len(plan.faults)) if plan.faults else 0
        next_quiet = started + plan.quiet_every if plan.quiet_every > 0 else float("inf")
        try:
            while True:
                now = time.monotonic()
                self.progress.ops = self.ops_done()
                self.progress.elapsed = now - started
                self.report_progress(self.progress)
                every_fault = all(self.injected.get(name) for name in plan.faults)  # with faults: once each has been
                if (self.progress.ops >= plan.ops and every_fault) or now > self.signals[DEADLINE]:
                    break
                self._check_workers()
                if not any(worker.alive for worker in self.workers):
                    raise RunError(f"every worker has exited: {'; '.join(self.errors) or 'no error reported'}")
                if plan.faults and now >= next_fault:  # in turn, from a random one: each comes before any twice
                    self._inject(plan.faults[(turn + self.progress.faults) % len(plan.faults)])
                    next_fault = time.monotonic() + plan.fault_every
                elif now >= next_quiet:
                    self._quiet_point()
                    next_quiet = time.monotonic() + plan.quiet_every
                time.sleep(TICK)
        finally:
            self.signals[STOP] = 1
            self._join()
        self.progress.ops = self.ops_done()
        self.progress.elapsed = time.monotonic() - started
        self.report_progress(self.progress)

    def _role(self, kind: str, name: str, index: int) -> workloads.Role:
        seed = self.rng.randrange(2**31)
        queue = self.queues[index % len(self.queues)]
        if kind == "producer":
            return workloads.Producer(
                name,
                self.queues[0],
                self.project,
                seed=seed,
                persist=True,
                batches=None,
                max_batch=3,
                queues=tuple(self.queues),
                client_uuid=str(uuid.UUID(int=index + 1)),
            )
        if kind == "observer":
            return workloads.Observer(name, queue, self.project, seed=seed, persist=True, max_limit=10)
        return workloads.Consumer(name, queue, self.project, seed=seed, persist=True)

    def _start(self, role: workloads.Role) -> Worker:
        kind = role.name.split("-", 1)[0]
        gate = Gate(self.signals, self.context.RawArray("q", 3))
        if self.threads:
            assert self.driver is not None
            thread = threading.Thread(
                target=self._thread_main, args=(role, gate), name=f"marconi-verify-{role.name}", daemon=True
            )
            worker = Worker(role, kind, gate, thread)
        else:
            process = self.context.Process(
                target=_worker_main,
                args=(self.plan, role, str(self.path), gate),
                name=f"marconi-verify-{role.name}",
                daemon=True,
            )
            worker = Worker(role, kind, gate, process)
        worker.process.start()
        self.workers.append(worker)
        return worker

    def _thread_main(self, role: workloads.Role, gate: Gate) -> None:
        assert self.driver is not None
        try:
            _work(self.driver, role, gate, self.journal)
        except BaseException:
            self.journal.write({"event": "error", "process": role.name, "detail": traceback.format_exc()})
            self.errors.append(f"{role.name} crashed: {traceback.format_exc()}")

    def ops_done(self) -> int:
        return sum(int(worker.gate.mine[OPS]) for worker in self.workers)

    def _check_workers(self) -> None:
        """A worker process that exited on its own, not killed by a fault, is an error of the run."""
        for worker in self.workers:
            if not self.threads and not worker.killed and worker.process.exitcode not in (None, 0):
                self.errors.append(f"{worker.role.name} exited with code {worker.process.exitcode}")
                worker.killed = True  # reported once

    def _join(self) -> None:
        patience = time.monotonic() + STOP_PATIENCE
        for worker in self.workers:
            worker.process.join(max(0.0, patience - time.monotonic()))
        for worker in self.workers:
            if worker.alive:
                self.errors.append(f"{worker.role.name} did not stop within {STOP_PATIENCE:g} s (stuck driver?)")
                if not self.threads:
                    worker.process.kill()
                    worker.process.join(5)
        self._check_workers()

    # --- faults and quiet points --------------------------------------------------------------------------

    def _inject(self, name: str) -> None:
        start = time.monotonic()
        try:
            detail = self.fault_kinds[name].inject(self)
        except Exception as error:
            detail = f"failed: {type(error).__name__}: {error}"
            self.errors.append(f"fault {name} failed: {error}")
        end = time.monotonic()
        self.journal.write({"event": "fault", "name": name, "start": start, "end": end, "detail": detail})
        self.injected[name] = self.injected.get(name, 0) + 1
        self.progress.faults += 1

    def kill_worker(self, kind: str) -> str:
        """SIGKILL a live worker process of ``kind`` (producer, consumer, observer) and start its successor."""
        if self.threads:
            raise RunError("workers are threads here (the driver does not declare multiprocess): none can be killed")
        candidates = [worker for worker in self.workers if worker.kind == kind and worker.alive and not worker.killed]
        if not candidates:
            return f"no live {kind} to kill"
        victim = self.rng.choice(candidates)
        victim.killed = True
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.join(10)
        base = victim.role.name.split("~", 1)[0]
        self.incarnations[base] = self.incarnations.get(base, 0) + 1
        successor = replace(victim.role, name=f"{base}~{self.incarnations[base]}", seed=self.rng.randrange(2**31))
        self._start(successor)
        return f"killed {victim.role.name} (pid {victim.process.pid}), started {successor.name}"

    def _quiet_point(self) -> None:
        """Hold every worker between two operations, record each queue's stats, let them go on."""
        assert self.driver is not None
        self.signals[PAUSE] = 1
        try:
            deadline = time.monotonic() + QUIET_PATIENCE
            while any(worker.alive and not worker.gate.mine[PAUSED] for worker in self.workers):
                if time.monotonic() > deadline:
                    return  # a worker is stuck in a call: no quiet point this time
                time.sleep(HOLD_TICK)
            recorder = Recorder("auditor", sink=self.journal.write)
            for queue in self.queues:
                recorder.invoke(Kind.STATS, queue)
                try:
                    stats = self.driver.queue_controller.stats(queue, project=self.project)["messages"]
                except Exception as error:
                    recorder.complete(Outcome.FAIL, error=f"{type(error).__name__}: {error}")
                    continue
                recorder.complete(Outcome.OK, counts=(stats["claimed"], stats["free"], stats["total"]))
            self.progress.quiet_points += 1
        finally:
            self.signals[PAUSE] = 0

    def _final_read(self, queue: str) -> None:
        """Page through ``queue`` from its head, claimed messages included, until a page comes back short."""
        assert self.driver is not None
        recorder = Recorder(f"final-{queue}", sink=self.journal.write)
        marker: str | None = None
        failures = 0
        while failures < FINAL_ATTEMPTS:
            recorder.invoke(Kind.LIST, queue, marker=marker, limit=FINAL_LIMIT)
            try:
                page = self.driver.message_controller.list(
                    queue, project=self.project, marker=marker, limit=FINAL_LIMIT, include_claimed=True
                )
            except Exception as error:
                recorder.complete(Outcome.FAIL, error=f"{type(error).__name__}: {error}")
                failures += 1
                time.sleep(0.1)
                continue
            items = list(page.items)
            recorder.complete(
                Outcome.OK,
                values=tuple(value_of(item["body"]) for item in items),
                ids=tuple(item["id"] for item in items),
                next_marker=page.marker,
                exhaustive=True,
            )
            marker = page.marker
            if len(items) < FINAL_LIMIT:
                return
        self.errors.append(f"the final read of {queue!r} failed {FINAL_ATTEMPTS} times")

    def _cleanup(self) -> None:
        if self.driver is None:
            return
        with contextlib.suppress(Exception):
            for queue in self.queues:
                self.driver.queue_controller.delete(queue, project=self.project)
        with contextlib.suppress(Exception):
            self.driver.close()


def run(
    plan: Plan,
    history: Path | str,
    faults: dict[str, Any] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> RunResult:
    """Run ``plan``, writing the history to ``history``; faults by name (see :func:`.faults.available`)."""
    return Run(plan, history, faults, progress).execute()
