"""The state machine is worth something only if it fails: drivers with planted bugs must not pass it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from marconi.storage import ClaimTerms, ManualClock
from marconi.tests.conformance.test_state_machine import SETTINGS, make_machine
from marconi_drivers.memory import MemoryClaims, MemoryDriver, MemoryMessages


class ReversedBatches(MemoryDriver):
    """A planted bug: each batch is stored in reverse order."""

    def __init__(self, uri: str = "memory://", **options: Any) -> None:
        super().__init__(uri, **options)
        self._message_controller = ReversingMessages(self)


class ReversingMessages(MemoryMessages):
    def _post(self, queue: str, project: Any, messages: list[Any], client_uuid: str, now: float) -> list[str]:
        return list(reversed(super()._post(queue, project, list(reversed(messages)), client_uuid, now)))


class ClaimsWithoutGrace(MemoryDriver):
    """A planted bug: claims never extend their messages' lives."""

    def __init__(self, uri: str = "memory://", **options: Any) -> None:
        super().__init__(uri, **options)
        self._claim_controller = GracelessClaims(self)


class GracelessClaims(MemoryClaims):
    def _create(self, queue: str, project: Any, terms: Any, limit: int, now: float) -> Any:
        return super()._create(queue, project, ClaimTerms(ttl=terms.ttl, grace=0), limit, now)


@pytest.mark.parametrize("mutant", [ReversedBatches, ClaimsWithoutGrace])
def test_the_state_machine_catches_a_planted_bug(mutant: type[MemoryDriver]) -> None:
    """A driver that differs from the reference in one respect fails the comparison (not driver-parametrised)."""
    clock = ManualClock(1_700_000_000.0)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            make_machine(mutant(clock=clock), clock),
            settings=settings(
                SETTINGS,
                max_examples=500,
                database=None,
                derandomize=True,  # the same examples every run: found once, found always
                phases=[Phase.generate],
                report_multiple_bugs=False,
            ),
        )
