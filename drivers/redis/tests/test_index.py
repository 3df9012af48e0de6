"""A queue and its project's index live in two slots: create and delete are two steps each, not atomic together.

These tests run the steps (``write_queue`` then ``index``; ``drop_queue`` then ``unindex``) cut short and
interleaved in the orders that break a naive index, and check what callers see: a listed queue exists, an
existing queue whose create returned is listed, and an entry left behind by a call cut short is never listed.
"""

from __future__ import annotations

import pytest

from marconi.storage import QueueDoesNotExist

pytestmark = pytest.mark.driver("redis")


def listed(driver, project):
    return [entry["name"] for entry in driver.queue_controller.list(project=project, limit=100).items]


def index_entries(driver, project):
    names_key, _ = driver.keys.index(project)
    return driver.backend.command(names_key, "ZRANGE", names_key, 0, -1)


def test_a_create_cut_short_before_indexing_is_listed_once_created_again(driver, project):
    queues = driver.queue_controller
    created, _ = queues.write_queue("q", "{}", project)  # the caller died before indexing it
    assert created
    assert queues.get("q", project=project) == {}
    assert listed(driver, project) == []
    assert queues.upsert("q", {"again": True}, project=project) is False
    assert listed(driver, project) == ["q"]


def test_a_delete_cut_short_before_unindexing_leaves_an_entry_that_is_never_listed(driver, project):
    queues = driver.queue_controller
    queues.upsert("q", {}, project=project)
    queues.upsert("r", {}, project=project)
    assert queues.drop_queue("q", project) is not None  # the caller died before unindexing it
    assert listed(driver, project) == ["r"]
    assert index_entries(driver, project) == ["r"], "listing dropped the entry of the queue that is gone"


def test_a_stale_entry_does_not_shorten_a_page(driver, project):
    queues = driver.queue_controller
    for name in ("a", "b", "c", "d"):
        queues.upsert(name, {}, project=project)
    queues.drop_queue("b", project)
    queues.drop_queue("c", project)
    page = queues.list(project=project, limit=2)
    assert [entry["name"] for entry in page.items] == ["a", "d"]


def test_create_racing_a_delete_and_a_recreate_stays_listed(driver, project):
    """Create #1 writes the queue; a delete removes it; create #2 writes and indexes the queue again; then create
    #1 indexes its (older) incarnation and the delete unindexes the incarnation it removed. The queue exists, so
    it must stay listed: the older index write must not replace the newer, nor the delete remove it."""
    queues = driver.queue_controller
    _, first = queues.write_queue("q", '{"n": 1}', project)
    dropped = queues.drop_queue("q", project)
    assert dropped == first
    _, second = queues.write_queue("q", '{"n": 2}', project)
    queues.index("q", second, project)
    queues.index("q", first, project)
    queues.unindex("q", dropped, project)
    assert second > first
    assert listed(driver, project) == ["q"]
    assert queues.get("q", project=project) == {"n": 2}


def test_a_delete_racing_a_recreate_keeps_the_new_queue_listed(driver, project):
    """Delete removes incarnation 1; a create writes and indexes incarnation 2; the delete's unindex of
    incarnation 1 comes last and must leave incarnation 2's entry."""
    queues = driver.queue_controller
    queues.upsert("q", {}, project=project)
    dropped = queues.drop_queue("q", project)
    assert queues.upsert("q", {"new": True}, project=project) is True
    assert dropped is not None
    queues.unindex("q", dropped, project)
    assert listed(driver, project) == ["q"]


def test_a_create_racing_a_delete_may_leave_only_an_unlisted_entry(driver, project):
    """Create writes the queue, a delete removes and unindexes it (nothing to unindex yet), then the create
    indexes it: the entry names a queue that is gone, and listing neither shows it nor keeps it."""
    queues = driver.queue_controller
    _, incarnation = queues.write_queue("q", "{}", project)
    dropped = queues.drop_queue("q", project)
    assert dropped is not None
    queues.unindex("q", dropped, project)
    queues.index("q", incarnation, project)
    assert listed(driver, project) == []
    assert index_entries(driver, project) == []
    with pytest.raises(QueueDoesNotExist):
        queues.get("q", project=project)


def test_incarnations_never_repeat_across_queues_or_recreation(driver, project):
    queues = driver.queue_controller
    seen = set()
    for _ in range(3):
        for name in ("a", "b"):
            seen.add(queues.write_queue(name, "{}", project)[1])
            queues.drop_queue(name, project)
    assert len(seen) == 6
