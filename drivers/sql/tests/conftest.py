"""Fixtures of the SQL driver's own tests. Each module is marked ``driver("sqlalchemy")``, so the tests run on
each ``--marconi-uri`` the SQL driver serves and are deselected on the others."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import pytest
import sqlalchemy as sa

from marconi.storage import ManualClock, load
from marconi.storage.loading import driver_class

if TYPE_CHECKING:
    from .. import SQLDriver

#: The driver class as the entry point installs it (``marconi_drivers.sql``), whatever name pytest gives this file.
SQL_DRIVER = cast("type[SQLDriver]", driver_class("sqlalchemy"))


@pytest.fixture
def sql_uri(marconi_uri: str) -> str:
    """The URI under test: always one the SQL driver serves (the modules' ``driver`` marker sees to it)."""
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
