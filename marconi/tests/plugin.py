"""The pytest plugin behind the conformance suite. It is never loaded by itself: ask for it by name.

Run the suite against any driver URI, as many as you like::

    pytest -p marconi.tests.plugin --pyargs marconi.tests.conformance --marconi-uri=sqlite:///x.db

(or ``marconi check URI...``, or ``pytest_plugins = ["marconi.tests.plugin"]`` in a driver's own root
conftest). The URIs come from ``--marconi-uri`` (repeatable), else from ``$MARCONI_TEST_URIS`` (space
separated); a test that needs a driver when neither names one is a usage error, never a silent skip.

Markers:

- ``requires(Capability.CLAIMS, ...)``: runs only on drivers declaring those capabilities; the others report it
  skipped by name. A name that is not a ``Capability`` fails the collection.
- ``driver("sqlalchemy")``: a driver's own test, run only on URIs that load that driver (by its canonical
  name) and deselected on the others.

A run with URIs ends with a summary per URI: passed, failed, and the capabilities skipped.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from marconi.storage import Capability, DriverBase, ManualClock, MessageBase, load
from marconi.storage.errors import StorageError
from marconi.storage.loading import driver_class, scheme_of

SKIP_PREFIX = "driver does not declare capability"
_ACTIVE = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("marconi", "marconi storage conformance")
    group.addoption(
        "--marconi-uri",
        action="append",
        default=[],
        metavar="URI",
        help="a storage driver URI to run the conformance suite against (repeatable)",
    )
    group.addoption(
        "--marconi-drivers-only",
        action="store_true",
        help="run only the tests that take a driver URI (deselect the driver-independent ones)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): run only on drivers declaring these capabilities")
    config.addinivalue_line("markers", "driver(name): a driver's own test, run only on URIs that load that driver")
    config.addinivalue_line("markers", "slow: a long-running concurrency or property test")
    config.addinivalue_line("markers", "verify: a marconi verify run, or a test of its checker")
    config.stash[_ACTIVE] = bool(driver_uris(config))


def driver_uris(config: pytest.Config) -> list[str]:
    """The URIs under test: ``--marconi-uri`` options, else ``$MARCONI_TEST_URIS``; empty when neither is set."""
    uris: list[str] = config.getoption("marconi_uri") or os.environ.get("MARCONI_TEST_URIS", "").split()
    return uris


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "marconi_uri" in metafunc.fixturenames:
        uris = driver_uris(metafunc.config)
        if not uris:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid} runs against storage drivers: name one or more with --marconi-uri "
                "(or $MARCONI_TEST_URIS), e.g. --marconi-uri=memory://"
            )
        metafunc.parametrize("marconi_uri", uris, ids=uris, scope="session")


def _driver_name(uri: str, cache: dict[str, str | None]) -> str | None:
    """The canonical name of the driver a URI loads (None when none is installed for it)."""
    if uri not in cache:
        try:
            cls = driver_class(scheme_of(uri))
            cache[uri] = cls.name or scheme_of(uri)
        except StorageError:
            cache[uri] = None
    return cache[uri]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail on a ``requires`` naming no capability; deselect a driver's own tests on other drivers' URIs (and,
    with ``--marconi-drivers-only``, every test that takes no URI)."""
    names: dict[str, str | None] = {}
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        for marker in item.iter_markers("requires"):
            unknown = sorted(set(marker.args) - Capability.ALL)
            if unknown:
                raise pytest.UsageError(
                    f"{item.nodeid}: requires({', '.join(map(repr, unknown))}) names no capability; "
                    f"the capabilities are {', '.join(sorted(Capability.ALL))} (use the Capability constants)"
                )
        mine = item.get_closest_marker("driver")
        callspec = getattr(item, "callspec", None)
        uri = callspec.params.get("marconi_uri") if callspec is not None else None
        if uri is None and config.getoption("marconi_drivers_only"):
            drop.append(item)
        elif mine is not None and uri is not None and _driver_name(uri, names) not in mine.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def marconi_clock() -> ManualClock:
    """The clock of the session's drivers: it stands still unless a test moves it."""
    return ManualClock(float(int(time.time())))


@pytest.fixture(scope="session")
def marconi_driver(marconi_uri: str, marconi_clock: ManualClock) -> Iterator[DriverBase]:
    """One driver per URI for the whole session, reading the session's ManualClock."""
    with load(marconi_uri, clock=marconi_clock) as driver:
        yield driver


@pytest.fixture(autouse=True)
def _marconi_requires(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("requires")
    if marker is None or "marconi_uri" not in request.fixturenames:
        return
    driver: DriverBase = request.getfixturevalue("marconi_driver")
    missing = sorted(set(marker.args) - driver.capabilities)
    if missing:
        pytest.skip(f"{SKIP_PREFIX} {', '.join(missing)}")


class Harness:
    """One test's view of a driver: its own project (so tests never see each other), and setup helpers.

    Tests call the controllers directly for what they assert; the helpers only make setup short.
    """

    def __init__(self, uri: str, driver: DriverBase, clock: ManualClock) -> None:
        self.uri = uri
        self.driver = driver
        self.clock = clock
        self.project = f"conformance-{uuid.uuid4().hex[:12]}"
        self.client = str(uuid.uuid4())
        self.queues = driver.queue_controller
        self.messages = driver.message_controller
        self.claims = driver.claim_controller
        self._made = 0

    def new_queue(self, name: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        self._made += 1
        name = name or f"q{self._made}"
        self.queues.upsert(name, metadata or {}, project=self.project)
        return name

    def post(
        self, queue: str, bodies: list[Any] | int, ttl: int = 300, client: str | None = None, **extra: Any
    ) -> list[str]:
        """Post one batch; ``bodies`` may be a count (bodies 0..n-1)."""
        if isinstance(bodies, int):
            bodies = list(range(bodies))
        batch = [{"ttl": ttl, "body": body, **extra} for body in bodies]
        return self.messages.post(queue, batch, client or self.client, project=self.project)

    def fresh_driver(self, **options: Any) -> DriverBase:
        """Another driver on the same URI (wall clock unless ``clock=`` is given); the caller closes it."""
        return load(self.uri, **options)

    def cleanup(self) -> None:
        while True:
            names = [entry["name"] for entry in self.queues.list(project=self.project, limit=100).items]
            if not names:
                return
            for name in names:
                self.queues.delete(name, project=self.project)


MAX_PAGES = 500  # an observer that pages this often without reaching the end follows a marker that does not move


def drain(
    messages: MessageBase, queue: str, project: str | None, marker: str | None = None, limit: int = 10, **options: Any
) -> tuple[list[dict[str, Any]], str | None]:
    """Page ``queue`` from ``marker`` until a page comes back empty: every message seen, and the last marker.

    A driver whose markers never reach the end fails the test instead of hanging it. (For a driver's own tests
    too: ``from marconi.tests.plugin import drain``.)
    """
    seen: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = messages.list(queue, project=project, marker=marker, limit=limit, **options)
        if not page.items:
            return seen, page.marker
        seen.extend(dict(item) for item in page.items)
        marker = page.marker
    pytest.fail(f"paging {queue!r} did not reach the end after {MAX_PAGES} pages: the marker does not move forward")


@pytest.fixture
def marconi(marconi_uri: str, marconi_driver: DriverBase, marconi_clock: ManualClock) -> Iterator[Harness]:
    """A Harness on the URI under test, with a project of its own, cleaned up afterwards."""
    harness = Harness(marconi_uri, marconi_driver, marconi_clock)
    yield harness
    harness.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "marconi_uri" in callspec.params:
        report.user_properties.append(("marconi_uri", callspec.params["marconi_uri"]))
    return report


def _section(nodeid: str) -> str:
    """``.../test_claims.py::test_x[...]`` -> ``claims``: the part of the contract a test belongs to."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return module.removeprefix("test_").removesuffix(".py")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Per URI: passed, failed and skipped, which capabilities caused the skips, and where the failures are."""
    if not config.stash.get(_ACTIVE, False):
        return
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    sections: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    undeclared: dict[str, set[str]] = defaultdict(set)
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if not isinstance(report, pytest.TestReport) or (outcome == "passed" and report.when != "call"):
                continue
            uri = str(dict(report.user_properties).get("marconi_uri", "(driver-independent)"))
            outcomes[uri][outcome] += 1
            sections[uri][_section(report.nodeid)][outcome] += 1
            reason = str(report.longrepr[2]) if outcome == "skipped" and isinstance(report.longrepr, tuple) else ""
            if SKIP_PREFIX in reason:
                undeclared[uri].update(reason.split(SKIP_PREFIX, 1)[1].strip().split(", "))
    if not outcomes:
        return
    terminalreporter.section("marconi conformance summary")
    for uri, counts in outcomes.items():
        line = ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "error", "skipped") if counts[k])
        terminalreporter.write_line(f"{uri}: {line}")
        parts = []
        for name, tally in sorted(sections[uri].items()):
            bad = tally["failed"] + tally["error"]
            parts.append(f"{name} {tally['passed']}" + (f" ({bad} FAILED)" if bad else ""))
        terminalreporter.write_line(f"    passed by section: {', '.join(parts)}")
        if undeclared[uri]:
            terminalreporter.write_line(f"    skipped, capability not declared: {', '.join(sorted(undeclared[uri]))}")
