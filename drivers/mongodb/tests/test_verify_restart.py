"""``marconi verify`` on a SecantusDB server the test owns (``--sync-on-commit``, the URI asking for
``journal=true``: only journaled writes survive a SIGKILL), SIGKILLed and started again on its directory among
killed workers: every connection dies with it. Any anomaly fails the test; the history is kept.
"""

from __future__ import annotations

import time

import pytest

from marconi.tests.servers import free_port, secantusdb_server
from marconi.tests.verify import expect, faults, runner

pytestmark = [pytest.mark.driver("mongodb"), pytest.mark.verify]

#: SecantusDB restarts take seconds each and the server is slow after them: a smaller run than elsewhere.
OPS = 3_000
HANG_GUARD = 600.0  # only a bound against a stuck run; it ends on its operation count


def test_verify_with_the_server_killed_and_restarted(mongo_uri, tmp_path, capsys):
    server = secantusdb_server(tmp_path / "server", free_port(), "--sync-on-commit").start()
    try:
        uri = f"mongodb://127.0.0.1:{server.port}/verify?retryWrites=false&journal=true&serverSelectionTimeoutMS=30000"
        kinds = {**faults.available(uri), "restart": faults.RestartServer(server)}
        plan = runner.Plan(uri, ops=OPS, seconds=HANG_GUARD, faults=tuple(sorted(kinds)), fault_every=3.0)
        started = time.monotonic()
        line = expect.clean_run(runner.run(plan, tmp_path / "history.jsonl", kinds), OPS, started)
    finally:
        server.stop()
    with capsys.disabled():
        print(f"\nverify secantusdb restarts: {line}")
