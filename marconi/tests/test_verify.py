"""``marconi verify`` on the driver under test: a bounded workload without faults, and one with every fault the
URI can have (workers SIGKILLed mid-operation; the backend's connections killed; on a SQLite file, a process
killed inside a write transaction). Any anomaly fails the test; the history is kept for a closer look.

Per URI (``--marconi-uri``), marked ``verify``. Operations in all: 100 000 on the memory driver and SQLite,
20 000 on the others, half without faults and half with (a driver whose workers are threads, the memory driver
and an in-memory SQLite, cannot have its workers killed: its whole budget runs without faults).
``MARCONI_VERIFY_OPS`` sets another total (a quick local run); the run's seconds are only a bound against a hang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from marconi.storage import Capability, load
from marconi.tests.verify import expect, faults, runner

pytestmark = pytest.mark.verify

#: Operations in all per URI, by scheme; the rest get DEFAULT_OPS.
OPS = {"memory": 100_000, "sqlite": 100_000}
DEFAULT_OPS = 20_000
#: Only a bound against a stuck driver: the runs end on their operation count.
HANG_GUARD = 600.0
#: Seconds between faults. Each kill starts a new worker process (an interpreter, a driver): on a loaded machine,
#: where a run takes longer, a shorter period makes more of them, and they load it more.
FAULT_EVERY = 2.0


def total_ops(uri: str) -> int:
    override = os.environ.get("MARCONI_VERIFY_OPS")
    return int(override) if override else OPS.get(uri.split(":", 1)[0].split("+", 1)[0], DEFAULT_OPS)


def processes(uri: str) -> bool:
    with load(uri) as driver:
        return Capability.MULTIPROCESS in driver.capabilities


def run_and_check(uri: str, path: Path, ops: int, names: tuple[str, ...], seed: int) -> str:
    plan = runner.Plan(uri, ops=ops, seconds=HANG_GUARD, faults=names, fault_every=FAULT_EVERY, seed=seed)
    started = time.monotonic()
    result = runner.run(plan, path, faults.available(uri, processes(uri)) if names else {})
    return f"{uri}: {expect.clean_run(result, ops, started)}"


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("MARCONI_TEST_SEED") or time.time_ns() % 2**31)


def test_verify_without_faults(marconi_uri, tmp_path, seed, capsys):
    share = total_ops(marconi_uri) if not processes(marconi_uri) else total_ops(marconi_uri) // 2
    line = run_and_check(marconi_uri, tmp_path / "history.jsonl", share, (), seed)
    with capsys.disabled():
        print(f"\nverify: {line}")


@pytest.mark.requires(Capability.MULTIPROCESS)  # workers that are threads cannot be killed
def test_verify_with_faults(marconi_uri, tmp_path, seed, capsys):
    names = tuple(sorted(faults.available(marconi_uri)))
    line = run_and_check(marconi_uri, tmp_path / "history.jsonl", total_ops(marconi_uri) // 2, names, seed)
    with capsys.disabled():
        print(f"\nverify: {line}")
