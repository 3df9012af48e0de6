"""One URI form for both: a plain redis://host:port finds out whether it names a Redis Cluster node.

These run on every Redis URI and check what holds for the kind of server behind it.
"""

from __future__ import annotations

import pytest
import redis

from marconi.storage import InvalidInput

from ..urls import parse
from .conftest import open_driver, post

pytestmark = pytest.mark.driver("redis")


def is_cluster_node(uri: str) -> bool:
    """What the server itself says (redis-py directly, not the driver)."""
    target = parse(uri)
    if target.path is not None:
        client = redis.Redis(unix_socket_path=target.path, decode_responses=True)
    else:
        client = redis.Redis(host=target.host or "localhost", port=target.port or 6379, decode_responses=True)
    with client:
        return int(client.info("cluster").get("cluster_enabled", 0)) == 1


def test_the_driver_finds_out_whether_it_talks_to_a_cluster(driver, redis_uri):
    assert driver.backend.cluster is is_cluster_node(redis_uri)


def test_queues_spread_over_the_servers_and_each_stays_on_one(driver, project):
    names = [f"spread{i}" for i in range(16)]
    servers = set()
    for name in names:
        driver.queue_controller.upsert(name, {}, project=project)
        post(driver, name, project, 1)
        servers.add(id(driver.backend.client_for(driver.keys.queue_base(project, name))))
    expected = len(driver.backend.primaries())
    assert len(servers) == expected, "16 queues land on every primary (one server when it is not a cluster)"
    assert [entry["name"] for entry in driver.queue_controller.list(project=project, limit=100).items] == sorted(names)


def test_a_database_other_than_0_is_refused_by_a_cluster(redis_uri):
    target = parse(redis_uri)
    other = f"unix://{target.path}?db=3" if target.path else f"redis://{target.host}:{target.port}/3"
    if is_cluster_node(redis_uri):
        with pytest.raises(InvalidInput, match="Redis Cluster node"):
            open_driver(other)
    else:
        with open_driver(other) as driver:
            assert driver.backend.target.db == 3
