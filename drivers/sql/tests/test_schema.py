"""Schema and engine: idempotent, concurrent creation; table prefixes; ids never reused; URIs; error translation.

Tests that need tables of their own create them under a fresh random prefix and drop exactly those tables.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from marconi.storage import BackendError, DriverLoadError, InvalidInput, ManualClock, tokens
from marconi.storage.loading import scheme_of

from ..urls import kind_of
from .conftest import SQL_DRIVER, in_memory, kind, open_driver

if TYPE_CHECKING:
    from .. import SQLDriver

pytestmark = pytest.mark.driver("sqlalchemy")

CLIENT = str(uuid.uuid4())


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"


def drop_own_tables(driver: SQLDriver) -> None:
    """Drop the tables of this driver's (test-only, random) prefix, and nothing else."""
    assert driver.tables.prefix != "marconi_"
    driver.tables.metadata.drop_all(driver.engine)


@pytest.fixture
def prefix(sql_uri: str) -> Iterator[str]:
    chosen = fresh_prefix()
    yield chosen
    if in_memory(sql_uri):
        return
    with open_driver(sql_uri, table_prefix=chosen) as cleaner:
        drop_own_tables(cleaner)


def post_and_list(driver: SQLDriver, project: str, queue: str = "q") -> list[object]:
    driver.queue_controller.upsert(queue, {}, project=project)
    driver.message_controller.post(queue, [{"ttl": 60, "body": "hello"}], CLIENT, project=project)
    return [m["body"] for m in driver.message_controller.list(queue, project=project).items]


def table_names(driver: SQLDriver) -> set[str]:
    return set(sa.inspect(driver.engine).get_table_names())


def test_concurrent_creation_of_one_schema(sql_uri: str, prefix: str, project: str) -> None:
    """Several drivers starting at once on fresh tables: every one starts, and they share one schema."""
    if in_memory(sql_uri):
        pytest.skip("each in-memory SQLite driver has a database of its own: nothing is shared to race on")
    starters = 4
    barrier = threading.Barrier(starters)
    drivers: list[SQLDriver] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            drivers.append(open_driver(sql_uri, table_prefix=prefix))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        assert len(drivers) == starters
        assert {f"{prefix}queues", f"{prefix}messages", f"{prefix}claims"} <= table_names(drivers[0])
        assert post_and_list(drivers[0], project) == ["hello"]
        assert [m["body"] for m in drivers[-1].message_controller.list("q", project=project).items] == ["hello"]
        again = open_driver(sql_uri, table_prefix=prefix)  # and once more, sequentially
        drivers.append(again)
        assert again.queue_controller.get("q", project=project) == {}
    finally:
        for driver in drivers:
            driver.close()


def test_table_prefix_keeps_two_stores_apart(sql_uri: str, prefix: str, project: str) -> None:
    with open_driver(sql_uri) as default:
        with open_driver(sql_uri, table_prefix=prefix) as other:
            if not default.database.in_memory:
                assert {f"{prefix}queues", f"{prefix}messages", f"{prefix}claims"} <= table_names(other)
                assert {"marconi_queues", "marconi_messages", "marconi_claims"} <= table_names(other)
            assert post_and_list(other, project) == ["hello"]
            assert default.queue_controller.list(project=project).items == []
            default.queue_controller.upsert("q", {"store": "default"}, project=project)
            assert other.queue_controller.get("q", project=project) == {}
            default.queue_controller.delete("q", project=project)


@pytest.mark.parametrize("bad", ["", "1x_", "a-b", "a b", "x" * 42, 'a"; DROP TABLE x; --'])
def test_table_prefix_is_validated(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        SQL_DRIVER("sqlite://", table_prefix=bad)
    assert raised.value.field == "table_prefix"


def test_a_deleted_queues_id_is_never_reused(driver: SQLDriver, project: str) -> None:
    """The newest queue deleted and created again gets a new incarnation (SQLite: AUTOINCREMENT, not max+1)."""
    messages = driver.message_controller
    driver.queue_controller.upsert("again", {}, project=project)
    old_id = messages.post("again", [{"ttl": 60, "body": "old"}], CLIENT, project=project)[0]
    old_marker = messages.list("again", project=project).marker
    driver.queue_controller.delete("again", project=project)
    driver.queue_controller.upsert("again", {}, project=project)
    new_ids = messages.post("again", [{"ttl": 60, "body": i} for i in range(3)], CLIENT, project=project)
    old = tokens.decode_pair(old_id)
    new = tokens.decode_pair(new_ids[0])
    assert old is not None and new is not None
    assert new[0] > old[0], "a new incarnation, never an old one"
    assert messages.bulk_get("again", [old_id], project=project) == []
    assert [m["body"] for m in messages.list("again", project=project, marker=old_marker).items] == [0, 1, 2]


def test_rowcount_counts_matched_rows(driver: SQLDriver, project: str, clock: ManualClock) -> None:
    """A renewal that changes nothing (same instant, same terms) still finds its claim (MySQL: FOUND_ROWS)."""
    driver.queue_controller.upsert("q", {}, project=project)
    driver.message_controller.post("q", [{"ttl": 60, "body": 1}], CLIENT, project=project)
    claim_id, _ = driver.claim_controller.create("q", {"ttl": 30}, project=project)
    assert claim_id is not None
    driver.claim_controller.update("q", claim_id, {"ttl": 30}, project=project)
    driver.claim_controller.update("q", claim_id, {"ttl": 30}, project=project)
    assert driver.queue_controller.upsert("q", {}, project=project) is False


def without_dbapi(uri: str) -> str:
    scheme, rest = uri.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def test_uris_without_a_dbapi_use_an_installed_one(sql_uri: str, project: str) -> None:
    uris = {without_dbapi(sql_uri)}
    if kind_of_uri(sql_uri) == "mysql":  # both scheme names serve MariaDB and MySQL
        uris |= {without_dbapi(sql_uri).replace("mysql://", "mariadb://", 1)}
        uris |= {without_dbapi(sql_uri).replace("mariadb://", "mysql://", 1)}
    for uri in sorted(uris):
        with open_driver(uri) as driver:
            assert "+" in driver.engine.url.drivername or driver.engine.url.drivername == "sqlite"
            assert post_and_list(driver, project, queue="bare") == ["hello"]
            driver.queue_controller.delete("bare", project=project)


def engine_module(driver: SQLDriver) -> Any:
    """The engine module the loaded driver runs (its entry point's package, which tests may import by another name)."""
    return sys.modules[type(driver.database).__module__]


def kind_of_uri(uri: str) -> str:
    return kind_of(scheme_of(uri))


def test_a_dbapi_that_is_not_installed_names_the_extra() -> None:
    with pytest.raises(DriverLoadError, match=r"marconi\[postgresql\]"):
        SQL_DRIVER("postgresql+nosuchdbapi://user@localhost/db")


def test_a_uri_of_another_backend_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        SQL_DRIVER("oracle://user@localhost/db")
    assert raised.value.field == "uri"


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("postgresql+psycopg://u@localhost:abc/d", "port"),
        ("postgresql+psycopg://u@localhost:/d", "port"),
        ("postgresql+psycopg://u@localhost:99999/d", "port"),
        ("mysql+pymysql://u@localhost:0/d", "port"),
        ("postgresql+psycopg://u@localhost/d?timeout=abc", "timeout"),
        ("postgresql+psycopg://u@localhost/d?foo=bar", "foo"),
        ("postgresql+psycopg://u@localhost/d?sslmode=sometimes", "sslmode"),
        ("postgresql+psycopg://u@localhost/d?connect_timeout=soon", "connect_timeout"),
        ("mysql+pymysql://u@localhost/d?charset=bogus", "charset"),
        ("mysql+pymysql://u@localhost/d?charset=latin1", "charset"),
        ("mariadb+pymysql://u@localhost/d?local_infile=1", "local_infile"),
        ("sqlite:///x.db?mode=ro", "mode"),
        ("sqlite:///a\x00b.db", "control character"),
        ("sqlite:///a\nb.db", "control character"),
    ],
)
def test_a_bad_uri_names_its_bad_part_before_connecting(uri: str, names: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        SQL_DRIVER(uri)
    assert raised.value.field == "uri"
    assert names in str(raised.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [("table_prefix", 7), ("pool_size", 0), ("pool_size", "5"), ("max_overflow", -1), ("echo", "yes")],
)
def test_a_bad_driver_option_names_itself(option: str, value: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        SQL_DRIVER("sqlite://", **{option: value})
    assert raised.value.field == option


def test_an_unreachable_server_is_a_backend_error(sql_uri: str) -> None:
    if kind_of_uri(sql_uri) == "sqlite":
        uri = "sqlite:////nonexistent-directory/for/marconi.db"
    else:
        url = sa.make_url(sql_uri).set(host="127.0.0.1", port=1)  # nothing listens on port 1
        uri = url.render_as_string(hide_password=False)
    with pytest.raises(BackendError):
        SQL_DRIVER(uri, conflict_timeout=1)


def test_failures_after_start_are_backend_errors(sql_uri: str, prefix: str, project: str) -> None:
    """No SQLAlchemy or DBAPI exception leaves the driver: a table gone from under it is a BackendError."""
    driver = open_driver(sql_uri, table_prefix=prefix)
    try:
        driver.queue_controller.upsert("q", {}, project=project)
        driver.tables.messages.drop(driver.engine)
        with pytest.raises(BackendError):
            driver.message_controller.post("q", [{"ttl": 60, "body": 1}], CLIENT, project=project)
        with pytest.raises(BackendError):
            driver.message_controller.list("q", project=project)
        driver.tables.messages.create(driver.engine)
        assert post_and_list(driver, project) == ["hello"]
    finally:
        driver.close()


def test_in_memory_sqlite_declares_neither_durable_nor_multiprocess(sql_uri: str) -> None:
    with open_driver(sql_uri) as driver:
        if driver.database.in_memory:
            assert driver.capabilities == SQL_DRIVER.CAPABILITIES - {"durable", "multiprocess"}
        else:
            assert driver.capabilities == SQL_DRIVER.CAPABILITIES
        assert kind(driver) in ("sqlite", "postgresql", "mysql")


KILLED_CONNECTION_SCRIPT = """
import sys, time
import sqlalchemy as sa
from sqlalchemy import event
from marconi.storage import BackendError, load

uri, project = sys.argv[1], sys.argv[2]
with load(uri) as driver:
    # However slow the machine, the connection a call gives back is the one the next call takes.
    sys.modules[type(driver.database).__module__].HOT_SECONDS = 3600.0
    postgresql = driver.database.kind == "postgresql"
    # Autocommit: PostgreSQL reads pg_stat_activity once per transaction, so a wait inside one never ends.
    killer = sa.create_engine(driver.engine.url, isolation_level="AUTOCOMMIT")
    alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = :s" if postgresql else (
        "SELECT count(*) FROM information_schema.processlist WHERE id = :s")
    used = []

    def kill(dbapi_connection):
        session = dbapi_connection.info.backend_pid if postgresql else dbapi_connection.thread_id()
        with killer.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:s)" if postgresql else f"KILL {int(session)}"),
                               {"s": session})
            while connection.execute(sa.text(alive), {"s": session}).scalar():
                time.sleep(0.01)

    def kill_before_reset(dbapi_connection, record, state):
        # The pool is about to roll back a connection it got back: the server kills it first.
        event.remove(driver.engine.pool, "reset", kill_before_reset)
        kill(dbapi_connection)
        print("killed before the pool's reset", flush=True)

    event.listen(driver.engine.pool, "checkout", lambda dbapi_connection, *_: used.append(dbapi_connection))
    driver.queue_controller.upsert("q", {}, project=project)
    # The connection that call used, kept for the next call, dies between the two calls.
    kill(used[-1])
    driver.queue_controller.upsert("q", {"after": True}, project=project)
    print("metadata:", driver.queue_controller.get("q", project=project))
    driver.queue_controller.delete("q", project=project)
    event.listen(driver.engine.pool, "reset", kill_before_reset)
killer.dispose()
"""


def test_a_killed_connection_leaves_no_traceback_on_stderr(sql_uri: str, project: str, tmp_path: Path) -> None:
    """A connection the server killed between two calls is replaced: the second call succeeds. The pool's failed
    reset of a killed connection (when the driver gives its connections back) is the driver's business: nothing
    reaches an application's stderr as a traceback."""
    if kind_of_uri(sql_uri) == "sqlite":
        pytest.skip("SQLite has no server that could kill a connection")
    script = tmp_path / "killed.py"
    script.write_text(KILLED_CONNECTION_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), sql_uri, project], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "metadata: {'after': True}" in result.stdout
    assert "killed before the pool's reset" in result.stdout


@pytest.mark.parametrize(("pool_size", "kept"), [(2, 1), (1, 0)])
def test_a_connection_is_kept_for_the_next_call_only_while_the_pool_has_room(
    sql_uri: str, project: str, pool_size: int, kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-to-back calls share a connection kept out of the pool; never one a caller waiting on a full pool
    needs: with a pool of one (no overflow), every call gives its connection back to the pool."""
    if in_memory(sql_uri):
        pytest.skip("an in-memory database has one connection and no pool")
    with open_driver(sql_uri, pool_size=pool_size, max_overflow=0) as driver:
        # However slow the machine, the calls are back to back.
        monkeypatch.setattr(engine_module(driver), "HOT_SECONDS", 3600.0)
        checkouts: list[object] = []
        sa.event.listen(driver.engine.pool, "checkout", lambda dbapi_connection, *_: checkouts.append(1))
        for _ in range(3):
            driver.queue_controller.list(project=project)
        assert driver.engine.pool.checkedout() == kept  # type: ignore[attr-defined]
        assert len(checkouts) == (1 if kept else 3)


def test_pool_pre_ping_keeps_no_connection_out_of_the_pool(sql_uri: str, project: str) -> None:
    """``pool_pre_ping`` asks for every connection to be tested before use: each call takes one from the pool."""
    if in_memory(sql_uri):
        pytest.skip("an in-memory database has one connection and no pool")
    with open_driver(sql_uri, pool_pre_ping=True) as driver:
        driver.queue_controller.list(project=project)
        assert driver.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_sqlite_writer_waits_for_the_write_lock_in_short_pauses(
    sql_uri: str, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post behind another process's write transaction waits for it (never longer than ``BUSY_POLL_CAP`` between
    tries, so it takes the lock soon after it is free) and then succeeds."""
    if kind_of_uri(sql_uri) != "sqlite" or in_memory(sql_uri):
        pytest.skip("only a SQLite file has a write lock that other connections wait for")
    with open_driver(sql_uri) as driver:
        driver.queue_controller.upsert("q", {}, project=project)
        blocker = sqlite3.connect(str(driver.engine.url.database), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds SQLite's one write lock
        pauses: list[float] = []
        waiting = threading.Event()

        def pause(seconds: float) -> None:
            pauses.append(seconds)
            waiting.set()

        engine = engine_module(driver)
        monkeypatch.setattr(engine, "pause", pause)  # the pauses are counted, not slept
        outcome: list[object] = []
        poster = threading.Thread(
            target=lambda: outcome.append(
                driver.message_controller.post("q", [{"ttl": 60, "body": 1}], project=project, client_uuid=uuid.uuid4())
            )
        )
        poster.start()
        assert waiting.wait(timeout=30), "the post never found the write lock taken"
        blocker.execute("COMMIT")
        poster.join(timeout=30)
        blocker.close()
        assert not poster.is_alive()
        assert len(outcome) == 1 and len(outcome[0]) == 1  # type: ignore[arg-type]
        assert pauses and max(pauses) <= engine.BUSY_POLL_CAP
