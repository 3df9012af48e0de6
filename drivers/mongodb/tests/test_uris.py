"""Bad MongoDB URIs are InvalidInput naming the part, before any connection; pymongo's errors never escape."""

from __future__ import annotations

import pytest

from marconi.storage import InvalidInput, StorageError, load

from ..uris import DEFAULT_DATABASE, check

pytestmark = pytest.mark.driver("mongodb")


@pytest.mark.parametrize(
    ("uri", "part"),
    [
        ("mongodb://h:99999/db", "port"),
        ("mongodb://h:port/db", "port"),
        ("mongodb:///db", "host"),
        ("mongodb://a,,b/db", "host"),
        ("mongodb://h/db?nosuchoption=1", "option"),
        ("mongodb://h/db?serverSelectionTimeoutMS=soon", "option"),
        ("mongodb://h/db?w=0", "option"),
        ("mongodb://h/db.collection", "database"),
        ("mongodb://h/d$b", "database"),
        ("mongodb+srv://h:27017/db", "host"),
        ("mongodb+srv://a,b/db", "host"),
    ],
)
def test_a_bad_uri_names_its_part(mongo_uri: str, uri: str, part: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load(uri)
    assert raised.value.field == "uri"
    assert str(raised.value).startswith(f"invalid uri: {part}")


def test_another_scheme_is_not_a_mongodb_uri(mongo_uri: str) -> None:
    with pytest.raises(InvalidInput, match=r"^invalid uri: scheme"):
        check("redis://h/db")


def test_an_srv_name_that_does_not_resolve_is_a_storage_error(mongo_uri: str) -> None:
    with pytest.raises(StorageError) as raised:
        load("mongodb+srv://no-such-cluster.invalid/db?serverSelectionTimeoutMS=1000")
    assert "no-such-cluster.invalid" in str(raised.value)


def test_the_database_defaults_and_is_taken_from_the_path(mongo_uri: str) -> None:
    assert check("mongodb://h").database == DEFAULT_DATABASE
    assert check("mongodb://u:p@h1,h2:27018/queues?replicaSet=rs0&w=majority&journal=true").database == "queues"
    assert check("mongodb+srv://cluster.example.net/q?srvMaxHosts=2").database == "q"
