"""A claim or pop whose first pick a competing consumer takes picks again from what is left: it never comes back
short, or empty, while eligible messages wait.

The race is forced at a known point, not left to timing: right after this driver has picked the oldest messages
and before its guarded writes, a second driver (its own connections, the same server) claims or pops exactly
those. Before picks were repeated, the first consumer came back empty here, and ``marconi verify`` reported the
messages behind as never claimed although claims came back empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from marconi.storage import ManualClock

from .conftest import open_driver, post

if TYPE_CHECKING:
    from .. import MongoDriver

pytestmark = pytest.mark.driver("mongodb")

QUEUE = "raced"


@pytest.fixture
def rival(mongo_uri: str, clock: ManualClock) -> Iterator[MongoDriver]:
    with open_driver(mongo_uri, clock=clock) as opened:
        yield opened


def race_after_first_pick(monkeypatch: pytest.MonkeyPatch, driver: MongoDriver, step: Callable[[], Any]) -> list[Any]:
    """Run ``step`` once, between ``driver``'s first pick and its writes; returns what ``step`` returned."""
    store = driver.store
    done: list[Any] = []
    pick = store.eligible

    def eligible(*args: Any) -> Any:
        picked = pick(*args)
        if not done:
            done.append(step())
        return picked

    monkeypatch.setattr(store, "eligible", eligible)
    return done


def test_a_claim_whose_pick_another_claim_took_takes_the_next_ones(
    driver: MongoDriver, rival: MongoDriver, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.queue_controller.upsert(QUEUE, {}, project=project)
    ids = post(driver, QUEUE, project, [f"m{i}" for i in range(6)])
    raced = race_after_first_pick(
        monkeypatch, driver, lambda: rival.claim_controller.create(QUEUE, {"ttl": 60}, project=project, limit=3)
    )
    claim_id, held = driver.claim_controller.create(QUEUE, {"ttl": 60}, project=project, limit=3)
    rival_claim, rival_held = raced[0]
    assert [message["id"] for message in rival_held] == ids[:3]
    assert claim_id is not None and claim_id != rival_claim
    assert [message["id"] for message in held] == ids[3:]
    _info, read_back = driver.claim_controller.get(QUEUE, claim_id, project=project)
    assert [message["id"] for message in read_back] == ids[3:]


def test_a_pop_whose_pick_another_pop_took_pops_the_next_ones(
    driver: MongoDriver, rival: MongoDriver, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.queue_controller.upsert(QUEUE, {}, project=project)
    ids = post(driver, QUEUE, project, [f"m{i}" for i in range(6)])
    raced = race_after_first_pick(monkeypatch, driver, lambda: rival.message_controller.pop(QUEUE, 3, project=project))
    popped = driver.message_controller.pop(QUEUE, 3, project=project)
    assert [message["id"] for message in raced[0]] == ids[:3]
    assert [message["id"] for message in popped] == ids[3:]
    assert driver.message_controller.list(QUEUE, project=project).items == []
