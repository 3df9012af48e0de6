"""The state machine is worth something only if it fails: drivers with planted bugs must not pass it."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from marconi.storage import ManualClock
from marconi.tests.conformance.test_state_machine import SETTINGS, make_machine
from marconi.tests.mutants import ClaimsWithoutGrace, RepeatingPage, ReversedBatches
from marconi_drivers.memory import MemoryDriver


@pytest.mark.parametrize("mutant", [ReversedBatches, ClaimsWithoutGrace, RepeatingPage])
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
