"""Claims: create, get, update, delete. CONTRACT.md, "Claims" and guarantee 4 (claims are exclusive)."""

from __future__ import annotations

import pytest

from marconi.storage import Capability, ClaimDoesNotExist

from ._helpers import claim, claim_is_gone, claimed_ids, counts, drain, ids, listing, unissued_claim_id

pytestmark = pytest.mark.requires(Capability.CLAIMS)


def marker_order(marconi, q):
    """Every visible message id in marker order (the order claims hand them out)."""
    return ids(drain(marconi, q, limit=100, include_claimed=True)[0])


# -- create --------------------------------------------------------------------------------------------------------


def test_create_returns_a_claim_id_and_the_oldest_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 5)
    order = marker_order(marconi, q)
    claim_id, held = claim(marconi, q, limit=3)
    assert isinstance(claim_id, str)
    assert ids(held) == order[:3]


def test_created_messages_carry_id_ttl_age_body_and_claim_id(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, [{"k": "v"}], ttl=600)[0]
    marconi.clock.advance(4)
    claim_id, held = claim(marconi, q, ttl=30)
    assert held == [{"id": message_id, "ttl": 600, "age": 4, "body": {"k": "v"}, "claim_id": claim_id}]


@pytest.mark.requires(Capability.FIFO)
def test_claims_follow_posting_order_across_batches(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, [0, 1]) + marconi.post(q, [2]) + marconi.post(q, [3, 4])
    _, first = claim(marconi, q, limit=3)
    _, second = claim(marconi, q, limit=3)
    assert ids(first) + ids(second) == posted


def test_create_limit_defaults_to_10(marconi):
    q = marconi.new_queue()
    marconi.post(q, 12)
    _, held = marconi.claims.create(q, {"ttl": 60}, project=marconi.project)
    assert len(held) == 10


def test_create_returns_fewer_than_limit_when_fewer_are_eligible(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 3)
    _, held = claim(marconi, q, limit=100)
    assert sorted(ids(held)) == sorted(posted)


def test_grace_may_be_omitted(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1, ttl=10)
    claim_id, held = marconi.claims.create(q, {"ttl": 30}, project=marconi.project)
    assert claim_id is not None
    assert held[0]["ttl"] == 30  # extended to the claim's end, plus a grace of 0


def test_create_on_an_empty_queue_returns_none_and_nothing(marconi):
    q = marconi.new_queue()
    assert claim(marconi, q) == (None, [])


def test_create_when_everything_is_claimed_returns_none_and_nothing(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2)
    claim(marconi, q)
    assert claim(marconi, q) == (None, [])


def test_create_when_everything_expired_returns_none_and_nothing(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2, ttl=5)
    marconi.clock.advance(5)
    assert claim(marconi, q) == (None, [])


@pytest.mark.requires(Capability.DELAY)
def test_create_when_everything_is_delayed_returns_none_and_nothing(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2, delay=30)
    assert claim(marconi, q) == (None, [])


@pytest.mark.requires(Capability.DELAY)
def test_create_skips_delayed_messages(marconi):
    q = marconi.new_queue()
    first = marconi.post(q, ["now"])
    marconi.post(q, ["later"], delay=30)
    last = marconi.post(q, ["now too"])
    _, held = claim(marconi, q)
    assert sorted(ids(held)) == sorted(first + last)


def test_a_second_claim_never_takes_messages_held_by_the_first(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 5)
    _, first = claim(marconi, q, limit=2)
    _, second = claim(marconi, q, limit=10)
    assert set(ids(first)).isdisjoint(ids(second))
    assert sorted(ids(first) + ids(second)) == sorted(posted)


def test_claims_skip_messages_held_by_live_claims_of_mixed_ttls(marconi):
    """Trap: after the first eligible message, claiming the next ones without checking steals held messages."""
    q = marconi.new_queue()
    marconi.post(q, 6)
    order = marker_order(marconi, q)
    _, short = claim(marconi, q, ttl=10, limit=2)
    _, long = claim(marconi, q, ttl=100, limit=2)
    marconi.clock.advance(10)
    _, third = claim(marconi, q, limit=10)
    assert ids(third) == [i for i in order if i not in ids(long)]
    assert set(ids(short)) <= set(ids(third))


def test_claims_skip_live_claims_behind_a_released_one(marconi):
    q = marconi.new_queue()
    marconi.post(q, 7)
    order = marker_order(marconi, q)
    _, _first = claim(marconi, q, limit=2)
    middle_id, middle = claim(marconi, q, limit=2)
    _, _last = claim(marconi, q, limit=2)
    marconi.claims.delete(q, middle_id, project=marconi.project)
    _, again = claim(marconi, q, limit=10)
    assert ids(again) == ids(middle) + order[6:]


def test_claim_ids_are_unique(marconi):
    q = marconi.new_queue()
    marconi.post(q, 20)
    claim_ids = [claim(marconi, q, limit=1)[0] for _ in range(20)]
    assert None not in claim_ids
    assert len(set(claim_ids)) == 20


def test_claims_belong_to_their_queue(marconi):
    q1, q2 = marconi.new_queue(), marconi.new_queue()
    marconi.post(q1, 2)
    marconi.post(q2, 2)
    claim_id, held = claim(marconi, q1)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.get(q2, claim_id, project=marconi.project)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.update(q2, claim_id, {"ttl": 60}, project=marconi.project)
    marconi.claims.delete(q2, claim_id, project=marconi.project)
    assert claimed_ids(marconi, q1, claim_id) == ids(held)
    assert counts(marconi, q2) == {"claimed": 0, "free": 2, "total": 2}


# -- get -----------------------------------------------------------------------------------------------------------


def test_get_returns_the_claim_and_its_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim_id, held = claim(marconi, q, ttl=40, limit=2)
    marconi.clock.advance(6)
    info, messages = marconi.claims.get(q, claim_id, project=marconi.project)
    assert info == {"id": claim_id, "ttl": 40, "age": 6}
    assert ids(messages) == ids(held)
    assert all(message["claim_id"] == claim_id and message["age"] == 6 for message in messages)


def test_get_leaves_out_messages_deleted_under_the_claim(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim_id, held = claim(marconi, q)
    marconi.messages.delete(q, held[1]["id"], project=marconi.project, claim=claim_id)
    assert claimed_ids(marconi, q, claim_id) == [held[0]["id"], held[2]["id"]]


@pytest.mark.parametrize("claim_id", ["", "garbage", "0" * 32, "f" * 33, "' OR '1'='1"])
def test_get_of_a_malformed_or_unknown_claim_raises_claim_does_not_exist(marconi, claim_id):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim(marconi, q)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.get(q, claim_id, project=marconi.project)


def test_get_of_a_claim_id_in_another_case_raises_claim_does_not_exist(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q)
    assert claim_id is not None
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.get(q, claim_id.upper(), project=marconi.project)


def test_get_of_an_expired_claim_raises_claim_does_not_exist(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q, ttl=10)
    marconi.clock.advance(9)
    assert marconi.claims.get(q, claim_id, project=marconi.project)[0]["age"] == 9
    marconi.clock.advance(1)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.get(q, claim_id, project=marconi.project)


# -- update --------------------------------------------------------------------------------------------------------


def test_update_renews_the_lease_from_now(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q, ttl=10)
    marconi.clock.advance(8)
    marconi.claims.update(q, claim_id, {"ttl": 10}, project=marconi.project)
    marconi.clock.advance(9)
    assert marconi.claims.get(q, claim_id, project=marconi.project)[0] == {"id": claim_id, "ttl": 10, "age": 17}
    assert claim(marconi, q) == (None, [])
    marconi.clock.advance(1)
    assert claim_is_gone(marconi, q, claim_id)


def test_update_reports_the_new_ttl_and_keeps_counting_age_from_creation(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q, ttl=10)
    marconi.clock.advance(3)
    marconi.claims.update(q, claim_id, {"ttl": 50, "grace": 5}, project=marconi.project)
    assert marconi.claims.get(q, claim_id, project=marconi.project)[0] == {"id": claim_id, "ttl": 50, "age": 3}


def test_update_may_shorten_the_lease(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q, ttl=100)
    marconi.claims.update(q, claim_id, {"ttl": 5}, project=marconi.project)
    marconi.clock.advance(5)
    assert claim_is_gone(marconi, q, claim_id)


def test_update_keeps_the_claims_messages_and_state(marconi):
    """Trap: an update that rewrites the claim's state (its messages, their order, what was deleted)."""
    q = marconi.new_queue()
    marconi.post(q, 5)
    claim_id, held = claim(marconi, q, limit=3)
    marconi.messages.delete(q, held[0]["id"], project=marconi.project, claim=claim_id)
    marconi.claims.update(q, claim_id, {"ttl": 120, "grace": 10}, project=marconi.project)
    assert claimed_ids(marconi, q, claim_id) == ids(held)[1:]
    assert counts(marconi, q) == {"claimed": 2, "free": 2, "total": 4}
    _, other = claim(marconi, q)
    assert set(ids(other)).isdisjoint(ids(held))


def test_update_of_an_expired_claim_raises_and_does_not_revive_it(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 2)
    claim_id, _ = claim(marconi, q, ttl=10)
    marconi.clock.advance(10)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.update(q, claim_id, {"ttl": 60}, project=marconi.project)
    assert claim_is_gone(marconi, q, claim_id)
    assert sorted(ids(claim(marconi, q)[1])) == sorted(posted)


@pytest.mark.parametrize("claim_id", ["", "garbage", "0" * 32, "' OR '1'='1"])
def test_update_of_a_malformed_or_unknown_claim_raises_claim_does_not_exist(marconi, claim_id):
    q = marconi.new_queue()
    marconi.post(q, 1)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.update(q, claim_id, {"ttl": 60}, project=marconi.project)


def test_update_of_a_deleted_claim_raises_claim_does_not_exist(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q)
    marconi.claims.delete(q, claim_id, project=marconi.project)
    with pytest.raises(ClaimDoesNotExist):
        marconi.claims.update(q, claim_id, {"ttl": 60}, project=marconi.project)
    assert counts(marconi, q) == {"claimed": 0, "free": 1, "total": 1}


# -- delete --------------------------------------------------------------------------------------------------------


def test_delete_releases_the_messages_at_once(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim_id, held = claim(marconi, q, ttl=300)
    marconi.claims.delete(q, claim_id, project=marconi.project)
    assert claim_is_gone(marconi, q, claim_id)
    assert counts(marconi, q) == {"claimed": 0, "free": 3, "total": 3}
    assert ids(listing(marconi, q)[0]) == ids(held)
    assert all("claim_id" not in message for message in listing(marconi, q)[0])
    new_id, again = claim(marconi, q)
    assert new_id != claim_id
    assert ids(again) == ids(held)


def test_delete_is_idempotent(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    claim_id, _ = claim(marconi, q)
    marconi.claims.delete(q, claim_id, project=marconi.project)
    marconi.claims.delete(q, claim_id, project=marconi.project)
    assert claim_is_gone(marconi, q, claim_id)


@pytest.mark.parametrize("claim_id", ["", "garbage", "0" * 32, "' OR '1'='1"])
def test_delete_of_a_malformed_or_unknown_claim_does_nothing(marconi, claim_id):
    q = marconi.new_queue()
    marconi.post(q, 2)
    live, held = claim(marconi, q, limit=1)
    marconi.claims.delete(q, claim_id, project=marconi.project)
    assert claimed_ids(marconi, q, live) == ids(held)
    assert counts(marconi, q) == {"claimed": 1, "free": 1, "total": 2}


def test_delete_releases_only_its_own_messages(marconi):
    q = marconi.new_queue()
    marconi.post(q, 4)
    first, _ = claim(marconi, q, limit=2)
    second, held = claim(marconi, q, limit=2)
    marconi.claims.delete(q, first, project=marconi.project)
    assert claimed_ids(marconi, q, second) == ids(held)
    assert counts(marconi, q) == {"claimed": 2, "free": 2, "total": 4}


def test_an_unissued_claim_id_holds_nothing(marconi):
    q = marconi.new_queue()
    marconi.post(q, 1)
    assert claim_is_gone(marconi, q, unissued_claim_id())


# -- expiry of a claim ---------------------------------------------------------------------------------------------


def test_an_expired_claims_messages_are_eligible_again(marconi):
    q = marconi.new_queue()
    marconi.post(q, 3)
    claim_id, held = claim(marconi, q, ttl=10)
    marconi.clock.advance(10)
    assert claim_is_gone(marconi, q, claim_id)
    assert counts(marconi, q) == {"claimed": 0, "free": 3, "total": 3}
    assert ids(listing(marconi, q)[0]) == ids(held)
    again_id, again = claim(marconi, q)
    assert again_id != claim_id
    assert ids(again) == ids(held)
    assert all(message["claim_id"] == again_id for message in again)
