"""The guarantees under concurrency: FIFO per producer, observers see each message once, claims are exclusive.

Producers, observers and claimers run at once, in threads sharing the session's driver or in processes each
loading a driver of its own from the URI. Every operation is recorded in a history (``marconi.tests.history``)
and the history is checked afterwards: nothing is timed, and each role has a deadline so a stuck driver fails
the test instead of hanging it. ``MARCONI_TEST_SEED`` replays the random batch sizes and page limits of a run
(the interleaving itself cannot be replayed).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from marconi.storage import Capability
from marconi.tests import workloads
from marconi.tests.history import Report, check_claims, check_observers

#: Hard limit on one workload; a healthy driver needs a few seconds.
TIMEOUT = 60.0

OBSERVERS = (Capability.OBSERVER_ONCE, Capability.FIFO)
CLAIMS = (Capability.CLAIMS, Capability.FIFO)


def modes(*capabilities: str) -> list[object]:
    return [
        pytest.param("threads", marks=pytest.mark.requires(*capabilities), id="threads"),
        pytest.param("processes", marks=pytest.mark.requires(*capabilities, Capability.MULTIPROCESS), id="processes"),
    ]


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("MARCONI_TEST_SEED") or random.SystemRandom().randrange(2**31))


def run(marconi, mode: str, roles: list[workloads.Role]) -> workloads.Outcomes:
    if mode == "threads":
        return workloads.run_threads(marconi.driver, roles, timeout=TIMEOUT)
    return workloads.run_processes(marconi.uri, roles, timeout=TIMEOUT)


def producers(marconi, queue: str, seed: int, count: int, **options) -> list[workloads.Role]:
    return [
        workloads.Producer(
            f"producer-{i}",
            queue,
            marconi.project,
            seed=seed + i,
            client_uuid=f"00000000-0000-4000-8000-{i:012d}",
            **{"batches": 10, "max_batch": 6, "pause": 0.003, **options},
        )
        for i in range(count)
    ]


def assert_clean(outcomes: workloads.Outcomes, report: Report, seed: int, keep: Path) -> None:
    """No role failed and the history has no anomaly; otherwise the history is kept as JSON for a closer look."""
    context = f"(MARCONI_TEST_SEED={seed})"
    if outcomes.errors or not report.ok:
        saved = keep / "history.json"
        saved.write_text(outcomes.history.to_json())
        context += f", history in {saved} (History.from_json)"
    assert outcomes.errors == [], f"roles failed {context}: {outcomes.errors}"
    assert report.ok, f"{context}\n{report.summary()}"


@pytest.mark.parametrize("mode", modes(*OBSERVERS))
def test_observers_see_every_message_once_in_posting_order(marconi, mode, seed, tmp_path):
    """Several producers post batches while several observers page with small random limits.

    Each observer never sees a message twice, sees each producer's messages in posting order, never passes a
    message it has not seen, and, once the producers stop and it reaches the end, has seen every acknowledged
    message. Claimers run alongside when the driver has claims, so ``include_claimed`` has something to include.
    """
    queue = marconi.new_queue()
    rng = random.Random(seed)
    roles = producers(marconi, queue, seed, 4)
    roles += [
        workloads.Observer(f"observer-{i}", queue, marconi.project, seed=seed + 100 + i, max_limit=rng.randint(2, 8))
        for i in range(3)
    ]
    with_claims = "claims" in marconi.driver.capabilities
    if with_claims:
        roles += [workloads.Claimer(f"claimer-{i}", queue, marconi.project, seed=seed + 200 + i) for i in range(2)]

    outcomes = run(marconi, mode, roles)
    report = check_observers(outcomes.history)
    if with_claims:
        report.extend(check_claims(outcomes.history))
    assert_clean(outcomes, report, seed, tmp_path)
    assert report.stats["observers"] == 3
    assert report.stats["acknowledged"] > 0
    assert report.stats["delivered"] == 3 * report.stats["acknowledged"]


@pytest.mark.parametrize("mode", modes(*CLAIMS))
def test_competing_claimers_never_share_a_message(marconi, mode, seed, tmp_path):
    """Claimers compete while producers post: no message is ever held by two live claims, and together the
    claimers claim every acknowledged message exactly once, each in the producer's posting order."""
    queue = marconi.new_queue()
    roles = producers(marconi, queue, seed, 3)
    roles += [
        workloads.Claimer(f"claimer-{i}", queue, marconi.project, seed=seed + 200 + i, max_limit=1 + i % 5)
        for i in range(4)
    ]

    outcomes = run(marconi, mode, roles)
    report = check_claims(outcomes.history)
    assert_clean(outcomes, report, seed, tmp_path)
    posted = {v for op in outcomes.history if op.kind == "post" and op.outcome == "ok" for v in op.values}
    assert report.stats["claimed"] == len(posted) > 0


@pytest.mark.parametrize("mode", modes(*OBSERVERS))
def test_producers_on_several_queues_do_not_cross_talk(marconi, mode, seed, tmp_path):
    """Producers post to three queues in turn while an observer pages each queue: every queue holds exactly its
    own messages, each once and in posting order; nothing posted to one queue appears in another."""
    queues = tuple(marconi.new_queue() for _ in range(3))
    roles: list[workloads.Role] = [
        workloads.Producer(
            f"producer-{i}",
            queues[0],
            marconi.project,
            seed=seed + i,
            batches=15,
            max_batch=5,
            queues=queues[i:] + queues[:i],
            pause=0.003,
            client_uuid=f"00000000-0000-4000-8000-{i:012d}",
        )
        for i in range(3)
    ]
    roles += [
        workloads.Observer(f"observer-{name}", name, marconi.project, seed=seed + 100 + i, max_limit=5)
        for i, name in enumerate(queues)
    ]

    outcomes = run(marconi, mode, roles)
    report = check_observers(outcomes.history)
    assert_clean(outcomes, report, seed, tmp_path)
    assert report.stats["observers"] == 3
    assert report.stats["delivered"] == report.stats["acknowledged"] > 0
    for name in queues:
        assert any(op.queue == name and op.kind == "list" and op.values for op in outcomes.history)
