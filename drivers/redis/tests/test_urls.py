"""URIs and options are checked before any connection: a bad part is InvalidInput naming it, never a crash."""

from __future__ import annotations

import pytest

from marconi.storage import InvalidInput, load

from ..urls import parse
from .conftest import open_driver

pytestmark = pytest.mark.driver("redis")


@pytest.mark.parametrize(
    ("uri", "where", "db", "options"),
    [
        ("redis://", "localhost:6379", 0, {}),
        ("redis://cache.example:6380/3", "cache.example:6380", 3, {}),
        ("redis://:secret@h/1", "h:6379", 1, {"password": "secret"}),
        ("redis://me:p%40ss@h:1/", "h:1", 0, {"username": "me", "password": "p@ss"}),
        ("redis://h?db=4&socket_timeout=2.5&max_connections=20", "h:6379", 4, {"socket_timeout": 2.5}),
        ("rediss://h:6390/0?ssl_cert_reqs=none", "h:6390", 0, {"ssl": True, "ssl_cert_reqs": "none"}),
        ("unix:///run/redis/redis.sock?db=2", "/run/redis/redis.sock", 2, {}),
        ("redis://[::1]:7000", "::1:7000", 0, {}),
    ],
)
def test_good_uris_parse(uri, where, db, options):
    target = parse(uri)
    assert (target.where, target.db) == (where, db)
    assert options.items() <= target.options.items()


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("redis://h:0", "port"),
        ("redis://h:70000", "port"),
        ("redis://h:port", "port"),
        ("redis://h/two", "database"),
        ("redis://h/1/2", "database"),
        ("redis://h/99999999999", "database"),
        ("redis://h/1?db=2", "database 1 in its path and 2"),
        ("redis://h?db=-1", "db="),
        ("redis://h?socket_timeout=soon", "socket_timeout"),
        ("redis://h?retry_on_timeout=true", "retry_on_timeout"),
        ("redis://h?protocol=3", "protocol"),
        ("redis://h?ssl_cert_reqs=none", "ssl_cert_reqs"),  # a TLS option on a plain URI
        ("redis://h?db=1&db=2", "more than once"),
        ("redis://h#frag", "fragment"),
        ("unix://", "socket path"),
        ("unix://host/sock", "socket path"),
        ("memcached://h", "scheme"),
    ],
)
def test_bad_uris_are_invalid_input_naming_the_part(uri, names):
    with pytest.raises(InvalidInput) as raised:
        parse(uri)
    assert raised.value.field == "uri"
    assert names in str(raised.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"key_prefix": "a{b}"}, "key_prefix"),
        ({"key_prefix": "a*"}, "key_prefix"),
        ({"key_prefix": ""}, "key_prefix"),
        ({"wait_replicas": -1}, "wait_replicas"),
        ({"wait_replicas": "1"}, "wait_replicas"),
        ({"wait_timeout": 0}, "wait_timeout"),
        ({"wait_replicas": 1, "wait_timeout": 5}, "wait_timeout"),  # not shorter than the socket timeout
        ({"pool_size": 3}, "pool_size"),
    ],
)
def test_bad_options_are_invalid_input_naming_the_option(options, field):
    with pytest.raises(InvalidInput) as raised:
        load("redis://127.0.0.1:1/0", **options)  # refused before any connection is tried
    assert raised.value.field == field


def test_a_database_the_server_does_not_have_is_invalid_input(redis_uri):
    target = parse(redis_uri)
    if target.path is not None:
        base = f"unix://{target.path}?db=1000000"
    else:
        base = f"redis://{target.host}:{target.port}/1000000"
    with pytest.raises(InvalidInput) as raised:
        open_driver(base)
    assert raised.value.field == "uri"
    assert "1000000" in str(raised.value)
