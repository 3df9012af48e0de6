"""Loading drivers by URI through the ``marconi.storage`` entry points."""

from __future__ import annotations

import uuid

import pytest

from marconi import storage
from marconi.storage import loading, validation

# What `pip install marconi` registers; a driver missing from here would be invisible to users.
SHIPPED = {
    "memory://": "memory",
    "sqlite://": "sqlalchemy",
    "sqlite:///:memory:": "sqlalchemy",
}


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("memory://", "memory"),
        ("sqlite:///x.db", "sqlite"),
        ("postgresql+psycopg://u@h:5432/d", "postgresql"),
        ("mysql+pymysql://root@h/d", "mysql"),
        ("MariaDB://h/d", "mariadb"),
        ("redis://localhost:6379/0", "redis"),
    ],
)
def test_scheme_is_the_part_before_any_dialect_suffix(uri, scheme):
    assert loading.scheme_of(uri, registered=frozenset()) == scheme


def test_a_registered_plus_scheme_is_looked_up_whole():
    assert loading.scheme_of("mongodb+srv://cluster/db", registered=frozenset({"mongodb+srv"})) == "mongodb+srv"


@pytest.mark.parametrize(
    ("uri", "registered", "scheme"),
    [
        ("mongodb+srv://cluster/db", {"mongodb", "mongodb+srv"}, "mongodb+srv"),
        ("MongoDB+SRV://cluster/db", {"mongodb", "mongodb+srv"}, "mongodb+srv"),
        ("mongodb+srv://cluster/db", {"mongodb"}, "mongodb"),
        ("postgresql+psycopg://u@h/d", {"postgresql", "mongodb+srv"}, "postgresql"),
    ],
)
def test_a_plus_scheme_registered_whole_is_its_own_driver(uri, registered, scheme):
    assert loading.scheme_of(uri, frozenset(registered)) == scheme


@pytest.mark.parametrize("uri", ["memory://x", "memory://?foo=bar", "memory://:abc", "memory:///path"])
def test_the_memory_driver_takes_nothing_after_its_scheme(uri):
    with pytest.raises(storage.InvalidInput) as caught:
        storage.load(uri)
    assert caught.value.field == "uri"


@pytest.mark.parametrize("uri", ["", "memory", "://x", "1abc://x", None, 42, "sqlite:/x.db"])
def test_a_uri_without_a_scheme_is_invalid_input(uri):
    with pytest.raises(storage.InvalidInput) as caught:
        storage.load(uri)
    assert caught.value.field == "uri"


def test_an_unknown_scheme_lists_what_is_installed():
    with pytest.raises(storage.DriverNotFound) as caught:
        storage.load("nosuchdriver://x")
    message = str(caught.value)
    assert "nosuchdriver" in message
    for name in ("memory", "sqlite", "postgresql", "mysql", "mariadb", "sqlalchemy"):
        assert name in caught.value.installed
        assert name in message


@pytest.mark.parametrize(("uri", "canonical"), sorted(SHIPPED.items()))
def test_load_returns_a_working_driver(uri, canonical):
    with storage.load(uri) as driver:
        assert isinstance(driver, storage.DriverBase)
        assert driver.name == canonical
        assert driver.capabilities <= storage.Capability.ALL
        driver.queue_controller.upsert("loaded", {"uri": uri})
        assert driver.queue_controller.get("loaded") == {"uri": uri}


def test_options_reach_the_driver():
    clock = storage.ManualClock(1000.0)
    limits = storage.Limits(max_message_ttl=60)
    with storage.load("memory://", clock=clock, limits=limits, gc_interval=5) as driver:
        assert driver.clock is clock
        assert driver.gc_interval == 5
        driver.queue_controller.upsert("q", {})
        with pytest.raises(storage.InvalidInput) as caught:
            driver.message_controller.post("q", [{"ttl": 61, "body": 1}], client_uuid=uuid.uuid4())
        assert caught.value.field == "messages[0].ttl"


def test_an_unknown_option_is_refused():
    with pytest.raises(storage.InvalidInput) as caught:
        storage.load("memory://", colour="blue")
    assert caught.value.field == "colour"


def test_installed_drivers_describe_each_driver_once():
    drivers = {driver.name: driver for driver in storage.installed_drivers()}
    assert drivers["memory"].schemes == ("memory",)
    assert drivers["sqlalchemy"].schemes == ("mariadb", "mysql", "postgresql", "sqlite")
    assert all(driver.error is None for driver in drivers.values())
    assert "claims" in drivers["sqlalchemy"].capabilities


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql+psycopg://me:s3cr3t@db:5432/x", "postgresql+psycopg://me:***@db:5432/x"),
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("mongodb+srv://u:p%40ss@cluster/db", "mongodb+srv://u:***@cluster/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("memory://", "memory://"),
    ],
)
def test_a_password_in_a_uri_is_never_shown(uri, shown):
    assert validation.redacted(uri) == shown


def test_a_driver_shows_its_uri_without_the_password():
    with storage.load("memory://") as driver:
        driver.uri = "memory://user:secret@x"
        assert "secret" not in repr(driver)
