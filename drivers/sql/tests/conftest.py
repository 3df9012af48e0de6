"""Fixtures of the SQL driver's own tests: they run on each ``--marconi-uri`` that names a SQL backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
import sqlalchemy as sa

from marconi.storage import ManualClock, load
from marconi.storage.loading import driver_class, scheme_of

if TYPE_CHECKING:
    from .. import SQLDriver

#: The driver class as the entry point installs it (``marconi_drivers.sql``), whatever name pytest gives this file.
SQL_DRIVER = cast("type[SQLDriver]", driver_class("sqlalchemy"))
SQL_SCHEMES = frozenset(SQL_DRIVER.schemes)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """These tests are about the SQL driver: on other drivers' URIs they are deselected, not run."""
    here = Path(__file__).parent
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        uri = callspec.params.get("marconi_uri") if callspec is not None else None
        mine = item.path.is_relative_to(here)
        (drop if mine and uri is not None and scheme_of(uri) not in SQL_SCHEMES else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def sql_uri(marconi_uri: str) -> str:
    """The URI under test: always one the SQL driver serves (see pytest_collection_modifyitems)."""
    return marconi_uri


@pytest.fixture
def project() -> str:
    return f"sqltest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


def open_driver(uri: str, **options: object) -> SQLDriver:
    driver = load(uri, **options)
    assert isinstance(driver, SQL_DRIVER)
    return driver


@pytest.fixture
def driver(sql_uri: str, clock: ManualClock, project: str) -> Iterator[SQLDriver]:
    """A driver on the URI with a ManualClock; the test's project is emptied afterwards."""
    with open_driver(sql_uri, clock=clock) as opened:
        yield opened
        for entry in opened.queue_controller.list(project=project, limit=100).items:
            opened.queue_controller.delete(entry["name"], project=project)


def kind(driver: SQLDriver) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB and MySQL)."""
    return driver.database.kind


def in_memory(uri: str) -> bool:
    url = sa.make_url(uri)
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
