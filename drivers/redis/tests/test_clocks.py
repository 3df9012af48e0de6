"""Clients whose clocks disagree share one queue: each judges leases by its own clock, and no message is lost
from the indexes claims take from."""

from __future__ import annotations

import pytest

from marconi.storage import ManualClock

from .conftest import open_driver, post

pytestmark = pytest.mark.driver("redis")


def test_a_claim_given_back_early_by_a_clock_ahead_is_still_claimable_later(driver, redis_uri, project, clock):
    """A client 100 s ahead sees a 60 s claim as expired and gives its message back; to a client on time the claim
    still holds it, so it is not claimable until the lease ends, and then it is."""
    driver.queue_controller.upsert("q", {}, project=project)
    posted = post(driver, "q", project, 1, ttl=3600)
    claim_id, _ = driver.claim_controller.create("q", {"ttl": 60}, project=project)
    with open_driver(redis_uri, clock=ManualClock(clock.now() + 100)) as ahead:
        assert [m["id"] for m in ahead.message_controller.list("q", project=project).items] == posted
    clock.advance(1)
    assert driver.claim_controller.create("q", {"ttl": 60}, project=project) == (None, [])
    assert driver.claim_controller.get("q", claim_id, project=project)[0]["id"] == claim_id
    clock.advance(60)
    taken = driver.claim_controller.create("q", {"ttl": 60}, project=project)[1]
    assert [m["id"] for m in taken] == posted
