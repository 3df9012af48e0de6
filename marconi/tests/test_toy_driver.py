"""A third-party driver, written outside this package and registered by entry point, runs the suite in one command.

The toy driver lives in a temporary directory with its own ``*.dist-info`` (so ``importlib.metadata`` and
stevedore find its ``marconi.storage`` entry point, as they would after ``pip install``). It passes the suite
when honest, and fails it when a bug is planted: the suite is only worth something if it can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TOY_DRIVER = '''
"""A toy marconi driver: the memory driver, with bugs that can be switched on by TOY_BUG."""

import os

from marconi_drivers.memory import MemoryClaims, MemoryDriver, MemoryMessages

BUG = os.environ.get("TOY_BUG", "")


class ToyMessages(MemoryMessages):
    def _list(self, request):
        listed = super()._list(request)
        if BUG == "list-skips" and listed is not None:
            del listed.rows[1:2]  # loses the second message of every page
        return listed


class ToyClaims(MemoryClaims):
    def _create(self, request):
        if BUG == "claim-steals":
            with self.driver.lock:
                for queue in self.driver.queues.values():
                    for message in queue.messages.values():
                        message.claim_expires = None  # forgets live claims: their messages are handed out again
        return super()._create(request)


class ToyDriver(MemoryDriver):
    name, schemes = "toy", ("toy",)
    Messages, Claims = ToyMessages, ToyClaims
'''


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    (root / "toy_marconi.py").write_text(textwrap.dedent(TOY_DRIVER))
    dist = root / "toy_marconi-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-marconi\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[marconi.storage]\ntoy = toy_marconi:ToyDriver\n")
    return root


def run_suite(toy_path: Path, bug: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The one command a driver author runs, with the toy directory on the path as if installed."""
    env = {**os.environ, "PYTHONPATH": str(toy_path), "TOY_BUG": bug}
    command = [sys.executable, "-m", "pytest", "-p", "marconi.tests.plugin", "--pyargs", "marconi.tests.conformance"]
    command += ["--marconi-uri=toy://"]
    command += ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=toy_path)


def test_an_honest_toy_driver_passes_the_suite(toy_path):
    result = run_suite(toy_path, bug="")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "toy://:" in result.stdout and "failed" not in result.stdout.split("conformance summary")[1]


@pytest.mark.parametrize(
    ("bug", "caught_by"),
    [
        ("list-skips", "test_messages.py"),
        ("claim-steals", "test_claims.py"),
    ],
)
def test_a_planted_bug_fails_the_suite(toy_path, bug, caught_by):
    # The state machine would catch it too, after minutes of shrinking; the sections named are the point here.
    result = run_suite(toy_path, bug, "-k", "not test_state_machine")
    assert result.returncode == 1, result.stdout[-4000:]
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert any(caught_by in line for line in failures), failures
