"""Concurrent workloads that record a :mod:`~marconi.tests.history` as they run, in threads or in processes.

Roles, each a small picklable dataclass whose ``steps`` perform and record one operation each; every role runs
the same loop (``Role.loop``: ask the gate, take a step, stop or pause as the step says):

- :class:`Producer` posts batches of messages whose bodies carry unique values ``(producer, seq)``, numbered in
  posting order. ``MessageConflict`` makes a post *failed* (certainly not posted); any other error makes it
  *unknown* and ends the role.
- :class:`Observer` pages through a queue with markers and small random limits (claimed messages included,
  nothing hidden) until the producers are done and a page comes back short.
- :class:`Claimer` claims with a long lease and never releases, until the producers are done and a claim comes
  back empty.
- :class:`Consumer` (``marconi verify``) claims with short leases, renews, releases, lets claims lapse, deletes
  under its claims one by one and in bulk, and pops, until stopped.

:func:`run_threads` runs roles as threads sharing one driver; :func:`run_processes` runs each role in its own
process (``spawn``), each loading its own driver from the URI. Both start the roles together, tell consumers
when every producer has finished, give every role a deadline, and raise :class:`WorkloadStuck` rather than hang
when a role does not finish in time.
"""

from __future__ import annotations

import queue as queue_module
import random
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from marconi.storage import ClaimDoesNotExist, DriverBase, Message, MessageConflict, MessageNotClaimedBy, load
from marconi.tests.history import History, Kind, Op, Outcome, Recorder, Value, body_of, value_of
from marconi.tests.processes import worker_context

#: A claim lease no workload outlives, so every claim it makes stays live to the end.
LONG_CLAIM_TTL = 3600
#: Message TTL: longer than any workload, so nothing expires while it runs.
MESSAGE_TTL = 3600
#: A consumer that finds nothing waits this long before asking again (no timing is asserted on it).
IDLE_PAUSE = 0.002
#: Seconds a process that has sent its result gets to exit before it is terminated: only a bound against a hung
#: process (a loaded machine can take seconds to tear an interpreter down), never a timing assertion.
EXIT_PATIENCE = 30.0
#: Seconds a process that never finished gets, once told to stop, before it is terminated.
STUCK_PATIENCE = 3.0


class Flag(Protocol):
    """What roles need of an event: ``threading.Event`` and ``multiprocessing.Event`` both qualify."""

    def is_set(self) -> bool: ...


class Gate(Protocol):
    """Lets a role go on with its next operation: False means stop now. May block (a run paused for a look)."""

    def proceed(self) -> bool: ...


@dataclass(frozen=True)
class Deadline:
    """The gate of a bounded workload: open until ``stop`` is set or ``deadline`` (monotonic) passes."""

    stop: Flag
    deadline: float

    def proceed(self) -> bool:
        return not self.stop.is_set() and time.monotonic() <= self.deadline


class WorkloadStuck(AssertionError):
    """A role did not finish within the workload's timeout (a stuck or very slow driver)."""


@dataclass
class RoleResult:
    """What one role sends back: its operations, and the errors that ended it early (empty when none did)."""

    name: str
    ops: list[Op] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Step:
    """What one operation of a role came to: messages it received, whether it found nothing to do (a short page,
    an empty claim), and the backend error it met, if any."""

    received: int = 0
    idle: bool = False
    error: str | None = None


#: A role that keeps going after a backend error waits this long before its next operation.
ERROR_PAUSE = 0.01


@dataclass
class Role:
    """A named participant working on one queue of one project.

    Every role runs the same loop (:meth:`loop`): ask the gate, perform the next operation of :meth:`steps` (a
    generator performing and recording one operation per step), and stop when the gate closes, the steps run
    out, a consumer has received more than its budget, a backend error was met (unless ``persist``), or a
    consumer found nothing to do after every producer had finished.
    """

    name: str
    queue: str
    project: str | None
    seed: int = 0
    #: Consumers stop once they have received more messages than producers can post: a driver that hands out
    #: messages again and again must fail the test, not fill the memory. Set by the runners.
    budget: int | None = None
    #: Keep going after a backend error (a run with faults) instead of ending with it.
    persist: bool = False

    def over_budget(self, received: int, result: RoleResult) -> bool:
        if self.budget is None or received <= self.budget:
            return False
        result.errors.append(f"{self.name}: received {received} messages, more than the {self.budget} posted at most")
        return True

    def steps(self, driver: DriverBase, recorder: Recorder, rng: random.Random) -> Iterator[Step]:
        """Perform and record one operation per step, for as long as the role has work."""
        raise NotImplementedError

    def unfinished(self) -> str:
        """Why stopping at the gate is a failure of a role that does not persist."""
        return f"{self.name}: stopped before it finished"

    def run(self, driver: DriverBase, done: Flag, stop: Flag, deadline: float) -> RoleResult:
        """Work until finished; ``done``: every producer has finished; ``stop``: give up now."""
        return self.loop(driver, done, Deadline(stop, deadline), Recorder(self.name))

    def loop(self, driver: DriverBase, done: Flag, gate: Gate, recorder: Recorder) -> RoleResult:
        """The one loop every role runs (see the class docstring)."""
        rng = random.Random(self.seed)
        result = RoleResult(self.name, recorder.ops)
        steps = self.steps(driver, recorder, rng)
        received = 0
        while True:
            if not gate.proceed():
                if not self.persist:
                    result.errors.append(self.unfinished())
                break
            finished = done.is_set()  # read before asking: nothing found after this is the end
            step = next(steps, None)
            if step is None:
                break
            received += step.received
            if step.error is not None:
                if not self.persist:
                    result.errors.append(f"{self.name}: {step.error}")
                    break
                time.sleep(ERROR_PAUSE)
            elif self.over_budget(received, result):
                break
            elif step.idle:
                if finished:
                    break
                time.sleep(IDLE_PAUSE)
        return result


@dataclass
class Producer(Role):
    """Posts ``batches`` batches (None: until stopped) of 1 to ``max_batch`` messages, one after another, to each of
    ``queues`` in turn.

    Sequence numbers run across every queue, so on each queue the producer's messages are numbered in posting
    order. ``queue`` is the first queue; ``queues`` defaults to just that one.
    """

    batches: int | None = 10
    max_batch: int = 5
    queues: tuple[str, ...] = ()
    client_uuid: str = "6f0a2c4e-0000-4000-8000-000000000000"
    pause: float = 0.0  # up to this long between posts, to interleave with others

    def unfinished(self) -> str:
        return f"{self.name}: stopped before its deadline passed, before its {self.batches} batches were posted"

    def steps(self, driver: DriverBase, recorder: Recorder, rng: random.Random) -> Iterator[Step]:
        targets = self.queues or (self.queue,)
        seq = 0
        batch = 0
        while self.batches is None or batch < self.batches:
            target = targets[batch % len(targets)]
            batch += 1
            values: tuple[Value, ...] = tuple((self.name, seq + i) for i in range(rng.randint(1, self.max_batch)))
            seq += len(values)
            messages = [{"ttl": MESSAGE_TTL, "body": body_of(value)} for value in values]
            recorder.invoke(Kind.POST, target, values=values)
            try:
                ids = driver.message_controller.post(target, messages, self.client_uuid, project=self.project)
            except MessageConflict as error:
                recorder.complete(Outcome.FAIL, error=_describe(error))
                yield Step()
                continue
            except Exception as error:
                recorder.complete(Outcome.UNKNOWN, error=_describe(error))
                yield Step(error=f"post raised {_describe(error)}")
                continue
            recorder.complete(Outcome.OK, ids=tuple(ids))
            yield Step()
            if self.pause:
                time.sleep(rng.uniform(0, self.pause))


@dataclass
class Observer(Role):
    """Pages with markers and random limits of 1 to ``max_limit``, claimed messages included, until the end."""

    max_limit: int = 7
    include_claimed: bool = True

    def unfinished(self) -> str:
        return f"{self.name}: did not reach the end of {self.queue!r} before its deadline"

    def steps(self, driver: DriverBase, recorder: Recorder, rng: random.Random) -> Iterator[Step]:
        marker: str | None = None
        while True:
            limit = rng.randint(1, self.max_limit)
            recorder.invoke(Kind.LIST, self.queue, marker=marker, limit=limit)
            try:
                page = driver.message_controller.list(
                    self.queue, project=self.project, marker=marker, limit=limit, include_claimed=self.include_claimed
                )
                items = list(page.items)
            except Exception as error:  # a read: it certainly changed nothing
                recorder.complete(Outcome.FAIL, error=_describe(error))
                yield Step(error=f"list raised {_describe(error)}")
                continue
            recorder.complete(
                Outcome.OK,
                values=tuple(value_of(item["body"]) for item in items),
                ids=tuple(item["id"] for item in items),
                next_marker=page.marker,
                exhaustive=self.include_claimed,
            )
            marker = page.marker
            yield Step(received=len(items), idle=len(items) < limit)


@dataclass
class Claimer(Role):
    """Claims up to 1 to ``max_limit`` messages at a time with a long lease, never releasing, until the end."""

    max_limit: int = 5
    ttl: int = LONG_CLAIM_TTL

    def unfinished(self) -> str:
        return f"{self.name}: did not claim the end of {self.queue!r} before its deadline"

    def steps(self, driver: DriverBase, recorder: Recorder, rng: random.Random) -> Iterator[Step]:
        while True:
            messages = yield from claim(driver, recorder, self, rng.randint(1, self.max_limit), self.ttl)
            if messages is not None:
                yield Step(received=len(messages), idle=not messages)


def claim(
    driver: DriverBase, recorder: Recorder, role: Role, limit: int, ttl: int, grace: int = 60
) -> Generator[Step, None, list[Message] | None]:
    """Claim (a generator step): yields a Step of its own on error; returns what was claimed, else None."""
    recorder.invoke(Kind.CLAIM, role.queue, limit=limit, claim_ttl=ttl)
    try:
        claim_id, messages = driver.claim_controller.create(
            role.queue, {"ttl": ttl, "grace": grace}, project=role.project, limit=limit
        )
    except Exception as error:
        recorder.complete(Outcome.UNKNOWN, error=_describe(error))
        yield Step(error=f"claim raised {_describe(error)}")
        return None
    recorder.complete(
        Outcome.OK,
        values=tuple(value_of(message["body"]) for message in messages),
        ids=tuple(message["id"] for message in messages),
        claim_id=claim_id,
    )
    return messages


@dataclass
class _Held:
    """A claim a consumer holds: its id, its messages' ids and values, and when it lapses by the local clock."""

    claim_id: str
    ids: list[str]
    values: list[Value]
    lapses: float


@dataclass
class Consumer(Role):
    """Claims with short leases and works through them: renews some, releases some, lets some lapse, deletes
    messages under the claim one by one and in bulk, and pops; until stopped (a verify run's consumer).

    A delete or renewal under a claim that has lapsed certainly did nothing when the driver says so
    (``MessageNotClaimedBy``, ``ClaimDoesNotExist``): it is recorded as failed.
    """

    max_limit: int = 8
    ttl: tuple[int, int] = (1, 3)  # the lease of each claim, in whole seconds, drawn from this range
    pop_share: float = 0.2  # of the operations that take new messages, this share pops instead of claiming

    def steps(self, driver: DriverBase, recorder: Recorder, rng: random.Random) -> Iterator[Step]:
        held: list[_Held] = []
        while True:
            held = [claim for claim in held if claim.ids]
            choice = rng.random()
            if not held or choice < 0.15:
                if rng.random() < self.pop_share:
                    yield self._pop(driver, recorder, rng.randint(1, 3))
                    continue
                ttl = rng.randint(*self.ttl)
                messages = yield from claim(driver, recorder, self, rng.randint(1, self.max_limit), ttl, grace=5)
                if messages is not None:
                    if messages:
                        claim_id = recorder.ops[-1].claim_id
                        assert claim_id is not None
                        ids = [message["id"] for message in messages]
                        values = [value_of(message["body"]) for message in messages]
                        held.append(_Held(claim_id, ids, values, time.monotonic() + ttl))
                    yield Step(received=len(messages), idle=not messages)
                continue
            mine = held[rng.randrange(len(held))]
            if choice < 0.4:
                yield self._delete_one(driver, recorder, mine, held)
            elif choice < 0.75:
                yield self._delete_all(driver, recorder, mine, held)
            elif choice < 0.83:
                yield self._renew(driver, recorder, mine, held, rng.randint(*self.ttl))
            elif choice < 0.93:
                yield self._release(driver, recorder, mine, held)
            else:
                held.remove(mine)  # let it lapse: never touched again
                yield Step()

    def _pop(self, driver: DriverBase, recorder: Recorder, limit: int) -> Step:
        recorder.invoke(Kind.POP, self.queue, limit=limit)
        try:
            popped = driver.message_controller.pop(self.queue, limit=limit, project=self.project)
        except Exception as error:
            recorder.complete(Outcome.UNKNOWN, error=_describe(error))
            return Step(error=f"pop raised {_describe(error)}")
        values = tuple(value_of(message["body"]) for message in popped)
        recorder.complete(Outcome.OK, values=values, ids=tuple(message["id"] for message in popped))
        return Step(received=len(popped), idle=not popped)

    def _delete_one(self, driver: DriverBase, recorder: Recorder, mine: _Held, held: list[_Held]) -> Step:
        message_id, value = mine.ids.pop(0), mine.values.pop(0)
        recorder.invoke(Kind.DELETE, self.queue, values=(value,), ids=(message_id,), claim_id=mine.claim_id)
        try:
            driver.message_controller.delete(self.queue, message_id, project=self.project, claim=mine.claim_id)
        except MessageNotClaimedBy as error:  # the claim lapsed: nothing was deleted
            recorder.complete(Outcome.FAIL, error=_describe(error))
            held.remove(mine)
            return Step()
        except Exception as error:
            recorder.complete(Outcome.UNKNOWN, error=_describe(error))
            return Step(error=f"delete raised {_describe(error)}")
        recorder.complete(Outcome.OK)
        return Step()

    def _delete_all(self, driver: DriverBase, recorder: Recorder, mine: _Held, held: list[_Held]) -> Step:
        held.remove(mine)
        ids, values = tuple(mine.ids), tuple(mine.values)
        recorder.invoke(Kind.DELETE, self.queue, values=values, ids=ids, claim_id=mine.claim_id)
        try:
            driver.message_controller.bulk_delete(self.queue, ids, project=self.project, claim=mine.claim_id)
        except ClaimDoesNotExist as error:  # the claim lapsed: nothing was deleted
            recorder.complete(Outcome.FAIL, error=_describe(error))
            return Step()
        except Exception as error:
            recorder.complete(Outcome.UNKNOWN, error=_describe(error))
            return Step(error=f"bulk delete raised {_describe(error)}")
        recorder.complete(Outcome.OK)
        return Step()

    def _renew(self, driver: DriverBase, recorder: Recorder, mine: _Held, held: list[_Held], ttl: int) -> Step:
        recorder.invoke(Kind.RENEW, self.queue, claim_id=mine.claim_id, claim_ttl=ttl)
        try:
            driver.claim_controller.update(self.queue, mine.claim_id, {"ttl": ttl, "grace": 5}, project=self.project)
        except ClaimDoesNotExist as error:
            recorder.complete(Outcome.FAIL, error=_describe(error))
            held.remove(mine)
            return Step()
        except Exception as error:
            recorder.complete(Outcome.UNKNOWN, error=_describe(error))
            return Step(error=f"renew raised {_describe(error)}")
        recorder.complete(Outcome.OK)
        mine.lapses = time.monotonic() + ttl
        return Step()

    def _release(self, driver: DriverBase, recorder: Recorder, mine: _Held, held: list[_Held]) -> Step:
        held.remove(mine)
        recorder.invoke(Kind.RELEASE, self.queue, claim_id=mine.claim_id)
        try:
            driver.claim_controller.delete(self.queue, mine.claim_id, project=self.project)
        except Exception as error:
            recorder.complete(Outcome.UNKNOWN, error=_describe(error))
            return Step(error=f"release raised {_describe(error)}")
        recorder.complete(Outcome.OK)
        return Step()


@dataclass
class Outcomes:
    """The results of a run: every role's result, and the history they recorded together."""

    results: list[RoleResult]

    @property
    def history(self) -> History:
        return History.merge(*(result.ops for result in self.results))

    @property
    def errors(self) -> list[str]:
        return [error for result in self.results for error in result.errors]


def with_budgets(roles: Sequence[Role]) -> list[Role]:
    """The roles, each consumer given the most messages the producers among them can post."""
    producers = [role for role in roles if isinstance(role, Producer)]
    if any(role.batches is None for role in producers):
        return list(roles)  # producers bounded by time: so is everyone
    most = sum((role.batches or 0) * role.max_batch for role in producers)
    return [role if isinstance(role, Producer) else replace(role, budget=most) for role in roles]


def _crashed(name: str, error: BaseException) -> RoleResult:
    return RoleResult(name, errors=[f"{name} crashed: {''.join(traceback.format_exception(error)).strip()}"])


def run_threads(driver: DriverBase, roles: Sequence[Role], timeout: float = 60.0) -> Outcomes:
    """Run ``roles`` as threads sharing ``driver``; producers first to finish set ``done`` for the consumers.

    Raises WorkloadStuck if a role has not finished ``timeout`` seconds after the start (its thread is told to
    stop and left behind as a daemon).
    """
    roles = with_budgets(roles)
    done, stop = threading.Event(), threading.Event()
    start = threading.Barrier(len(roles))
    results: dict[str, RoleResult] = {}
    deadline = time.monotonic() + timeout

    def body(role: Role) -> None:
        try:
            start.wait(timeout)
            results[role.name] = role.run(driver, done, stop, deadline)
        except BaseException as error:
            results[role.name] = _crashed(role.name, error)

    threads = {role.name: threading.Thread(target=body, args=(role,), name=role.name, daemon=True) for role in roles}
    for thread in threads.values():
        thread.start()
    for role in roles:
        if isinstance(role, Producer):
            threads[role.name].join(max(0.0, deadline - time.monotonic()))
    done.set()
    for thread in threads.values():
        thread.join(max(0.0, deadline + 2 - time.monotonic()))
    stuck = [name for name, thread in threads.items() if thread.is_alive()]
    if stuck:
        stop.set()
        raise WorkloadStuck(f"roles still running {timeout:.0f} s after the start (stuck driver?): {stuck}")
    return Outcomes([results[role.name] for role in roles])


def _process_main(
    uri: str, options: dict[str, Any], role: Role, duration: float, go: Flag, done: Flag, stop: Flag, channel: Any
) -> None:
    """The body of one workload process: load a driver of its own, report ready, wait for go, run, report."""
    try:
        driver = load(uri, **options)
    except BaseException as error:
        channel.put(("result", role.name, _crashed(role.name, error)))
        return
    try:
        channel.put(("ready", role.name, None))
        waited = time.monotonic() + duration
        while not go.is_set():  # an Event's wait() cannot be interrupted by stop; poll both
            if stop.is_set() or time.monotonic() > waited:
                channel.put(("result", role.name, RoleResult(role.name, errors=[f"{role.name}: never told to go"])))
                return
            time.sleep(0.01)
        try:
            result = role.run(driver, done, stop, time.monotonic() + duration)
        except BaseException as error:
            result = _crashed(role.name, error)
        channel.put(("result", role.name, result))
    finally:
        driver.close()


def run_processes(
    uri: str, roles: Sequence[Role], timeout: float = 60.0, startup: float = 60.0, **options: Any
) -> Outcomes:
    """Run each role in its own process (:mod:`marconi.tests.processes`), with its own driver loaded from ``uri``
    with ``options``.

    Processes start, load their drivers and report ready within ``startup`` seconds; then all are told to go
    together and must finish within ``timeout``. Stragglers are terminated (then killed) and WorkloadStuck is
    raised; every process has exited when this returns or raises.
    """
    roles = with_budgets(roles)
    context = worker_context(uri)
    go, done, stop = context.Event(), context.Event(), context.Event()
    channel = context.Queue()
    processes = {
        role.name: context.Process(
            target=_process_main,
            args=(uri, options, role, timeout, go, done, stop, channel),
            name=f"marconi-{role.name}",
            daemon=True,
        )
        for role in roles
    }
    results: dict[str, RoleResult] = {}
    producers = {role.name for role in roles if isinstance(role, Producer)}
    try:
        for process in processes.values():
            process.start()
        ready: set[str] = set()
        _collect(channel, processes, ready, results, lambda: ready | set(results) >= set(processes), startup, "start")
        go.set()
        _collect(channel, processes, ready, results, lambda: producers <= set(results), timeout, "finish producing")
        done.set()
        _collect(channel, processes, ready, results, lambda: set(results) >= set(processes), timeout, "finish")
    except WorkloadStuck as error:
        stop.set()
        missing = sorted(set(processes) - set(results))
        raise WorkloadStuck(f"{error}; no result from {missing}") from None
    finally:
        stop.set()
        finished = set(results) >= set(processes)  # all sent their results: they are exiting, give them time
        patience = time.monotonic() + (EXIT_PATIENCE if finished else STUCK_PATIENCE)
        for process in processes.values():
            process.join(max(0.0, patience - time.monotonic()))
        for process in processes.values():
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        channel.close()
        channel.join_thread()
    failed = [f"{name} exited with {p.exitcode}" for name, p in processes.items() if p.exitcode not in (0, None)]
    outcomes = Outcomes([results[role.name] for role in roles])
    if failed:
        outcomes.results.append(RoleResult("processes", errors=failed))
    return outcomes


def _collect(
    channel: Any,
    processes: dict[str, Any],
    ready: set[str],
    results: dict[str, RoleResult],
    enough: Callable[[], bool],
    timeout: float,
    what: str,
) -> None:
    """Read the channel until ``enough()``; WorkloadStuck after ``timeout`` or when a process died silently."""
    deadline = time.monotonic() + timeout
    while not enough():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkloadStuck(f"workload processes did not {what} within {timeout:.0f} s")
        try:
            kind, name, payload = channel.get(timeout=min(remaining, 0.5))
        except queue_module.Empty:
            _check_alive(channel, processes, ready, results)
            continue
        _receive(kind, name, payload, ready, results)


def _check_alive(channel: Any, processes: dict[str, Any], ready: set[str], results: dict[str, RoleResult]) -> None:
    """WorkloadStuck if a process exited without sending its result (after reading what it did send)."""
    if not [name for name, process in processes.items() if name not in results and process.exitcode is not None]:
        return
    time.sleep(0.5)  # anything it sent before exiting arrives by then
    while True:
        try:
            kind, name, payload = channel.get_nowait()
        except queue_module.Empty:
            break
        _receive(kind, name, payload, ready, results)
    dead = {name: p.exitcode for name, p in processes.items() if name not in results and p.exitcode is not None}
    if dead:
        raise WorkloadStuck(f"workload processes exited without a result (exit codes {dead})")


def _receive(kind: str, name: str, payload: Any, ready: set[str], results: dict[str, RoleResult]) -> None:
    if kind == "ready":
        ready.add(name)
    else:
        results[name] = payload
