"""``marconi verify`` can fail: planted bugs are each reported with their own category; clean runs come back
clean; a saved history is read back and re-checked; the command's usage errors are clear.

Driver-independent: the planted bugs wrap the reference memory driver (workers as threads, the memory store
being one process's), so these runs are small and fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marconi import cli
from marconi.tests.history import AnomalyKind, History, Kind, Op, Outcome
from marconi.tests.verify import faults, journal, runner
from marconi.tests.verify.checker import check_run

pytestmark = pytest.mark.verify

OPS = 3000


def verify(tmp_path: Path, wrap: str | None = None, **plan: object) -> tuple[runner.RunResult, journal.Recorded]:
    settings = {"ops": OPS, "seconds": 30.0, "quiet_every": 0.5, "seed": 7, **plan}
    result = runner.run(runner.Plan("memory://", wrap=wrap, **settings), tmp_path / "history.jsonl")  # type: ignore[arg-type]
    assert result.errors == []
    return result, journal.read(result.path)


def test_a_correct_driver_passes(tmp_path):
    _, recorded = verify(tmp_path)
    report = check_run(recorded.history)
    assert report.ok, report.summary()
    kinds = {op.kind for op in recorded.history}
    assert kinds >= set(Kind), f"every kind of operation was exercised: {sorted(set(Kind) - kinds)} missing"
    assert report.stats["stats reads"] >= 1


@pytest.mark.parametrize(
    ("bug", "expected"),
    [
        ("drop_message", AnomalyKind.LOST),
        ("repeat_page_item", AnomalyKind.DUPLICATED),
        ("reorder_posts", AnomalyKind.PRODUCER_ORDER),
        ("hand_out_claimed", AnomalyKind.CLAIM_OVERLAP),
        ("ignore_deletes", AnomalyKind.DELIVERED_AFTER_DELETE),
        ("miscount_stats", AnomalyKind.STATS),
        ("lose_on_reconnect", AnomalyKind.LOST),
        ("reserve_then_insert", AnomalyKind.SKIP),
    ],
)
def test_each_planted_bug_is_reported_with_its_category(tmp_path, bug, expected):
    _, recorded = verify(tmp_path, f"marconi.tests.planted:{bug}")
    report = check_run(recorded.history)
    assert expected in report.kinds(), report.summary()


def test_two_step_posts_are_reported_when_observers_only_watch(tmp_path):
    """Reserve-then-insert is a race between a post and a page: with many observers it shows every time."""
    _, recorded = verify(tmp_path, "marconi.tests.planted:reserve_then_insert", observers=4, consumers=0)
    assert AnomalyKind.SKIP in check_run(recorded.history).kinds()


def op(process, kind, invoke, complete, outcome=Outcome.OK, **details):
    return Op(process, kind, "q", invoke, complete, outcome, **details)


def test_an_invoke_without_completion_is_unknown_and_may_or_may_not_have_happened(tmp_path):
    path = tmp_path / "h.jsonl"
    with journal.Journal(path) as out:
        out.write({"event": "run", "uri": "memory://"})
        posted = op("p", Kind.POST, 1.0, None, Outcome.UNKNOWN, values=(("p", 0),)).to_dict()
        out.write({"event": "invoke", "process": "p", "n": 1, "op": posted})  # the process died here
        listed = op("final-q", Kind.LIST, 2.0, 2.1, values=(("p", 0),), limit=10, exhaustive=True)
        out.write({"event": "complete", "process": "final-q", "n": 1, "op": listed.to_dict()})
        out.write({"event": "fault", "name": "kill-producer", "start": 1.5, "end": 1.6, "detail": "killed p"})
    recorded = journal.read(path)
    assert [o.outcome for o in recorded.history] == [Outcome.UNKNOWN, Outcome.OK]
    assert recorded.history.ops[0].complete is None
    assert [f.name for f in recorded.faults] == ["kill-producer"]
    assert check_run(recorded.history).ok  # stored: fine


def test_an_unknown_post_is_never_stored_twice():
    ops = [
        op("p", Kind.POST, 1.0, None, Outcome.UNKNOWN, values=(("p", 0),)),
        op("final-q", Kind.LIST, 2.0, 2.1, values=(("p", 0), ("p", 0)), ids=("1.1", "1.2"), limit=10, exhaustive=True),
    ]
    assert AnomalyKind.DUPLICATED in check_run(ops).kinds()


def test_a_pop_of_unknown_outcome_excuses_as_many_missing_messages_as_its_limit_and_no_more():
    posts = [op("p", Kind.POST, 1.0 + i, 1.5 + i, values=(("p", i),)) for i in range(3)]
    pop = op("c", Kind.POP, 5.0, 5.1, Outcome.UNKNOWN, limit=2)
    seen = op("final-q", Kind.LIST, 6.0, 6.1, values=(("p", 2),), limit=10, exhaustive=True)
    assert check_run([*posts, pop, seen]).ok
    nothing = op("final-q", Kind.LIST, 6.0, 6.1, values=(), limit=10, exhaustive=True)
    assert AnomalyKind.LOST in check_run([*posts, pop, nothing]).kinds()


def test_a_renewal_that_shortens_a_lease_is_not_a_double_claim():
    post = op("p", Kind.POST, 0.0, 0.1, values=(("p", 0),))
    first = op("a", Kind.CLAIM, 1.0, 1.1, values=(("p", 0),), claim_id="a1", claim_ttl=3.0, limit=1)
    renew = op("a", Kind.RENEW, 1.2, 1.3, claim_id="a1", claim_ttl=1.0)
    second = op("b", Kind.CLAIM, 2.5, 2.6, values=(("p", 0),), claim_id="b1", claim_ttl=3.0, limit=1)
    assert check_run([post, first, renew, second], final=False).ok
    early = op("b", Kind.CLAIM, 2.0, 2.1, values=(("p", 0),), claim_id="b1", claim_ttl=3.0, limit=1)
    assert AnomalyKind.CLAIM_OVERLAP in check_run([post, first, renew, early], final=False).kinds()


def test_a_lease_cut_short_by_a_wall_clock_step_is_not_a_double_claim(tmp_path):
    """Leases run on the wall clock. A host that steps it 0.7 s forward ends a 3 s lease 0.7 s early in monotonic
    time: a second claim then is right, as the recorded clock shows. Without the record, it is an overlap."""
    post = op("p", Kind.POST, 0.0, 0.1, values=(("p", 0),))
    first = op("a", Kind.CLAIM, 1.0, 1.1, values=(("p", 0),), claim_id="a1", claim_ttl=3.0, limit=1)
    second = op("b", Kind.CLAIM, 3.4, 3.5, values=(("p", 0),), claim_id="b1", claim_ttl=3.0, limit=1)
    final = op("final-q", Kind.LIST, 9.0, 9.1, values=(("p", 0),), ids=("1.1",), limit=10, exhaustive=True)
    path = tmp_path / "h.jsonl"
    with journal.Journal(path) as out:
        for event in (post, first, second, final):
            out.write({"event": "complete", "process": event.process, "n": 1, "op": event.to_dict()})
        for monotonic, wall in ((0.0, 100.0), (2.0, 102.0), (2.02, 102.72), (9.0, 109.7)):  # +0.7 s at 2.01
            out.write({"event": "clock", "monotonic": monotonic, "wall": wall})
    recorded = journal.read(path)
    assert recorded.history.clock.spread(1.0, 1.9) == 0.0
    assert recorded.history.clock.spread(1.0, 4.0) == pytest.approx(0.7)
    assert check_run(recorded.history).ok
    assert AnomalyKind.CLAIM_OVERLAP in check_run(list(recorded.history)).kinds()
    # The step widens only the leases it fell in: one that ended before it is held to the full term.
    early = op("b", Kind.CLAIM, 1.5, 1.6, values=(("p", 0),), claim_id="b1", claim_ttl=3.0, limit=1)
    short = op("a", Kind.CLAIM, 0.2, 0.3, values=(("p", 0),), claim_id="a0", claim_ttl=1.0, limit=1)
    history = History([post, short, early, final], recorded.history.clock)
    assert check_run(history).ok  # a0 lapsed at 1.2 by either clock
    overlapping = History(
        [post, op("a", Kind.CLAIM, 0.2, 0.3, values=(("p", 0),), claim_id="a0", claim_ttl=1.5, limit=1), early, final],
        recorded.history.clock,
    )
    assert AnomalyKind.CLAIM_OVERLAP in check_run(overlapping).kinds()


def test_a_run_records_the_wall_clock_beside_the_monotonic_one(tmp_path):
    _, recorded = verify(tmp_path, ops=300)
    samples = recorded.history.clock.samples
    assert len(samples) >= 2 and samples == tuple(sorted(samples))
    assert samples[0][0] <= recorded.history.ops[0].invoke and samples[-1][0] >= recorded.history.ops[-1].invoke


def test_stats_bounds_follow_the_history():
    posts = [op("p", Kind.POST, 0.0, 0.1, values=(("p", 0), ("p", 1)))]
    claimed = op("c", Kind.CLAIM, 1.0, 1.1, values=(("p", 0),), claim_id="c1", claim_ttl=60.0, limit=1)
    right = op("auditor", Kind.STATS, 2.0, 2.1, counts=(1, 1, 2))
    assert check_run([*posts, claimed, right], final=False).ok
    wrong = op("auditor", Kind.STATS, 2.0, 2.1, counts=(0, 2, 2))
    assert AnomalyKind.STATS in check_run([*posts, claimed, wrong], final=False).kinds()


def test_verify_check_rechecks_a_saved_history(tmp_path, capsys):
    result, _ = verify(tmp_path, "marconi.tests.planted:drop_message", ops=1000)
    assert cli.main(["verify", "--check", str(result.path)]) == 1
    out = capsys.readouterr().out
    assert "lost" in out and "operations" in out
    (tmp_path / "clean").mkdir()
    clean, _ = verify(tmp_path / "clean", ops=1000)
    assert cli.main(["verify", "--check", str(clean.path)]) == 0


def test_verify_runs_from_the_command_line(tmp_path, capsys):
    history = tmp_path / "run.jsonl"
    status = cli.main(["verify", "memory://", "--ops", "800", "--seconds", "20", "--history", str(history)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "anomalies: none" in out and "faults injected: none" in out
    assert json.loads(history.read_text().splitlines()[0])["event"] == "run"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify"], "give a driver URI"),
        (["verify", "memory://", "--faults", "connections"], "no fault connections for memory://"),
        (["verify", "memory://", "--ops", "0"], "--ops: must be at least 1"),
        (["verify", "memory://", "--check", "x.jsonl"], "give no URI"),
        (["verify", "memory://", "--producers", "0"], "--producers must be at least 1"),
    ],
)
def test_usage_errors_are_clear(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_history_that_is_not_one_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "nonsense.jsonl"
    path.write_text("hello\n")
    assert cli.main(["verify", "--check", str(path)]) == 2
    assert "is not a marconi verify history" in capsys.readouterr().err


def test_killing_workers_needs_processes(tmp_path):
    with pytest.raises(runner.RunError, match="threads"):
        runner.run(
            runner.Plan("memory://", ops=100, faults=("kill-producer",)),
            tmp_path / "h.jsonl",
            {"kill-producer": faults.KillWorker("producer")},
        )
