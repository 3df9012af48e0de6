"""What a test expects of a verify run: no run error, no anomaly, every operation ran, every fault happened."""

from __future__ import annotations

import time

from marconi.tests.verify import journal, runner
from marconi.tests.verify.checker import check_run


def clean_run(result: runner.RunResult, ops: int, started: float) -> str:
    """Assert ``result`` is clean; a line for the test's log: operations checked, faults, wall time since
    ``started`` (monotonic), and how long the check took."""
    recorded = journal.read(result.path)
    checking = time.monotonic()
    report = check_run(recorded.history)
    took = time.monotonic() - checking
    context = f"(seed {result.seed}; history in {result.path}, re-check with marconi verify --check {result.path})"
    assert result.errors == [] and recorded.errors == [], f"{context}: {result.errors} {recorded.errors}"
    assert report.ok, f"{context}\n{report.summary()}"
    assert result.progress.ops >= ops, f"{context}: only {result.progress.ops} of {ops} operations ran"
    assert all(count > 0 for count in result.faults.values()), f"{context}: a fault never happened: {result.faults}"
    return (
        f"{len(recorded.history)} ops checked in {took:.1f} s, faults {result.faults or 'none'}, 0 anomalies, "
        f"wall {checking - started:.1f} s"
    )
