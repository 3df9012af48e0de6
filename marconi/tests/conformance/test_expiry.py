"""Time: message TTLs, claim leases and grace, gc(), delayed messages. CONTRACT.md guarantee 7, and guarantee 3
for delayed messages. The tests move the driver's clock; they never sleep.

A message is alive while ``created + ttl > now``; a claim is live while ``created + ttl > now`` (docs/design.md).
"""

from __future__ import annotations

import pytest

from marconi.storage import Capability, MessageDoesNotExist

from ._helpers import bodies, claim, claim_is_gone, claimed_ids, counts, drain, ids, listing, stats

# -- messages ------------------------------------------------------------------------------------------------------


def test_a_message_lives_until_its_ttl(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=10)[0]
    marconi.clock.advance(9)
    assert marconi.messages.get(q, message_id, project=marconi.project)["age"] == 9
    assert ids(listing(marconi, q)[0]) == [message_id]
    assert counts(marconi, q) == {"claimed": 0, "free": 1, "total": 1}


def test_a_message_vanishes_everywhere_at_its_ttl(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=10)[0]
    marconi.clock.advance(10)
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q, message_id, project=marconi.project)
    assert marconi.messages.bulk_get(q, [message_id], project=marconi.project) == []
    assert listing(marconi, q)[0] == []
    assert stats(marconi, q) == {"claimed": 0, "free": 0, "total": 0}


@pytest.mark.requires(Capability.CLAIMS)
def test_an_expired_message_cannot_be_claimed(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["x"], ttl=10)
    marconi.clock.advance(10)
    assert claim(marconi, q) == (None, [])


def test_messages_of_one_batch_expire_by_their_own_ttls(marconi):
    q = marconi.new_queue()
    batch = [{"ttl": 5, "body": "short"}, {"ttl": 20, "body": "long"}, {"ttl": 10, "body": "middle"}]
    marconi.messages.post(q, batch, marconi.client, project=marconi.project)
    marconi.clock.advance(5)
    assert sorted(bodies(drain(marconi, q)[0])) == ["long", "middle"]
    marconi.clock.advance(5)
    assert bodies(drain(marconi, q)[0]) == ["long"]
    marconi.clock.advance(10)
    assert drain(marconi, q)[0] == []


def test_an_observer_never_sees_an_expired_message(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["a"], ttl=60)
    _, marker = listing(marconi, q, limit=1)
    marconi.post(q, ["short"], ttl=5)
    last = marconi.post(q, ["b"], ttl=60)
    marconi.clock.advance(5)
    assert ids(drain(marconi, q, marker=marker)[0]) == last


# -- claims --------------------------------------------------------------------------------------------------------


@pytest.mark.requires(Capability.CLAIMS)
def test_a_claim_lives_until_its_ttl(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 2)
    claim_id, _ = claim(marconi, q, ttl=30)
    marconi.clock.advance(29)
    assert sorted(claimed_ids(marconi, q, claim_id)) == sorted(posted)
    assert claim(marconi, q) == (None, [])
    marconi.clock.advance(1)
    assert claim_is_gone(marconi, q, claim_id)
    assert counts(marconi, q) == {"claimed": 0, "free": 2, "total": 2}


@pytest.mark.requires(Capability.CLAIMS)
def test_a_claim_extends_a_messages_life_to_its_end_plus_grace(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=10)[0]
    claim(marconi, q, ttl=30, grace=20)
    assert marconi.messages.get(q, message_id, project=marconi.project)["ttl"] == 50
    marconi.clock.advance(30)
    found = marconi.messages.get(q, message_id, project=marconi.project)  # unclaimed now, still alive
    assert "claim_id" not in found
    marconi.clock.advance(19)
    assert marconi.messages.get(q, message_id, project=marconi.project)["age"] == 49
    marconi.clock.advance(1)
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q, message_id, project=marconi.project)


@pytest.mark.requires(Capability.CLAIMS)
def test_a_claim_never_shortens_a_messages_life(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=1000)[0]
    claim_id, _ = claim(marconi, q, ttl=10, grace=5)
    assert marconi.messages.get(q, message_id, project=marconi.project)["ttl"] == 1000
    marconi.claims.update(q, claim_id, {"ttl": 1, "grace": 0}, project=marconi.project)
    marconi.clock.advance(999)
    assert marconi.messages.get(q, message_id, project=marconi.project)["ttl"] == 1000


@pytest.mark.requires(Capability.CLAIMS)
def test_an_expired_claim_leaves_its_message_alive_until_the_grace_ends(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["x"], ttl=5)
    claim(marconi, q, ttl=10, grace=10)
    marconi.clock.advance(15)
    _, again = claim(marconi, q, ttl=60)
    assert bodies(again) == ["x"]


@pytest.mark.requires(Capability.CLAIMS)
def test_update_extends_message_lives_as_create_does(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=20)[0]
    claim_id, _ = claim(marconi, q, ttl=5)
    marconi.clock.advance(4)
    marconi.claims.update(q, claim_id, {"ttl": 30, "grace": 10}, project=marconi.project)
    assert marconi.messages.get(q, message_id, project=marconi.project)["ttl"] == 44
    marconi.clock.advance(39)
    assert marconi.messages.get(q, message_id, project=marconi.project)["age"] == 43
    marconi.clock.advance(1)
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q, message_id, project=marconi.project)


@pytest.mark.requires(Capability.CLAIMS)
def test_update_keeps_a_claim_alive_past_its_first_ttl(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 2)
    claim_id, _ = claim(marconi, q, ttl=10)
    for _ in range(5):
        marconi.clock.advance(8)
        marconi.claims.update(q, claim_id, {"ttl": 10}, project=marconi.project)
    assert sorted(claimed_ids(marconi, q, claim_id)) == sorted(posted)
    assert claim(marconi, q) == (None, [])


# -- gc ------------------------------------------------------------------------------------------------------------


@pytest.mark.requires(Capability.CLAIMS)
def test_gc_removes_expired_messages_and_claims_and_counts_them(marconi):
    q = marconi.new_queue()
    keep = marconi.post(q, ["keep0", "keep1"], ttl=1000)
    short = marconi.post(q, 3, ttl=10)
    expiring, _ = claim(marconi, q, ttl=5, limit=1)
    living, living_held = claim(marconi, q, ttl=500, limit=1)
    marconi.clock.advance(10)
    assert marconi.driver.gc() >= 4  # three messages and one claim, at least: gc is driver-wide
    assert claim_is_gone(marconi, q, expiring)
    assert claimed_ids(marconi, q, living) == ids(living_held)
    assert sorted(ids(drain(marconi, q, include_claimed=True)[0])) == sorted(keep)
    assert marconi.messages.bulk_get(q, short, project=marconi.project) == []
    assert counts(marconi, q) == {"claimed": 1, "free": 1, "total": 2}


def test_gc_removes_expired_messages_and_leaves_the_rest(marconi):
    q = marconi.new_queue()
    keep = marconi.post(q, ["keep"], ttl=1000)
    marconi.post(q, 3, ttl=10)
    marconi.clock.advance(10)
    removed = marconi.driver.gc()
    assert isinstance(removed, int)
    assert removed >= 3
    assert ids(drain(marconi, q)[0]) == keep
    assert counts(marconi, q) == {"claimed": 0, "free": 1, "total": 1}


def test_gc_with_nothing_expired_removes_nothing_of_ours(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, 3)
    assert marconi.driver.gc() >= 0
    assert sorted(ids(drain(marconi, q)[0])) == sorted(posted)
    assert counts(marconi, q)["total"] == 3


def test_gc_interval_is_a_positive_number_of_seconds(marconi):
    assert marconi.driver.gc_interval > 0


# -- delayed messages ----------------------------------------------------------------------------------------------


@pytest.mark.requires(Capability.DELAY)
def test_a_delayed_message_is_hidden_until_due_but_exists(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["later"], delay=30)[0]
    marconi.clock.advance(29)
    assert listing(marconi, q)[0] == []
    assert marconi.messages.get(q, message_id, project=marconi.project)["age"] == 29
    assert counts(marconi, q) == {"claimed": 0, "free": 0, "total": 1}
    marconi.clock.advance(1)
    assert ids(listing(marconi, q)[0]) == [message_id]
    assert counts(marconi, q) == {"claimed": 0, "free": 1, "total": 1}


@pytest.mark.requires(Capability.DELAY, Capability.CLAIMS)
def test_a_delayed_message_is_claimed_only_when_due(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["later"], delay=30)[0]
    assert claim(marconi, q) == (None, [])
    marconi.clock.advance(30)
    assert ids(claim(marconi, q)[1]) == [message_id]


@pytest.mark.requires(Capability.DELAY)
def test_a_delayed_messages_ttl_counts_from_posting(marconi):
    q = marconi.new_queue()
    message_id = marconi.post(q, ["x"], ttl=20, delay=10)[0]
    marconi.clock.advance(19)
    assert ids(listing(marconi, q)[0]) == [message_id]
    marconi.clock.advance(1)
    assert listing(marconi, q)[0] == []
    assert counts(marconi, q)["total"] == 0


@pytest.mark.requires(Capability.DELAY)
def test_a_message_expiring_before_it_is_due_is_never_seen(marconi):
    q = marconi.new_queue()
    marconi.post(q, ["x"], ttl=5, delay=10)
    _, marker = listing(marconi, q)
    marconi.clock.advance(10)
    assert listing(marconi, q, marker=marker)[0] == []
    assert stats(marconi, q) == {"claimed": 0, "free": 0, "total": 0}


@pytest.mark.requires(Capability.DELAY, Capability.FIFO)
def test_a_due_message_comes_after_everything_already_visible(marconi):
    q = marconi.new_queue()
    delayed = marconi.post(q, ["delayed"], delay=10)
    visible = marconi.post(q, ["a", "b"])
    marconi.clock.advance(10)
    assert ids(drain(marconi, q)[0]) == visible + delayed


@pytest.mark.requires(Capability.DELAY)
def test_an_observer_past_the_end_sees_a_due_message_once(marconi):
    q = marconi.new_queue()
    delayed = marconi.post(q, ["delayed"], delay=10)
    marconi.post(q, ["a", "b"])
    _, marker = drain(marconi, q)
    marconi.clock.advance(10)
    seen, marker = drain(marconi, q, marker=marker)
    assert ids(seen) == delayed
    assert drain(marconi, q, marker=marker)[0] == []


@pytest.mark.requires(Capability.DELAY)
def test_an_observer_sees_due_messages_between_later_posts_once(marconi):
    q = marconi.new_queue()
    delayed = marconi.post(q, ["d"], delay=10)
    _, marker = drain(marconi, q)
    seen = []
    for n in range(4):
        marconi.post(q, [n])
        marconi.clock.advance(5)
        page, marker = drain(marconi, q, marker=marker, limit=1)
        seen += page
    assert sorted(bodies(seen), key=str) == [0, 1, 2, 3, "d"]
    assert delayed[0] in ids(seen)


@pytest.mark.requires(Capability.DELAY)
def test_due_messages_take_markers_in_order_of_due_time(marconi):
    q = marconi.new_queue()
    late = marconi.post(q, ["late"], delay=20)
    early = marconi.post(q, ["early"], delay=10)
    marconi.clock.advance(20)
    assert ids(drain(marconi, q)[0]) == early + late


@pytest.mark.requires(Capability.DELAY)
def test_a_delay_of_zero_is_immediate(marconi):
    q = marconi.new_queue()
    posted = marconi.post(q, ["now"], delay=0)
    assert ids(listing(marconi, q)[0]) == posted


@pytest.mark.requires(Capability.DELAY)
def test_a_message_made_due_by_gc_is_seen_after_the_observers_marker(marconi):
    q = marconi.new_queue()
    delayed = marconi.post(q, ["d"], delay=10)
    _, marker = drain(marconi, q)
    marconi.clock.advance(10)
    marconi.driver.gc()
    later = marconi.post(q, ["after gc"])
    seen, _ = drain(marconi, q, marker=marker)
    assert sorted(ids(seen)) == sorted(delayed + later)
    assert ids(seen)[0] == delayed[0]
