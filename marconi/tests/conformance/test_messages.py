"""Messages: post, get, bulk_get, list, delete, bulk_delete, pop. CONTRACT.md, "Messages" and guarantees 1-3."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from marconi.storage import (
    Capability,
    ClaimDoesNotExist,
    InvalidInput,
    MessageDoesNotExist,
    MessageIsClaimed,
    MessageNotClaimedBy,
    QueueDoesNotExist,
)

from ._helpers import bodies, claim, claimed_ids, counts, drain, ids, listing, snapshot, unissued_claim_id

# -- post ----------------------------------------------------------------------------------------------------------


def test_post_returns_one_id_per_message_in_input_order(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, ["a", "b", "c"])
    assert len(posted) == len(set(posted)) == 3
    assert all(isinstance(message_id, str) for message_id in posted)
    assert bodies(marconi.messages.bulk_get(q, posted, project=marconi.project)) == ["a", "b", "c"]


def test_post_ids_are_unique_across_batches_and_queues(marconi):
    q1, q2 = marconi.new_queue(), marconi.new_queue()
    posted = marconi.post(q1, 3) + marconi.post(q1, 3) + marconi.post(q2, 3)
    assert len(set(posted)) == 9


def test_post_accepts_any_iterable_of_messages(marconi):
    q = marconi.new_queue()
    batch = ({"ttl": 60, "body": n} for n in range(3))
    posted = marconi.messages.post(q, batch, marconi.client, project=marconi.project)
    assert bodies(marconi.messages.bulk_get(q, posted, project=marconi.project)) == [0, 1, 2]


@pytest.mark.parametrize(
    "body",
    [
        *(None, True, False, 0, -1, 2**53 + 1, 2**64, -(10**30), 0.1, 1.5e308, -0.0),
        *("", "text", "ünï ✓ 🚀 \u0000", "lone \ud800 surrogate", "\\'\"%_;--"),
        *([], {}, [1, [2, [3]]], {"a": {"b": [None]}}, {"": 0, "\u0000": 1}),
    ],
    ids=lambda body: repr(body)[:40],
)
def test_bodies_round_trip_unchanged(marconi, body):
    """Compared as canonical JSON, so True is not 1, -0.0 is not 0.0 and 2**64 is not a float."""
    q = marconi.new_queue()
    message_id = marconi.post(q, [body])[0]
    got = marconi.messages.get(q, message_id, project=marconi.project)["body"]
    listed = bodies(drain(marconi, q)[0])
    assert as_json(got) == as_json(body)
    assert [as_json(item) for item in listed] == [as_json(body)]


def as_json(value):
    return json.dumps(value, sort_keys=True)


def test_a_large_body_round_trips(marconi):
    q = marconi.new_queue()
    body = {"blob": "x" * 200_000, "unicode": "é" * 1_000}
    message_id = marconi.post(q, [body])[0]
    assert marconi.messages.get(q, message_id, project=marconi.project)["body"] == body


@pytest.mark.parametrize("bad_index", [0, 1, 3])
def test_a_batch_with_one_invalid_message_posts_nothing(marconi, bad_index):
    q = marconi.new_queue()
    batch = [{"ttl": 60, "body": n} for n in range(4)]
    batch[bad_index]["ttl"] = 0
    with pytest.raises(InvalidInput) as raised:
        marconi.messages.post(q, batch, marconi.client, project=marconi.project)
    assert raised.value.field == f"messages[{bad_index}].ttl"
    assert drain(marconi, q)[0] == []
    assert counts(marconi, q) == {"claimed": 0, "free": 0, "total": 0}


def test_a_batch_with_an_unserialisable_body_posts_nothing(marconi):
    q = marconi.new_queue()
    batch = [{"ttl": 60, "body": "fine"}, {"ttl": 60, "body": {1, 2}}]
    with pytest.raises(InvalidInput) as raised:
        marconi.messages.post(q, batch, marconi.client, project=marconi.project)
    assert raised.value.field == "messages[1].body"
    assert counts(marconi, q)["total"] == 0


# -- missing queue -------------------------------------------------------------------------------------------------

MISSING_QUEUE_RAISES = [
    pytest.param(lambda m, q, mid, cid: m.post(q, 1), id="messages.post"),
    pytest.param(lambda m, q, mid, cid: m.messages.list(q, project=m.project), id="messages.list"),
    pytest.param(lambda m, q, mid, cid: m.messages.get(q, mid, project=m.project), id="messages.get"),
    pytest.param(lambda m, q, mid, cid: m.messages.bulk_get(q, [mid], project=m.project), id="messages.bulk_get"),
    pytest.param(
        lambda m, q, mid, cid: m.messages.pop(q, project=m.project),
        id="messages.pop",
        marks=pytest.mark.requires(Capability.POP),
    ),
    pytest.param(lambda m, q, mid, cid: m.queues.stats(q, project=m.project), id="queues.stats"),
    pytest.param(
        lambda m, q, mid, cid: m.claims.create(q, {"ttl": 60}, project=m.project),
        id="claims.create",
        marks=pytest.mark.requires(Capability.CLAIMS),
    ),
    pytest.param(
        lambda m, q, mid, cid: m.claims.get(q, cid, project=m.project),
        id="claims.get",
        marks=pytest.mark.requires(Capability.CLAIMS),
    ),
    pytest.param(
        lambda m, q, mid, cid: m.claims.update(q, cid, {"ttl": 60}, project=m.project),
        id="claims.update",
        marks=pytest.mark.requires(Capability.CLAIMS),
    ),
]

MISSING_QUEUE_SILENT = [
    pytest.param(lambda m, q, mid, cid: m.queues.delete(q, project=m.project), id="queues.delete"),
    pytest.param(lambda m, q, mid, cid: m.messages.delete(q, mid, project=m.project), id="messages.delete"),
    pytest.param(
        lambda m, q, mid, cid: m.messages.delete(q, mid, project=m.project, claim=cid), id="messages.delete-claim"
    ),
    pytest.param(lambda m, q, mid, cid: m.messages.bulk_delete(q, [mid], project=m.project), id="messages.bulk_delete"),
    pytest.param(
        lambda m, q, mid, cid: m.messages.bulk_delete(q, [mid], project=m.project, claim=cid),
        id="messages.bulk_delete-claim",
        marks=pytest.mark.requires(Capability.CLAIMS),
    ),
    pytest.param(
        lambda m, q, mid, cid: m.claims.delete(q, cid, project=m.project),
        id="claims.delete",
        marks=pytest.mark.requires(Capability.CLAIMS),
    ),
]


def missing_queue(marconi, how):
    """A queue name with nothing behind it, a message id and a claim id that once belonged to it."""
    q = marconi.new_queue()
    message_id = marconi.post(q, 1)[0]
    claim_id = unissued_claim_id()
    if how == "never-created":
        q = "never-created"
    else:
        marconi.queues.delete(q, project=marconi.project)
    return q, message_id, claim_id


@pytest.mark.parametrize("how", ["never-created", "deleted"])
@pytest.mark.parametrize("call", MISSING_QUEUE_RAISES)
def test_calls_on_a_missing_queue_raise_queue_does_not_exist(marconi, call, how):
    q, message_id, claim_id = missing_queue(marconi, how)
    with pytest.raises(QueueDoesNotExist):
        call(marconi, q, message_id, claim_id)
    with pytest.raises(QueueDoesNotExist):
        marconi.queues.get(q, project=marconi.project)


@pytest.mark.parametrize("how", ["never-created", "deleted"])
@pytest.mark.parametrize("call", MISSING_QUEUE_SILENT)
def test_deletes_on_a_missing_queue_are_silent(marconi, call, how):
    q, message_id, claim_id = missing_queue(marconi, how)
    call(marconi, q, message_id, claim_id)
    with pytest.raises(QueueDoesNotExist):
        marconi.queues.get(q, project=marconi.project)


# -- get and bulk_get ----------------------------------------------------------------------------------------------


def test_get_returns_id_ttl_age_and_body(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, [{"k": "v"}], ttl=120)[0]
    assert marconi.messages.get(q, message_id, project=marconi.project) == {
        "id": message_id,
        "ttl": 120,
        "age": 0,
        "body": {"k": "v"},
    }


def test_age_counts_whole_seconds_since_posting_and_ttl_stays_as_posted(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=120)[0]
    marconi.clock.advance(7)
    assert marconi.messages.get(q, message_id, project=marconi.project)["age"] == 7
    marconi.clock.advance(0.5)
    found = marconi.messages.get(q, message_id, project=marconi.project)
    assert (found["age"], found["ttl"]) == (7, 120)
    marconi.clock.advance(0.5)
    assert marconi.messages.get(q, message_id, project=marconi.project)["age"] == 8


def test_ages_and_ttls_are_whole_seconds_on_a_fractional_clock(marconi):
    q = marconi.new_queue()
    marconi.clock.advance(0.3)
    message_id = marconi.post(q, ["x"], ttl=60)[0]
    marconi.clock.advance(2.9)
    found = marconi.messages.get(q, message_id, project=marconi.project)
    assert (found["age"], found["ttl"]) == (2, 60)
    assert listing(marconi, q)[0][0]["age"] == 2
    marconi.clock.set(math.ceil(marconi.clock.now()))  # back on a whole second for the tests that follow


@pytest.mark.requires(Capability.CLAIMS)
def test_get_carries_claim_id_only_while_claimed(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, 1)[0]
    claim_id, _ = claim(marconi, q, ttl=10)
    assert marconi.messages.get(q, message_id, project=marconi.project)["claim_id"] == claim_id
    marconi.clock.advance(10)
    assert "claim_id" not in marconi.messages.get(q, message_id, project=marconi.project)
    claim_id, _ = claim(marconi, q, ttl=10)
    marconi.claims.delete(q, claim_id, project=marconi.project)
    assert "claim_id" not in marconi.messages.get(q, message_id, project=marconi.project)


def test_get_of_a_deleted_message_raises_message_does_not_exist(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, 1)[0]
    marconi.messages.delete(q, message_id, project=marconi.project)
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q, message_id, project=marconi.project)


def test_get_of_another_queues_message_raises_message_does_not_exist(marconi):
    q1, q2 = marconi.new_queue(), marconi.new_queue()
    marconi.post(q2, 3)
    message_id = marconi.post(q1, 1)[0]
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q2, message_id, project=marconi.project)


def test_bulk_get_returns_the_existing_ones_in_the_order_asked(marconi):
    q = marconi.new_queue()
    a, b, _, d = marconi.post(q, ["a", "b", "c", "d"])
    marconi.messages.delete(q, b, project=marconi.project)
    found = marconi.messages.bulk_get(q, [d, b, "garbage", a, a], project=marconi.project)
    assert ids(found) == [d, a]
    assert found[0] == marconi.messages.get(q, d, project=marconi.project)


def test_bulk_get_of_nothing_is_empty(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2)
    assert marconi.messages.bulk_get(q, [], project=marconi.project) == []


# -- list ----------------------------------------------------------------------------------------------------------


def test_list_gives_every_message_once(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 7)
    seen, _ = drain(marconi, q, limit=3)
    assert sorted(ids(seen)) == sorted(posted)
    assert len(seen) == 7


def test_list_messages_carry_id_ttl_age_and_body(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, [{"k": 1}], ttl=90)[0]
    marconi.clock.advance(3)
    items, _ = listing(marconi, q)
    assert items == [{"id": message_id, "ttl": 90, "age": 3, "body": {"k": 1}}]


@pytest.mark.requires(Capability.FIFO)
def test_list_is_in_posting_order_within_and_across_batches(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, [0, 1, 2]) + marconi.post(q, [3]) + marconi.post(q, [4, 5])
    seen, _ = drain(marconi, q, limit=4)
    assert ids(seen) == posted
    assert bodies(seen) == [0, 1, 2, 3, 4, 5]


def test_list_honours_the_limit(marconi):
    q = marconi.new_queue()
    marconi.post(q, 5)
    assert len(listing(marconi, q, limit=3)[0]) == 3
    assert len(listing(marconi, q, limit=1)[0]) == 1


def test_list_limit_defaults_to_10(marconi):
    q = marconi.new_queue()
    marconi.post(q, 15)
    assert len(listing(marconi, q)[0]) == 10


def test_list_starts_strictly_after_the_marker(marconi):
    q = marconi.new_queue()
    marconi.post(q, 5)
    everything = ids(listing(marconi, q)[0])
    _, marker = listing(marconi, q, limit=2)
    assert ids(listing(marconi, q, marker=marker)[0]) == everything[2:]


def test_a_marker_after_the_first_message_does_not_return_it_again(marconi):
    """Trap: a marker at position 0 read as "no marker" returns the first message twice."""
    q = marconi.new_queue()
    marconi.post(q, 3)
    seen, marker = [], None
    for _ in range(3):
        items, marker = listing(marconi, q, marker=marker, limit=1)
        seen.extend(ids(items))
    assert len(seen) == len(set(seen)) == 3
    assert listing(marconi, q, marker=marker)[0] == []


def test_a_marker_whose_message_was_deleted_still_continues_after_it(marconi):
    """Trap: a marker naming a deleted message sends the observer back to the head of the queue."""
    q = marconi.new_queue()
    marconi.post(q, 5)
    everything = ids(listing(marconi, q)[0])
    first_page, marker = listing(marconi, q, limit=2)
    marconi.messages.delete(q, first_page[-1]["id"], project=marconi.project)
    assert ids(listing(marconi, q, marker=marker)[0]) == everything[2:]


def test_a_marker_whose_message_expired_still_continues_after_it(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["first"], ttl=60)
    marconi.post(q, ["short"], ttl=5)
    _, marker = listing(marconi, q, limit=2)  # ends at "short"
    rest = marconi.post(q, ["a", "b"], ttl=60)
    marconi.clock.advance(5)
    assert sorted(ids(listing(marconi, q, marker=marker)[0])) == sorted(rest)


def test_an_observer_at_the_end_sees_only_new_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    _, marker = drain(marconi, q)
    new = marconi.post(q, ["new"])
    seen, marker = drain(marconi, q, marker=marker)
    assert ids(seen) == new
    assert drain(marconi, q, marker=marker)[0] == []


def test_the_marker_of_an_empty_queue_sees_later_messages(marconi):
    q = marconi.new_queue()
    items, marker = listing(marconi, q)
    assert items == []
    posted = marconi.post(q, 2)
    assert sorted(ids(drain(marconi, q, marker=marker)[0])) == sorted(posted)


def test_a_page_is_short_only_when_nothing_more_is_eligible(marconi):
    q = marconi.new_queue()
    marconi.post(q, 5)
    sizes, marker = [], None
    for _ in range(10):  # bounded: a marker that does not move must fail the test, not hang it
        items, marker = listing(marconi, q, marker=marker, limit=2)
        if not items:
            break
        sizes.append(len(items))
    assert sizes == [2, 2, 1]


def test_a_page_is_full_when_hidden_messages_come_before_eligible_ones(marconi):
    """Trap: reading ``limit`` rows and then filtering returns a short page while more are eligible."""
    q = marconi.new_queue()
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    marconi.post(q, 6, client=mine)
    visible = marconi.post(q, 4, client=theirs)
    items, _ = listing(marconi, q, limit=3, client_uuid=mine)
    assert len(items) == 3
    assert set(ids(items)) <= set(visible)


def test_a_page_of_only_hidden_messages_moves_the_marker_past_them(marconi):
    """Trap: a page whose messages are all filtered out gives no usable marker, so the observer stalls."""
    q = marconi.new_queue()
    mine = str(uuid.uuid4())
    marconi.post(q, 3, client=mine)
    items, marker = listing(marconi, q, client_uuid=mine)
    assert items == []
    assert listing(marconi, q, marker=marker)[0] == []  # even without the filter: the marker is past them
    new = marconi.post(q, ["new"])
    assert ids(listing(marconi, q, marker=marker)[0]) == new


@pytest.mark.requires(Capability.CLAIMS)
def test_a_page_of_only_claimed_messages_moves_the_marker_past_them(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim_id, _ = claim(marconi, q)
    items, marker = listing(marconi, q)
    assert items == []
    marconi.claims.delete(q, claim_id, project=marconi.project)
    assert listing(marconi, q, marker=marker)[0] == []
    new = marconi.post(q, ["new"])
    assert ids(listing(marconi, q, marker=marker)[0]) == new


def test_paging_with_hidden_messages_interleaved_sees_each_visible_one_once(marconi):
    q = marconi.new_queue()
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    visible = []
    for n in range(6):
        marconi.post(q, 2, client=mine)
        visible += marconi.post(q, [n], client=theirs)
    seen, _ = drain(marconi, q, limit=2, client_uuid=mine)
    assert sorted(ids(seen)) == sorted(visible)
    assert len(seen) == len(visible)


def test_list_hides_the_callers_own_messages_unless_echo(marconi):
    q = marconi.new_queue()
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    own = marconi.post(q, ["mine"], client=mine)
    other = marconi.post(q, ["theirs"], client=theirs)
    assert ids(listing(marconi, q, client_uuid=mine)[0]) == other
    assert sorted(ids(listing(marconi, q, client_uuid=mine, echo=True)[0])) == sorted(own + other)


def test_list_without_client_uuid_hides_nothing(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 2, client=str(uuid.uuid4())) + marconi.post(q, 2, client=str(uuid.uuid4()))
    assert sorted(ids(listing(marconi, q)[0])) == sorted(posted)
    assert sorted(ids(listing(marconi, q, echo=False)[0])) == sorted(posted)


def test_client_uuid_is_compared_as_a_uuid_not_as_text(marconi):
    q = marconi.new_queue()
    client = uuid.uuid4()
    marconi.messages.post(q, [{"ttl": 60, "body": "mine"}], client, project=marconi.project)
    other = marconi.post(q, ["theirs"], client=str(uuid.uuid4()))
    assert ids(listing(marconi, q, client_uuid=str(client).upper())[0]) == other
    assert ids(listing(marconi, q, client_uuid=client)[0]) == other


@pytest.mark.requires(Capability.CLAIMS)
def test_list_leaves_out_claimed_messages_unless_include_claimed(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 4)
    claim_id, held = claim(marconi, q, limit=2)
    free = [message_id for message_id in posted if message_id not in ids(held)]
    assert ids(listing(marconi, q)[0]) == free
    everything, _ = listing(marconi, q, include_claimed=True)
    assert sorted(ids(everything)) == sorted(posted)
    assert {m["id"]: m.get("claim_id") for m in everything} == {
        message_id: (claim_id if message_id in ids(held) else None) for message_id in posted
    }


# -- delete --------------------------------------------------------------------------------------------------------


def test_delete_removes_the_message(marconi):
    q = marconi.new_queue()
    keep, gone = marconi.post(q, ["keep", "gone"])
    marconi.messages.delete(q, gone, project=marconi.project)
    assert ids(drain(marconi, q)[0]) == [keep]
    assert counts(marconi, q)["total"] == 1


def test_delete_of_a_missing_message_is_not_an_error(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, 1)[0]
    marconi.messages.delete(q, message_id, project=marconi.project)
    marconi.messages.delete(q, message_id, project=marconi.project)
    marconi.messages.delete(q, message_id, project=marconi.project, claim=unissued_claim_id())


def test_delete_of_an_expired_message_is_not_an_error(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, 1, ttl=5)[0]
    marconi.clock.advance(5)
    marconi.messages.delete(q, message_id, project=marconi.project)


def test_delete_with_another_queues_message_id_deletes_nothing(marconi):
    q1, q2 = marconi.new_queue(), marconi.new_queue()
    message_id = marconi.post(q1, 1)[0]
    marconi.post(q2, 1)
    marconi.messages.delete(q2, message_id, project=marconi.project)
    assert counts(marconi, q1)["total"] == counts(marconi, q2)["total"] == 1


@pytest.mark.requires(Capability.CLAIMS)
def test_deleting_a_claimed_message_without_its_claim_raises_message_is_claimed(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, 1)[0]
    claim(marconi, q)
    with pytest.raises(MessageIsClaimed):
        marconi.messages.delete(q, message_id, project=marconi.project)
    assert marconi.messages.get(q, message_id, project=marconi.project)["id"] == message_id


@pytest.mark.requires(Capability.CLAIMS)
def test_deleting_a_claimed_message_with_another_claim_raises_message_not_claimed_by(marconi):
    q = marconi.new_queue()
    first, _ = marconi.post(q, 2)
    claim(marconi, q, limit=1)
    other_claim, _ = claim(marconi, q, limit=1)
    for wrong in (other_claim, unissued_claim_id()):
        with pytest.raises(MessageNotClaimedBy):
            marconi.messages.delete(q, first, project=marconi.project, claim=wrong)
    assert marconi.messages.get(q, first, project=marconi.project)["id"] == first


@pytest.mark.requires(Capability.CLAIMS)
def test_deleting_an_unclaimed_message_with_a_claim_id_raises_message_not_claimed_by(marconi):
    q = marconi.new_queue()
    _, free_one = marconi.post(q, 2)
    claim_id, _ = claim(marconi, q, limit=1)
    with pytest.raises(MessageNotClaimedBy):
        marconi.messages.delete(q, free_one, project=marconi.project, claim=claim_id)
    assert counts(marconi, q)["total"] == 2


@pytest.mark.requires(Capability.CLAIMS)
def test_deleting_a_claimed_message_with_its_claim_removes_it(marconi):
    q = marconi.new_queue()
    first, second = marconi.post(q, 2)
    claim_id, _ = claim(marconi, q)
    marconi.messages.delete(q, first, project=marconi.project, claim=claim_id)
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q, first, project=marconi.project)
    _, held = marconi.claims.get(q, claim_id, project=marconi.project)
    assert ids(held) == [second]


@pytest.mark.requires(Capability.CLAIMS)
def test_a_message_whose_claim_expired_deletes_without_a_claim(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, 1)[0]
    claim_id, _ = claim(marconi, q, ttl=10)
    marconi.clock.advance(10)
    with pytest.raises(MessageNotClaimedBy):
        marconi.messages.delete(q, message_id, project=marconi.project, claim=claim_id)
    marconi.messages.delete(q, message_id, project=marconi.project)
    assert counts(marconi, q)["total"] == 0


# -- bulk_delete ---------------------------------------------------------------------------------------------------


def test_bulk_delete_removes_the_listed_messages(marconi):
    q = marconi.new_queue()
    a, b, c = marconi.post(q, ["a", "b", "c"])
    marconi.messages.bulk_delete(q, [a, c, "garbage", a], project=marconi.project)
    assert ids(drain(marconi, q)[0]) == [b]


def test_bulk_delete_of_missing_ids_is_not_an_error(marconi):
    q = marconi.new_queue()
    a = marconi.post(q, 1)[0]
    marconi.messages.delete(q, a, project=marconi.project)
    marconi.messages.bulk_delete(q, [a], project=marconi.project)
    marconi.messages.bulk_delete(q, [], project=marconi.project)


@pytest.mark.requires(Capability.CLAIMS)
def test_bulk_delete_leaves_claimed_messages(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 4)
    claim_id, held = claim(marconi, q, limit=2)
    marconi.messages.bulk_delete(q, posted, project=marconi.project)
    assert sorted(ids(drain(marconi, q, include_claimed=True)[0])) == sorted(ids(held))
    assert sorted(ids(marconi.claims.get(q, claim_id, project=marconi.project)[1])) == sorted(ids(held))


# -- bulk_delete under a claim -------------------------------------------------------------------------------------


@pytest.mark.requires(Capability.CLAIMS)
def test_bulk_delete_under_a_claim_removes_exactly_what_it_holds(marconi):
    """A mix of held, unclaimed, missing, malformed and otherwise-held ids: only the claim's messages go."""
    q = marconi.new_queue()
    posted = marconi.post(q, 6)
    mine, held = claim(marconi, q, limit=2)
    theirs, others = claim(marconi, q, limit=2)
    gone = marconi.post(q, 1)[0]
    marconi.messages.delete(q, gone, project=marconi.project)
    asked = [*ids(held), *ids(others), posted[4], gone, "garbage", ids(held)[0]]
    marconi.messages.bulk_delete(q, asked, project=marconi.project, claim=mine)
    left = drain(marconi, q, include_claimed=True)[0]
    assert ids(left) == posted[2:]
    assert claimed_ids(marconi, q, mine) == []
    assert claimed_ids(marconi, q, theirs) == ids(others)


@pytest.mark.requires(Capability.CLAIMS)
def test_bulk_delete_under_a_claim_that_no_longer_lives_raises_and_deletes_nothing(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 3)
    expired, _ = claim(marconi, q, ttl=10, limit=1)
    released, _ = claim(marconi, q, ttl=60, limit=1)
    marconi.claims.delete(q, released, project=marconi.project)
    marconi.clock.advance(10)
    for dead in (expired, released, unissued_claim_id(), "garbage"):
        with pytest.raises(ClaimDoesNotExist):
            marconi.messages.bulk_delete(q, posted, project=marconi.project, claim=dead)
    assert counts(marconi, q)["total"] == 3


@pytest.mark.requires(Capability.CLAIMS)
def test_bulk_delete_under_another_queues_claim_raises_and_deletes_nothing(marconi):
    q, other = marconi.new_queue(), marconi.new_queue()
    posted = marconi.post(q, 2)
    marconi.post(other, 1)
    elsewhere, _ = claim(marconi, other)
    claim(marconi, q)
    with pytest.raises(ClaimDoesNotExist):
        marconi.messages.bulk_delete(q, posted, project=marconi.project, claim=elsewhere)
    assert counts(marconi, q)["total"] == 2


@pytest.mark.requires(Capability.CLAIMS)
def test_bulk_delete_under_a_live_claim_of_messages_it_no_longer_holds_is_silent(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2)
    mine, held = claim(marconi, q, limit=2)
    marconi.messages.bulk_delete(q, ids(held), project=marconi.project, claim=mine)
    marconi.messages.bulk_delete(q, ids(held), project=marconi.project, claim=mine)  # again: nothing left to delete
    assert counts(marconi, q)["total"] == 0


# -- pop -----------------------------------------------------------------------------------------------------------


@pytest.mark.requires(Capability.POP)
def test_pop_removes_and_returns_the_oldest_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 5, ttl=60)
    order = ids(listing(marconi, q)[0])
    popped = marconi.messages.pop(q, limit=2, project=marconi.project)
    assert ids(popped) == order[:2]
    assert [set(m) for m in popped] == [{"id", "ttl", "age", "body"}] * 2
    assert popped[0]["ttl"] == 60
    assert ids(drain(marconi, q)[0]) == order[2:]
    assert marconi.messages.bulk_get(q, order[:2], project=marconi.project) == []
    assert counts(marconi, q)["total"] == 3


@pytest.mark.requires(Capability.POP, Capability.FIFO)
def test_pop_follows_posting_order(marconi):
    q = marconi.new_queue()
    marconi.post(q, [0, 1])
    marconi.post(q, [2])
    assert bodies(marconi.messages.pop(q, limit=100, project=marconi.project)) == [0, 1, 2]


@pytest.mark.requires(Capability.POP)
def test_pop_limit_defaults_to_10(marconi):
    q = marconi.new_queue()
    marconi.post(q, 12)
    assert len(marconi.messages.pop(q, project=marconi.project)) == 10
    assert counts(marconi, q)["total"] == 2


@pytest.mark.requires(Capability.POP)
def test_pop_of_an_empty_queue_returns_nothing(marconi):
    q = marconi.new_queue()
    assert marconi.messages.pop(q, project=marconi.project) == []


@pytest.mark.requires(Capability.POP)
def test_pop_skips_expired_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["short"], ttl=5)
    long = marconi.post(q, ["long"], ttl=60)
    marconi.clock.advance(5)
    assert ids(marconi.messages.pop(q, project=marconi.project)) == long


@pytest.mark.requires(Capability.POP, Capability.CLAIMS)
def test_pop_skips_claimed_messages(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 4)
    claim_id, held = claim(marconi, q, limit=2)
    popped = marconi.messages.pop(q, project=marconi.project)
    assert sorted(ids(popped)) == sorted(set(posted) - set(ids(held)))
    assert sorted(ids(marconi.claims.get(q, claim_id, project=marconi.project)[1])) == sorted(ids(held))


@pytest.mark.requires(Capability.POP, Capability.CLAIMS)
def test_pop_takes_messages_whose_claim_expired(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 2)
    claim(marconi, q, ttl=10)
    marconi.clock.advance(10)
    assert sorted(ids(marconi.messages.pop(q, project=marconi.project))) == sorted(posted)


@pytest.mark.requires(Capability.POP, Capability.DELAY)
def test_pop_skips_delayed_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["later"], delay=30)
    now = marconi.post(q, ["now"])
    assert ids(marconi.messages.pop(q, project=marconi.project)) == now
    assert marconi.messages.pop(q, project=marconi.project) == []
    assert counts(marconi, q)["total"] == 1


@pytest.mark.requires(Capability.POP)
def test_pop_with_a_bad_limit_pops_nothing(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    before = snapshot(marconi)
    with pytest.raises(InvalidInput) as raised:
        marconi.messages.pop(q, limit=0, project=marconi.project)
    assert raised.value.field == "limit"
    assert snapshot(marconi) == before
