"""Options. CONTRACT.md, "Loading": every driver takes the core options (clock, limits, gc_interval,
conflict_timeout) and its own; ``load`` checks each before the driver uses it. A bad or unknown option is
``InvalidInput`` naming it, never a TypeError, AttributeError or a driver half set up."""

from __future__ import annotations

import math
import uuid

import pytest

from marconi.storage import InvalidInput, Limits, ManualClock, load
from marconi.storage.loading import driver_class, scheme_of


class NoNow:
    """Looks like a clock to nobody: it has no now()."""


BAD_DURATIONS = [0, -1, math.inf, -math.inf, math.nan, 10**400, 1e300, "5", None, True, [5]]


def assert_refused(uri: str, option: str, value: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        load(uri, **{option: value}).close()
    assert raised.value.field == option, raised.value
    assert option in str(raised.value)


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=repr)
@pytest.mark.parametrize("option", ["gc_interval", "conflict_timeout"])
def test_a_duration_option_must_be_a_finite_positive_number_of_seconds(marconi_uri, option, value):
    assert_refused(marconi_uri, option, value)


@pytest.mark.parametrize("value", [NoNow(), "now", 1_700_000_000, ManualClock], ids=repr)
def test_a_clock_must_have_a_now_method(marconi_uri, value):
    assert_refused(marconi_uri, "clock", value)


@pytest.mark.parametrize("value", [{"max_message_ttl": 60}, 60, "Limits()", Limits], ids=repr)
def test_limits_must_be_a_limits(marconi_uri, value):
    assert_refused(marconi_uri, "limits", value)


@pytest.mark.parametrize("name", ["colour", "clok", "conflict_timout", "CLOCK"])
def test_an_unknown_option_is_refused_naming_it(marconi_uri, name):
    assert_refused(marconi_uri, name, 1)


def test_the_core_options_are_taken_by_every_driver(marconi_uri):
    clock = ManualClock(1_000.0)
    with load(marconi_uri, clock=clock, limits=Limits(max_message_ttl=90), gc_interval=0.5, conflict_timeout=3) as d:
        assert d.clock is clock
        assert d.limits.max_message_ttl == 90
        assert d.gc_interval == 0.5
        assert d.conflict_timeout == 3


def test_the_prefix_option_keeps_two_sets_of_data_apart(marconi_uri):
    """Tools that share a store with others (a verifier beside a service) need their data apart: a driver whose
    instances share one store names an option for it (``PREFIX_OPTION``); one whose instances never share one
    (in-memory stores) needs none. Either way two such drivers on one URI never see each other's queues."""
    cls = driver_class(scheme_of(marconi_uri))
    option = cls.PREFIX_OPTION
    first, second = ({option: "marconi_pa_"}, {option: "marconi_pb_"}) if option else ({}, {})
    assert option is None or option in cls.OPTIONS
    project = f"prefix-{uuid.uuid4().hex[:8]}"
    with load(marconi_uri, **first) as a, load(marconi_uri, **second) as b:
        a.queue_controller.upsert("only-in-a", {}, project=project)
        try:
            assert [q["name"] for q in a.queue_controller.list(project=project).items] == ["only-in-a"]
            assert b.queue_controller.list(project=project).items == []
        finally:
            a.queue_controller.delete("only-in-a", project=project)
