"""Queues: upsert, get, list, delete (and re-create), stats, actions. CONTRACT.md, "Queues"; and the driver that
serves them: its controllers, capabilities, registration and lifecycle ("Loading", "Driver")."""

from __future__ import annotations

import json

import pytest

from marconi.storage import (
    Capability,
    ClaimBase,
    ClaimDoesNotExist,
    DriverBase,
    DriverNotFound,
    InvalidInput,
    MessageBase,
    MessageDoesNotExist,
    MessageNotClaimedBy,
    QueueBase,
    QueueDoesNotExist,
    load,
)
from marconi.storage.loading import driver_class, scheme_of

from ._helpers import claim, claimed_ids, counts, drain, ids, iso, listing, stats


def names(page):
    items, marker = page
    return [entry["name"] for entry in items], marker


# -- upsert and get ------------------------------------------------------------------------------------------------


def test_upsert_returns_true_when_it_creates_the_queue(marconi):
    assert marconi.queues.upsert("fresh", {}, project=marconi.project) is True


def test_upsert_returns_false_when_the_queue_exists(marconi):
    marconi.queues.upsert("fresh", {}, project=marconi.project)
    assert marconi.queues.upsert("fresh", {"a": 1}, project=marconi.project) is False


def test_get_returns_the_metadata_as_given(marconi):
    metadata = {"text": 'héllo ✓ \u0000 "q"', "n": [1, 2.5, None, True], "nested": {"deep": {"x": -7}}}
    marconi.queues.upsert("meta", metadata, project=marconi.project)
    got = marconi.queues.get("meta", project=marconi.project)
    assert json.dumps(got, sort_keys=True) == json.dumps(metadata, sort_keys=True)  # True is not 1


def test_upsert_replaces_the_metadata_rather_than_merging(marconi):
    marconi.queues.upsert("meta", {"a": 1, "b": 2}, project=marconi.project)
    marconi.queues.upsert("meta", {"c": 3}, project=marconi.project)
    assert marconi.queues.get("meta", project=marconi.project) == {"c": 3}


def test_upsert_of_an_existing_queue_keeps_its_messages(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 3)
    marconi.queues.upsert(q, {"changed": True}, project=marconi.project)
    assert ids(drain(marconi, q)[0]) == posted


def test_get_of_a_missing_queue_raises_queue_does_not_exist(marconi):
    with pytest.raises(QueueDoesNotExist):
        marconi.queues.get("never-made", project=marconi.project)


def test_queue_names_differ_by_case(marconi):
    marconi.queues.upsert("orders", {"v": "lower"}, project=marconi.project)
    assert marconi.queues.upsert("ORDERS", {"v": "upper"}, project=marconi.project) is True
    marconi.post("orders", ["lower"])
    assert marconi.queues.get("orders", project=marconi.project) == {"v": "lower"}
    assert marconi.queues.get("ORDERS", project=marconi.project) == {"v": "upper"}
    assert drain(marconi, "ORDERS")[0] == []


def test_a_64_character_name_is_valid_and_distinct_from_its_prefix(marconi):
    long = "n" * 64
    marconi.queues.upsert(long, {"v": 64}, project=marconi.project)
    marconi.queues.upsert(long[:63], {"v": 63}, project=marconi.project)
    assert marconi.queues.get(long, project=marconi.project) == {"v": 64}
    assert marconi.queues.get(long[:63], project=marconi.project) == {"v": 63}


# -- list ----------------------------------------------------------------------------------------------------------


def test_list_is_sorted_by_name_in_code_point_order(marconi):
    for name in ["b", "B", "a", "_x", "A", "0", "-x", "a0", "Z9"]:
        marconi.new_queue(name)
    listed, _ = names(marconi.queues.list(project=marconi.project, limit=100))
    assert listed == ["-x", "0", "A", "B", "Z9", "_x", "a", "a0", "b"]


def test_list_returns_names_strictly_after_the_marker(marconi):
    for name in ["a", "b", "c", "d"]:
        marconi.new_queue(name)
    listed, _ = names(marconi.queues.list(project=marconi.project, marker="b"))
    assert listed == ["c", "d"]


def test_list_marker_need_not_name_an_existing_queue(marconi):
    for name in ["a", "b", "c"]:
        marconi.new_queue(name)
    listed, _ = names(marconi.queues.list(project=marconi.project, marker="b0"))
    assert listed == ["c"]


def test_list_honours_the_limit_and_returns_the_last_name_as_marker(marconi):
    for name in ["a", "b", "c", "d"]:
        marconi.new_queue(name)
    listed, marker = names(marconi.queues.list(project=marconi.project, limit=3))
    assert listed == ["a", "b", "c"]
    assert marker == "c"


def test_list_limit_defaults_to_10(marconi):
    for i in range(12):
        marconi.new_queue(f"q{i:02}")
    listed, _ = names(marconi.queues.list(project=marconi.project))
    assert listed == [f"q{i:02}" for i in range(10)]


def test_list_of_a_project_without_queues_is_empty(marconi):
    listed, _ = names(marconi.queues.list(project=marconi.project))
    assert listed == []


def test_list_pages_through_many_queues_once_each(marconi):
    made = sorted(f"queue-{i:03}" for i in range(25))
    for name in made:
        marconi.new_queue(name)
    seen, sizes, marker = [], [], None
    for _ in range(10):  # bounded: a marker that does not move must fail the test, not hang it
        page, marker = names(marconi.queues.list(project=marconi.project, marker=marker, limit=7))
        if not page:
            break
        sizes.append(len(page))
        seen.extend(page)
    assert seen == made
    assert sizes == [7, 7, 7, 4]


def test_list_without_detailed_gives_names_only(marconi):
    marconi.new_queue("a", {"k": "v"})
    items, _ = marconi.queues.list(project=marconi.project)
    assert list(items) == [{"name": "a"}]


def test_list_detailed_includes_the_metadata(marconi):
    marconi.new_queue("a", {"k": "v"})
    marconi.new_queue("b", {})
    items, _ = marconi.queues.list(project=marconi.project, detailed=True)
    assert list(items) == [{"name": "a", "metadata": {"k": "v"}}, {"name": "b", "metadata": {}}]


def test_list_does_not_show_deleted_queues(marconi):
    for name in ["a", "b", "c"]:
        marconi.new_queue(name)
    marconi.queues.delete("b", project=marconi.project)
    listed, _ = names(marconi.queues.list(project=marconi.project))
    assert listed == ["a", "c"]


# -- delete --------------------------------------------------------------------------------------------------------


def test_delete_removes_the_queue(marconi):
    q = marconi.new_queue()
    marconi.queues.delete(q, project=marconi.project)
    with pytest.raises(QueueDoesNotExist):
        marconi.queues.get(q, project=marconi.project)


def test_delete_of_a_missing_queue_is_not_an_error(marconi):
    marconi.queues.delete("never-made", project=marconi.project)


def test_delete_is_idempotent(marconi):
    q = marconi.new_queue()
    marconi.queues.delete(q, project=marconi.project)
    marconi.queues.delete(q, project=marconi.project)
    with pytest.raises(QueueDoesNotExist):
        marconi.queues.stats(q, project=marconi.project)


def test_delete_removes_the_messages(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 3)
    marconi.queues.delete(q, project=marconi.project)
    marconi.new_queue(q)
    assert drain(marconi, q)[0] == []
    assert marconi.messages.bulk_get(q, posted, project=marconi.project) == []
    assert counts(marconi, q) == {"claimed": 0, "free": 0, "total": 0}


@pytest.mark.requires(Capability.CLAIMS)
def test_delete_removes_the_claims(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim_id, _ = claim(marconi, q)
    marconi.queues.delete(q, project=marconi.project)
    marconi.new_queue(q)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.get(q, claim_id, project=marconi.project)


# -- delete, then create again: nothing old comes back -------------------------------------------------------------


def recreate(marconi, q):
    marconi.queues.delete(q, project=marconi.project)
    assert marconi.queues.upsert(q, {}, project=marconi.project) is True


def test_recreated_queue_starts_empty(marconi):
    q = marconi.new_queue(metadata={"old": True})
    marconi.post(q, 5)
    recreate(marconi, q)
    assert marconi.queues.get(q, project=marconi.project) == {}
    assert drain(marconi, q)[0] == []
    assert stats(marconi, q) == {"claimed": 0, "free": 0, "total": 0}


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_old_marker_never_hides_or_repeats_new_messages(marconi, position):
    """An old marker is rejected (InvalidInput) or read as the start of the new queue."""
    q = marconi.new_queue()
    marconi.post(q, 6)
    if position == "last":
        _, old_marker = drain(marconi, q)
    else:
        _, old_marker = listing(marconi, q, limit=1 if position == "first" else 3)
    recreate(marconi, q)
    new = marconi.post(q, ["n0", "n1", "n2", "n3"])
    try:
        seen, _ = drain(marconi, q, marker=old_marker, limit=2)
    except InvalidInput as error:
        assert error.field == "marker"
        return
    assert ids(seen) == new


def test_old_message_ids_never_reach_new_messages(marconi):
    q = marconi.new_queue()
    old = marconi.post(q, 4)
    recreate(marconi, q)
    new = marconi.post(q, 4)
    assert set(new).isdisjoint(old)
    assert marconi.messages.bulk_get(q, old, project=marconi.project) == []
    for old_id in old:
        with pytest.raises(MessageDoesNotExist):
            marconi.messages.get(q, old_id, project=marconi.project)
        marconi.messages.delete(q, old_id, project=marconi.project)
    marconi.messages.bulk_delete(q, old, project=marconi.project)
    assert ids(drain(marconi, q)[0]) == new


@pytest.mark.requires(Capability.CLAIMS)
def test_old_claim_ids_never_reach_new_claims(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2)
    old_claim, _ = claim(marconi, q, ttl=300)
    recreate(marconi, q)
    new_ids = marconi.post(q, 2)
    new_claim, held = claim(marconi, q, ttl=300)
    assert new_claim != old_claim
    assert ids(held) == new_ids
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.get(q, old_claim, project=marconi.project)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.update(q, old_claim, {"ttl": 60}, project=marconi.project)
    with pytest.raises(MessageNotClaimedBy):
        marconi.messages.delete(q, new_ids[0], project=marconi.project, claim=old_claim)
    marconi.claims.delete(q, old_claim, project=marconi.project)
    assert claimed_ids(marconi, q, new_claim) == new_ids


# -- stats ---------------------------------------------------------------------------------------------------------


def test_stats_of_an_empty_queue(marconi):
    q = marconi.new_queue()
    assert marconi.queues.stats(q, project=marconi.project) == {"messages": {"claimed": 0, "free": 0, "total": 0}}


def test_stats_of_a_missing_queue_raises_queue_does_not_exist(marconi):
    with pytest.raises(QueueDoesNotExist):
        marconi.queues.stats("never-made", project=marconi.project)


def test_stats_counts_free_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    marconi.post(q, 2)
    assert counts(marconi, q) == {"claimed": 0, "free": 5, "total": 5}


@pytest.mark.requires(Capability.CLAIMS)
def test_stats_counts_claimed_messages_apart_from_free_ones(marconi):
    q = marconi.new_queue()
    marconi.post(q, 5)
    claim(marconi, q, limit=2)
    assert counts(marconi, q) == {"claimed": 2, "free": 3, "total": 5}


def test_stats_oldest_and_newest_give_id_age_and_created(marconi):
    q = marconi.new_queue()
    first_posted = marconi.clock.now()
    first = marconi.post(q, ["first"])[0]
    marconi.clock.advance(10)
    last_posted = marconi.clock.now()
    marconi.post(q, ["middle"])
    last = marconi.post(q, ["last"])[0]
    marconi.clock.advance(5)
    found = stats(marconi, q)
    assert found["oldest"] == {"id": first, "age": 15, "created": iso(first_posted)}
    assert found["newest"] == {"id": last, "age": 5, "created": iso(last_posted)}


def test_stats_oldest_and_newest_are_the_same_single_message(marconi):
    q = marconi.new_queue()
    only = marconi.post(q, ["only"])[0]
    found = stats(marconi, q)
    assert found["oldest"]["id"] == found["newest"]["id"] == only


def test_stats_never_count_expired_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["short"], ttl=10)
    long = marconi.post(q, ["long"], ttl=100)[0]
    marconi.post(q, ["short again"], ttl=10)
    marconi.clock.advance(10)
    found = stats(marconi, q)
    assert (found["claimed"], found["free"], found["total"]) == (0, 1, 1)
    assert found["oldest"]["id"] == found["newest"]["id"] == long


def test_stats_of_a_queue_whose_messages_all_expired_has_no_oldest_or_newest(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3, ttl=5)
    marconi.clock.advance(5)
    assert stats(marconi, q) == {"claimed": 0, "free": 0, "total": 0}


def test_stats_forget_deleted_messages(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 3)
    marconi.messages.delete(q, posted[0], project=marconi.project)
    marconi.messages.delete(q, posted[2], project=marconi.project)
    found = stats(marconi, q)
    assert (found["free"], found["total"]) == (1, 1)
    assert found["oldest"]["id"] == found["newest"]["id"] == posted[1]


@pytest.mark.requires(Capability.DELAY)
def test_stats_count_delayed_messages_in_total_but_not_as_free(marconi):
    q = marconi.new_queue()
    visible = marconi.post(q, ["visible"])[0]
    marconi.post(q, ["later"], delay=60)
    found = stats(marconi, q)
    assert (found["claimed"], found["free"], found["total"]) == (0, 1, 2)
    assert found["oldest"]["id"] == found["newest"]["id"] == visible


@pytest.mark.requires(Capability.CLAIMS)
def test_stats_claimed_messages_count_again_as_free_when_the_claim_expires(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim(marconi, q, ttl=10, limit=2)
    marconi.clock.advance(10)
    assert counts(marconi, q) == {"claimed": 0, "free": 3, "total": 3}


@pytest.mark.requires(Capability.DELAY)
def test_stats_oldest_and_newest_follow_marker_order_not_posting_order(marconi):
    q = marconi.new_queue()
    delayed = marconi.post(q, ["delayed"], delay=10)[0]
    visible = marconi.post(q, ["visible"])[0]
    marconi.clock.advance(10)
    found = stats(marconi, q)
    assert (found["oldest"]["id"], found["newest"]["id"]) == (visible, delayed)
    assert found["newest"]["age"] == 10


@pytest.mark.requires(Capability.CLAIMS)
def test_stats_oldest_includes_claimed_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2)
    _, held = claim(marconi, q, limit=1)
    assert stats(marconi, q)["oldest"]["id"] == held[0]["id"]


# -- actions -------------------------------------------------------------------------------------------------------


def test_actions_raise_not_implemented(marconi):
    q = marconi.new_queue()
    with pytest.raises(NotImplementedError, match=r"\w"):
        marconi.queues.actions(q, project=marconi.project)


# -- the driver serving the queues (CONTRACT.md, "Loading" and "Driver") -------------------------------------------


def test_the_driver_offers_the_three_controllers(marconi):
    assert isinstance(marconi.driver, DriverBase)
    assert isinstance(marconi.driver.queue_controller, QueueBase)
    assert isinstance(marconi.driver.message_controller, MessageBase)
    assert isinstance(marconi.driver.claim_controller, ClaimBase)


def test_capabilities_are_named_promises_the_suite_knows(marconi):
    capabilities = marconi.driver.capabilities
    assert isinstance(capabilities, (set, frozenset))
    assert set(capabilities) <= Capability.ALL


def test_the_driver_is_registered_under_its_name_and_every_scheme(marconi):
    cls = type(marconi.driver)
    assert cls.name
    assert scheme_of(marconi.uri) in cls.schemes
    for name in (cls.name, *cls.schemes):
        assert driver_class(name) is cls


def test_an_unknown_scheme_names_the_installed_drivers(marconi):
    with pytest.raises(DriverNotFound) as raised:
        load("no-such-scheme://")
    assert type(marconi.driver).name in raised.value.installed
    assert type(marconi.driver).name in str(raised.value)


def test_a_driver_is_a_context_manager_and_close_is_idempotent(marconi):
    with marconi.fresh_driver(clock=marconi.clock) as other:
        assert type(other) is type(marconi.driver)
        other.queue_controller.list(project=marconi.project)
    other.close()


@pytest.mark.requires(Capability.DURABLE)
def test_a_durable_driver_keeps_everything_across_a_restart(marconi):
    q = marconi.new_queue(metadata={"kept": True})
    posted = marconi.post(q, ["a", "b"])
    with marconi.fresh_driver(clock=marconi.clock) as other:
        assert other.queue_controller.get(q, project=marconi.project) == {"kept": True}
        items, _ = other.message_controller.list(q, project=marconi.project)
        assert sorted((m["id"], m["body"]) for m in items) == sorted(zip(posted, ["a", "b"], strict=True))
