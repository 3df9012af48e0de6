"""The history checker finds each anomaly it names, on hand-made histories and on drivers with planted bugs.

A checker that cannot fail proves nothing: every kind of anomaly is planted here and must be reported, and
clean histories must come back clean. Not parametrised by driver.
"""

from __future__ import annotations

import pickle
import time

import pytest

from marconi.storage import DriverBase, ManualClock
from marconi.tests import workloads
from marconi.tests.history import (
    AnomalyKind,
    History,
    Kind,
    Op,
    Outcome,
    Recorder,
    Report,
    Value,
    body_of,
    check,
    check_claims,
    check_observers,
    value_of,
)
from marconi.tests.mutants import RacyClaims, ReversedBatches, SkippingList, Stuck, TwoStepPost
from marconi_drivers.memory import MemoryDriver

Q = "q"


def post(process: str, invoke: float, complete: float | None, *seqs: int, outcome: Outcome = Outcome.OK, queue=Q):
    return Op(process, Kind.POST, queue, invoke, complete, outcome, values=tuple((process, s) for s in seqs))


def page(process: str, invoke: float, limit: int, *values: Value, queue=Q, exhaustive=True):
    return Op(
        process, Kind.LIST, queue, invoke, invoke + 0.1, Outcome.OK, values=values, limit=limit, exhaustive=exhaustive
    )


def claim(process: str, invoke: float, claim_id: str | None, *values: Value, ttl=3600.0, outcome=Outcome.OK):
    return Op(
        process,
        Kind.CLAIM,
        Q,
        invoke,
        invoke + 0.1 if outcome is not Outcome.UNKNOWN else None,
        outcome,
        values=values,
        limit=10,
        claim_id=claim_id,
        claim_ttl=ttl,
    )


def a(seq: int) -> Value:
    return ("a", seq)


def b(seq: int) -> Value:
    return ("b", seq)


def clean_history() -> list[Op]:
    """Two producers, an observer that follows along and reaches the end, two claimers sharing the messages."""
    return [
        post("a", 0, 1, 0, 1),
        post("b", 0.5, 1.5, 0),
        page("o", 2, 2, a(0), a(1)),
        post("a", 3, 4, 2),
        page("o", 5, 5, b(0), a(2)),  # b0 and a-batch-0 were concurrent: either order is fine
        page("o", 6, 5),
        claim("c1", 7, "c1-1", a(0), a(1)),
        claim("c2", 7, "c2-1", b(0)),
        claim("c1", 8, "c1-2", a(2)),
        claim("c2", 9, None),
    ]


def kinds(report: Report) -> set[AnomalyKind]:
    return report.kinds()


def test_clean_history_has_no_anomalies():
    report = check(clean_history())
    assert report.ok, report.summary()
    assert report.stats == {"acknowledged": 4, "observers": 1, "delivered": 4, "claimers": 2, "claimed": 4}


def test_lost_when_a_short_page_after_the_ack_does_not_have_it():
    history = [post("a", 0, 1, 0, 1), page("o", 2, 5, a(0)), page("o", 3, 5)]
    report = check_observers(history)
    assert kinds(report) == {AnomalyKind.LOST}
    assert report.of(AnomalyKind.LOST)[0].values == (a(1),)


def test_not_lost_before_any_short_page_but_incomplete():
    # The observer saw a full page only: it cannot yet be blamed for a1, but it never reached the end.
    history = [post("a", 0, 1, 0, 1), page("o", 2, 1, a(0))]
    assert kinds(check_observers(history)) == {AnomalyKind.INCOMPLETE}
    assert check_observers(history, require_end=False).ok


def test_a_short_page_asked_for_before_the_ack_does_not_count():
    # The short page began before the post was acknowledged; a later short page must have it.
    history = [post("a", 0, 3, 0), page("o", 1, 5), page("o", 4, 5, a(0)), page("o", 5, 5)]
    assert check_observers(history).ok
    history = [post("a", 0, 3, 0), page("o", 1, 5), page("o", 4, 5)]
    assert kinds(check_observers(history)) == {AnomalyKind.LOST}


def test_incomplete_when_the_last_short_page_began_before_the_last_post_completed():
    history = [post("a", 0, 1, 0), page("o", 2, 5, a(0)), post("a", 2.5, 3.5, 1)]
    assert kinds(check_observers(history)) == {AnomalyKind.INCOMPLETE}


def test_filtered_pages_do_not_prove_loss():
    # A page that left claimed messages out may be short without the queue being empty.
    history = [post("a", 0, 1, 0), page("o", 2, 5, exhaustive=False)]
    assert kinds(check_observers(history)) == {AnomalyKind.INCOMPLETE}


def test_deleted_messages_are_not_lost():
    deleted = Op("d", Kind.DELETE, Q, 1.5, 1.6, Outcome.OK, values=(a(0),))
    history = [post("a", 0, 1, 0, 1), deleted, page("o", 2, 5, a(1)), page("o", 3, 5)]
    assert check_observers(history).ok


def test_unexpected_never_posted():
    history = [post("a", 0, 1, 0), page("o", 2, 5, a(0), b(7)), page("o", 3, 5)]
    report = check_observers(history)
    assert kinds(report) == {AnomalyKind.UNEXPECTED}
    assert report.of(AnomalyKind.UNEXPECTED)[0].values == (b(7),)


def test_unexpected_when_the_post_certainly_failed():
    history = [post("a", 0, 1, 0, outcome=Outcome.FAIL), page("o", 2, 5, a(0)), page("o", 3, 5)]
    assert kinds(check_observers(history)) == {AnomalyKind.UNEXPECTED}


def test_a_post_of_unknown_outcome_may_or_may_not_be_delivered():
    for pages in ([page("o", 2, 5, a(0)), page("o", 3, 5)], [page("o", 2, 5)]):
        history = [post("a", 0, 1, 0, outcome=Outcome.UNKNOWN), *pages]
        assert check_observers(history).ok


def test_cross_talk_between_queues_is_unexpected():
    history = [
        post("a", 0, 1, 0, queue="q1"),
        post("b", 0, 1, 0, queue="q2"),
        page("o1", 2, 5, a(0), b(0), queue="q1"),
        page("o1", 3, 5, queue="q1"),
        page("o2", 2, 5, b(0), queue="q2"),
        page("o2", 3, 5, queue="q2"),
    ]
    report = check_observers(history)
    assert [(x.kind, x.queue, x.values) for x in report.anomalies] == [(AnomalyKind.UNEXPECTED, "q1", (b(0),))]


def test_duplicated():
    history = [post("a", 0, 1, 0, 1), page("o", 2, 1, a(0)), page("o", 3, 5, a(0), a(1)), page("o", 4, 5)]
    report = check_observers(history)
    assert kinds(report) == {AnomalyKind.DUPLICATED}
    assert report.of(AnomalyKind.DUPLICATED)[0].values == (a(0),)


def test_producer_order_within_a_batch():
    history = [post("a", 0, 1, 0, 1, 2), page("o", 2, 5, a(0), a(2), a(1)), page("o", 3, 5)]
    report = check_observers(history)
    assert kinds(report) == {AnomalyKind.PRODUCER_ORDER}
    assert report.of(AnomalyKind.PRODUCER_ORDER)[0].values == (a(2), a(1))


def test_producer_order_across_batches_is_also_non_monotonic():
    history = [post("a", 0, 1, 0), post("a", 2, 3, 1), page("o", 4, 5, a(1), a(0)), page("o", 5, 5)]
    assert kinds(check_observers(history)) == {AnomalyKind.PRODUCER_ORDER, AnomalyKind.NON_MONOTONIC}


def test_non_monotonic_across_producers():
    # b0 was acknowledged before a0 was even posted: its marker is smaller, so it must come first.
    history = [post("b", 0, 1, 0), post("a", 2, 3, 0), page("o", 4, 5, a(0), b(0)), page("o", 5, 5)]
    report = check_observers(history)
    assert kinds(report) == {AnomalyKind.NON_MONOTONIC}
    assert report.of(AnomalyKind.NON_MONOTONIC)[0].values == (a(0), b(0))


def test_concurrent_posts_may_be_seen_in_either_order():
    history = [post("b", 0, 3, 0), post("a", 1, 2, 0), page("o", 4, 5, a(0), b(0)), page("o", 5, 5)]
    assert check_observers(history).ok


def test_skip_passed_over():
    # The observer got a0 (posted after b0 was acknowledged), so its marker is past b0, which it never got.
    history = [post("b", 0, 1, 0), post("a", 2, 3, 0), page("o", 4, 1, a(0))]
    report = check_observers(history, require_end=False)
    assert kinds(report) == {AnomalyKind.SKIP}
    assert report.of(AnomalyKind.SKIP)[0].values == (b(0),)


def test_skip_late_delivery_after_a_short_page():
    # The short page at 2 should have held a0; a0 showing up later means a page hid it.
    history = [post("a", 0, 1, 0), page("o", 2, 5), page("o", 3, 5, a(0)), page("o", 4, 5)]
    report = check_observers(history)
    assert kinds(report) == {AnomalyKind.SKIP}
    assert report.of(AnomalyKind.SKIP)[0].values == (a(0),)


def test_foreign_bodies_are_unexpected():
    assert value_of(body_of(a(3))) == a(3)
    stranger = value_of({"hello": "world"})
    history = [post("a", 0, 1, 0), page("o", 2, 5, a(0), stranger), page("o", 3, 5)]
    assert kinds(check_observers(history)) == {AnomalyKind.UNEXPECTED}


def test_claim_overlap():
    history = [post("a", 0, 1, 0, 1), claim("c1", 2, "x", a(0)), claim("c2", 3, "y", a(0), a(1)), claim("c1", 4, None)]
    report = check_claims(history)
    assert kinds(report) == {AnomalyKind.CLAIM_OVERLAP}
    assert report.of(AnomalyKind.CLAIM_OVERLAP)[0].values == (a(0),)


def test_no_overlap_once_a_lease_has_run_out_or_was_released():
    expired = [post("a", 0, 1, 0), claim("c1", 2, "x", a(0), ttl=1), claim("c2", 5, "y", a(0)), claim("c1", 6, None)]
    assert check_claims(expired).ok
    release = Op("c1", Kind.RELEASE, Q, 3, 3.1, Outcome.OK, claim_id="x")
    released = [post("a", 0, 1, 0), claim("c1", 2, "x", a(0)), release, claim("c2", 4, "y", a(0)), claim("c1", 6, None)]
    assert check_claims(released).ok
    # Overlap is reported only when certain: x lasts at least until 3.0 (invoked at 2 for 1 s), y may have been
    # made as late as 3.1; so they may not have overlapped. Made by 2.9 at the latest, they certainly did.
    uncertain = [post("a", 0, 1, 0), claim("c1", 2, "x", a(0), ttl=1), claim("c2", 3, "y", a(0)), claim("c1", 6, None)]
    assert check_claims(uncertain).ok
    certain = [post("a", 0, 1, 0), claim("c1", 2, "x", a(0), ttl=1), claim("c2", 2.8, "y", a(0)), claim("c1", 6, None)]
    assert kinds(check_claims(certain)) == {AnomalyKind.CLAIM_OVERLAP}


def test_claims_out_of_order_across_claimers():
    # c1's claim took a1 and completed before c2 asked; a0 was visible and unclaimed then, so c1 should have had it.
    history = [post("a", 0, 1, 0, 1), claim("c1", 2, "x", a(1)), claim("c2", 3, "y", a(0)), claim("c1", 4, None)]
    report = check_claims(history)
    assert kinds(report) == {AnomalyKind.PRODUCER_ORDER}
    assert report.of(AnomalyKind.PRODUCER_ORDER)[0].values == (a(1), a(0))
    # Claims at the same time may split a producer's messages either way.
    history = [post("a", 0, 1, 0, 1), claim("c1", 2, "x", a(1)), claim("c2", 2.05, "y", a(0)), claim("c1", 4, None)]
    assert check_claims(history).ok


def test_claims_lost():
    history = [post("a", 0, 1, 0, 1), claim("c1", 2, "x", a(0)), claim("c2", 3, None)]
    report = check_claims(history)
    assert kinds(report) == {AnomalyKind.LOST}
    assert report.of(AnomalyKind.LOST)[0].values == (a(1),)


def test_claims_not_lost_when_a_claim_of_unknown_outcome_may_hold_them():
    history = [post("a", 0, 1, 0, 1), claim("c1", 2, "x", a(0)), claim("c1", 2.5, None, outcome=Outcome.UNKNOWN)]
    history.append(claim("c2", 3, None))
    assert check_claims(history).ok


def test_claims_duplicated_unexpected_order_and_incomplete():
    history = [post("a", 0, 1, 0, 1, 2), claim("c1", 2, "x", a(0), a(0)), claim("c1", 3, "y", a(2), a(1), b(9))]
    report = check_claims(history)
    assert kinds(report) == {
        AnomalyKind.DUPLICATED,
        AnomalyKind.PRODUCER_ORDER,
        AnomalyKind.UNEXPECTED,
        AnomalyKind.INCOMPLETE,
    }


def test_recorder_and_serialisation_round_trip():
    clock = iter(range(100))
    recorder = Recorder("p", now=lambda: float(next(clock)))
    recorder.record(Kind.POST, Q, recorder.now(), Outcome.OK, values=(("p", 0),), ids=("1.1",))
    recorder.record(Kind.POST, Q, recorder.now(), Outcome.UNKNOWN, values=(("p", 1),), error="BackendError: boom")
    assert recorder.ops[0].complete == 1.0 and recorder.ops[1].complete is None
    history = History.merge(recorder.ops, clean_history())
    for copy in (pickle.loads(pickle.dumps(history)), History.from_json(history.to_json())):
        assert copy == history
        assert check(copy).summary() == check(history).summary()


def test_summary_names_every_anomaly():
    history = [post("a", 0, 1, 0, 1), page("o", 2, 5, a(1), a(1), b(3)), page("o", 3, 5)]
    summary = check_observers(history).summary()
    for word in ("lost", "duplicated", "unexpected", "a#0", "b#3"):
        assert word in summary


# --- the workloads find planted bugs in real (in-memory) drivers ------------------------------------------------


def run_mixed(driver: DriverBase, seed: int = 1, claimers: int = 2, timeout: float = 20.0):
    driver.queue_controller.upsert(Q, {}, project="p")
    roles: list[workloads.Role] = [
        workloads.Producer(f"producer-{i}", Q, "p", seed=seed + i, batches=12, max_batch=5, pause=0.002)
        for i in range(3)
    ]
    roles += [workloads.Observer(f"observer-{i}", Q, "p", seed=seed + 10 + i, max_limit=6) for i in range(2)]
    roles += [workloads.Claimer(f"claimer-{i}", Q, "p", seed=seed + 20 + i) for i in range(claimers)]
    outcomes = workloads.run_threads(driver, roles, timeout=timeout)
    assert outcomes.errors == []
    return check(outcomes.history)


def test_the_reference_driver_passes_the_workload():
    report = run_mixed(MemoryDriver(clock=ManualClock()))
    assert report.ok, report.summary()
    assert report.stats["observers"] == 2 and report.stats["claimers"] == 2
    assert report.stats["claimed"] == report.stats["acknowledged"] > 0


def test_the_workload_finds_a_skipping_list():
    report = run_mixed(SkippingList(clock=ManualClock()))
    assert AnomalyKind.LOST in report.kinds(), report.summary()
    assert {a.process for a in report.of(AnomalyKind.LOST)} == {"observer-0", "observer-1"}


def test_the_workload_finds_batches_out_of_order():
    report = run_mixed(ReversedBatches(clock=ManualClock()))
    assert AnomalyKind.PRODUCER_ORDER in report.kinds(), report.summary()
    assert report.of(AnomalyKind.LOST) == []


def test_the_workload_finds_racing_claims():
    report = run_mixed(RacyClaims(clock=ManualClock()))
    assert AnomalyKind.CLAIM_OVERLAP in report.kinds(), report.summary()


def test_the_workload_finds_markers_reserved_before_insertion():
    # A race, so not every run shows it (in practice every run does); three runs make a miss negligible.
    reports = []
    for seed in (1, 2, 3):
        reports.append(run_mixed(TwoStepPost(clock=ManualClock()), seed=seed, claimers=0))
        if AnomalyKind.LOST in reports[-1].kinds() or AnomalyKind.SKIP in reports[-1].kinds():
            return
    pytest.fail("three runs of a post that reserves markers before inserting showed no loss:\n" + reports[-1].summary())


def test_a_stuck_driver_fails_instead_of_hanging():
    Stuck.release.clear()
    driver = Stuck(clock=ManualClock())
    driver.queue_controller.upsert(Q, {}, project="p")
    roles = [workloads.Producer("producer", Q, "p", batches=2), workloads.Observer("observer", Q, "p")]
    try:
        with pytest.raises(workloads.WorkloadStuck, match="observer"):
            workloads.run_threads(driver, roles, timeout=1)
    finally:
        Stuck.release.set()


class Sleeper(workloads.Role):
    """A role that never finishes and ignores every signal."""

    def run(self, driver, done, stop, deadline):
        while True:
            time.sleep(0.1)


def test_processes_report_errors_and_exit():
    # memory:// gives each process a store of its own, so the queue is missing there: the error comes back.
    roles = [workloads.Producer("producer", Q, "p", batches=2), workloads.Observer("observer", Q, "p")]
    outcomes = workloads.run_processes("memory://", roles, timeout=20)
    assert [result.name for result in outcomes.results] == ["producer", "observer"]
    assert any("QueueDoesNotExist" in error for error in outcomes.errors)
    assert outcomes.history.ops[0].outcome is Outcome.UNKNOWN


def test_stuck_processes_are_terminated():
    roles = [workloads.Producer("producer", Q, "p", batches=1), Sleeper("sleeper", Q, "p")]
    with pytest.raises(workloads.WorkloadStuck, match="sleeper"):
        workloads.run_processes("memory://", roles, timeout=2)
