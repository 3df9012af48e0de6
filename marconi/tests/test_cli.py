"""The installed commands: ``marconi drivers``, ``marconi gc`` / ``marconi-gc``, ``marconi check``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from marconi import storage

BIN = Path(sys.executable).parent
TIMEOUT = 60  # seconds; only a bound against hangs, never an assertion about speed


def run(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)


def test_drivers_lists_memory_and_the_sql_schemes_with_capabilities():
    result = run("marconi", "drivers")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) >= {"memory", "sqlalchemy"}
    for scheme in ("sqlite", "postgresql", "mysql", "mariadb"):
        assert scheme in lines["sqlalchemy"].split()
    assert "observer_once" in lines["memory"] and "durable" in lines["sqlalchemy"]


def test_drivers_json_is_machine_readable():
    result = run("marconi", "drivers", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["memory"]["schemes"] == ["memory"]
    assert rows["sqlalchemy"]["error"] is None
    assert "claims" in rows["sqlalchemy"]["capabilities"]


@pytest.mark.parametrize("command", [("marconi", "gc"), ("marconi-gc",)])
def test_gc_with_an_unknown_scheme_is_a_usage_error(command):
    result = run(*command, "nosuch://x", "--once")
    assert result.returncode == 2
    assert "no marconi storage driver for scheme 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("interval", ["-3", "0", "inf", "1e300", "nan", "abc", ""])
def test_gc_refuses_a_bad_interval(interval):
    result = run("marconi", "gc", "memory://", "--interval", interval)
    assert result.returncode == 2
    assert "argument --interval" in result.stderr and "Traceback" not in result.stderr


#: A PostgreSQL URI whose port nothing listens on: the connection is refused at once.
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_gc_once_exits_non_zero_when_its_pass_fails():
    result = run("marconi", "gc", UNREACHABLE, "--once")
    assert result.returncode == 1
    assert "Connection refused" in result.stderr or "connection" in result.stderr.lower()
    assert "every" not in result.stderr and "Traceback" not in result.stderr


def post_expired_messages(uri: str, count: int) -> tuple[str, str]:
    """Post ``count`` messages that expired a minute ago by the wall clock, through a clock set in the past."""
    project, queue = f"cli-{uuid.uuid4().hex[:8]}", "expiring"
    past = storage.ManualClock(storage.SystemClock().now() - 120)
    with storage.load(uri, clock=past) as driver:
        driver.queue_controller.upsert(queue, {}, project=project)
        batch = [{"ttl": 60, "body": i} for i in range(count)]
        driver.message_controller.post(queue, batch, uuid.uuid4(), project=project)
    return project, queue


def remaining(uri: str, project: str, queue: str) -> int:
    with storage.load(uri, clock=storage.ManualClock(0.0)) as driver:  # a clock before everything: nothing expired
        return int(driver.queue_controller.stats(queue, project=project)["messages"]["total"])


def test_gc_once_removes_expired_messages_and_logs_it(tmp_path):
    uri = f"sqlite:///{tmp_path / 'gc.db'}"
    project, queue = post_expired_messages(uri, 7)
    assert remaining(uri, project, queue) == 7
    result = run("marconi", "gc", uri, "--once")
    assert result.returncode == 0, result.stderr
    assert "removed 7 expired messages and claims" in result.stderr
    assert "every" not in result.stderr, "one pass is not a loop"
    assert remaining(uri, project, queue) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_gc_service_runs_until_signalled_then_exits_cleanly(tmp_path, signum):
    uri = f"sqlite:///{tmp_path / 'service.db'}"
    project, queue = post_expired_messages(uri, 3)
    service = subprocess.Popen([str(BIN / "marconi-gc"), uri, "--interval", "0.2"], stderr=subprocess.PIPE, text=True)
    try:
        assert service.stderr is not None
        passes = []
        for line in service.stderr:  # wait for two passes: it loops, and the first one removed the messages
            if "removed" in line:
                passes.append(line)
            if len(passes) == 2:
                break
        service.send_signal(signum)
        rest = service.communicate(timeout=TIMEOUT)[1]
    finally:
        service.kill()
    assert service.returncode == 0, rest
    assert "removed 3 expired" in passes[0]
    assert f"received {signal.Signals(signum).name}, stopping" in rest
    assert remaining(uri, project, queue) == 0


def test_check_runs_the_conformance_suite_and_reports_per_uri():
    result = run("marconi", "check", "memory://", "--", "-k", "test_queues", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "marconi conformance summary" in result.stdout
    assert "memory://:" in result.stdout


def test_check_without_a_uri_prints_usage():
    result = run("marconi", "check")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: marconi check")


@pytest.mark.parametrize(
    ("uri", "code", "says"),
    [
        ("nosuch://x", 2, "no marconi storage driver for scheme 'nosuch'"),
        (UNREACHABLE, 1, "connection"),
        ("postgresql+psycopg://nobody@127.0.0.1:abc/none", 2, "port"),
    ],
)
def test_check_of_a_uri_that_cannot_work_is_one_line_and_runs_no_test(uri, code, says):
    result = run("marconi", "check", "memory://", uri)
    assert result.returncode == code
    assert result.stdout == "", "no test ran"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert says in lines[0].lower()
