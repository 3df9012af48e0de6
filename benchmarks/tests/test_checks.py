"""The history check really marks a contender INVALID: planted-bug drivers, side by side with the real one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from marconi_benchmarks.contenders import Contender, run_prefix
from marconi_benchmarks.runner import Results, Runner, summarise
from marconi_benchmarks.workloads import Workload, WorkloadError, catalogue, parse

DRIVER = "marconi_benchmarks.contenders:DriverClient"


def mutant(name: str, prefix: str) -> Contender:
    return Contender(
        name, "driver", "memory", DRIVER, "memory://", prefix, {"driver_class": f"marconi.tests.mutants:{name}"}
    )


@pytest.mark.parametrize(
    ("bug", "workload"),
    [
        ("SkippingList", Workload("list", "observer", observers=1, fill=60, messages=60, warmup=2)),
        ("ReversedBatches", Workload("post", "producer", producers=1, messages=40, warmup=2)),
        ("DroppingPost", Workload("post", "producer", producers=1, messages=40, warmup=2)),
        ("RacyClaims", Workload("claims", "consumer", consumers=2, fill=60, messages=20, warmup=2)),
    ],
)
def test_a_planted_bug_makes_its_contender_invalid(bug, workload):
    prefix = run_prefix()
    real = Contender("memory", "driver", "memory", DRIVER, "memory://", prefix)
    planted = mutant(bug, prefix)
    results = Results([real, planted], [workload])
    labels = [real.label, planted.label]
    Runner([real, planted], [workload], 1, multiprocess=dict.fromkeys(labels, False)).run(results)
    summaries = summarise(results)
    assert summaries[(workload.name, real.label)].valid, summaries[(workload.name, real.label)].problems
    assert not summaries[(workload.name, planted.label)].valid
    assert summaries[(workload.name, planted.label)].problems


def test_the_shipped_workloads_parse_and_cover_the_issue():
    names = {w.name for w in catalogue()}
    assert {
        "post-1",
        "post-10",
        "post-100",
        "list-10",
        "list-100",
        "claim-delete",
        "claim-bulk-delete",
        "pop-10",
    } <= names
    assert {
        "mixed",
        "deep-100k-claim-delete",
        "deep-1m-first-page",
        "held-10k-first-page",
        "held-100k-claim-delete",
    } <= names


def test_the_sql_targets_are_the_shipped_workloads_only_larger():
    """benchmarks/sql-targets.toml (the SQL driver's targets in one run) changes nothing but how many messages, and
    at most shortens a time cap."""
    from pathlib import Path

    shipped = {w.name: w for w in catalogue()}
    targets = catalogue(Path(__file__).parents[1] / "sql-targets.toml")
    assert len(targets) == 12
    for target in targets:
        original = shipped[target.name]
        assert target.messages >= 3 * original.messages
        assert target.seconds <= original.seconds
        assert replace(target, messages=original.messages, seconds=original.seconds, sets=original.sets) == original


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "x", "measures": "producer"}, "no producers"),
        ({"name": "x", "measures": "observer", "observers": 1, "page": 101}, "page must be 1 to 100"),
        ({"name": "x", "measures": "consumer", "consumers": 1, "consume": "eat"}, "consume must be one of"),
        ({"name": "x", "measures": "consumer", "consumers": 1, "fill": 5, "held": 6}, "held must not exceed fill"),
        ({"name": "x", "measures": "producer", "producers": 1, "colour": "red"}, "unknown workload fields"),
    ],
)
def test_a_bad_workload_is_refused_with_what_is_wrong(entry, problem):
    with pytest.raises(WorkloadError, match=problem):
        parse({"workload": [entry]}, "test.toml")


def test_bad_usage_exits_2(capsys):
    from marconi.cli import main

    assert main(["bench", "--workload", "nonesuch"]) == 2
    assert "no workload named nonesuch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--repetitions", "0"])
    assert exit_info.value.code == 2


def test_the_equivalence_proof_can_fail():
    from marconi_benchmarks.contenders import DriverClient
    from marconi_benchmarks.runner import prove_equivalence

    class Reversing:
        """Shares the driver's store, but pages come back in reverse."""

        def __init__(self, other):
            self.other = other

        def __getattr__(self, name):
            return getattr(self.other, name)

        def list(self, queue, marker, limit, include_claimed):
            items, next_marker = self.other.list(queue, marker, limit, include_claimed)
            return items[::-1], next_marker

    driver = DriverClient("memory://", run_prefix())
    try:
        assert prove_equivalence(driver, driver) == []
        problems = prove_equivalence(driver, Reversing(driver))
        assert problems and "pages differ" in problems[0]
    finally:
        driver.close()
