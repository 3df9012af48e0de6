"""The driver under test, step by step, against the reference memory driver: every answer must agree.

A Hypothesis state machine makes random sequences of calls (queues created, deleted and created again, batches
posted with and without delays, observers paging with their markers, gets, deletes with and without claim ids,
claims created, read, renewed and released, pops, stats, gc, and the clock moving on) and makes each call on
both drivers, which share one ManualClock. Results are compared after mapping the opaque values between the two
drivers (message ids and claim ids by the order they were issued in; markers are never compared, only followed,
each driver its own); a call that raises must raise the same error class on both.

Each example works in a project of its own, deleted afterwards. ``gc()`` counts are not compared: on a shared
backend they include other projects' expired messages.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from marconi.storage import DriverBase, ManualClock, load

QUEUES = ("alpha", "beta")
OBSERVERS = (0, 1)
CLIENTS = ("5b6c1b2e-9a1f-4c53-8d43-000000000001", "5b6c1b2e-9a1f-4c53-8d43-000000000002")
MALFORMED_ID = "not-an-id"
UNISSUED_CLAIM = "f" * 32  # well formed, never issued (claim ids are uuid4 hex)
REF, SUT = 0, 1  # the two sides of every comparison: the reference memory driver, the driver under test

names = st.sampled_from(QUEUES)
limits = st.integers(min_value=1, max_value=6)
picks = st.integers(min_value=0, max_value=10_000)  # an index into a list of known things, modulo its length
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
message_ttls = st.sampled_from([1, 2, 5, 30, 120, 600, 3600])
claim_ttls = st.sampled_from([1, 2, 5, 30, 120])
graces = st.sampled_from([0, 0, 1, 5, 60])
delays = st.sampled_from([0, 0, 0, 1, 2, 5, 30])
advances = st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 61.0])  # exact binary fractions: no float drift

SETTINGS = settings(
    max_examples=int(os.environ.get("MARCONI_STATE_MACHINE_EXAMPLES", "30")),  # raise it for a longer hunt
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Outcome:
    """What one call did: returned ``value`` or raised ``error``."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        try:
            self.value = call()
        except Exception as error:
            self.error = error

    def __repr__(self) -> str:
        return f"raised {type(self.error).__name__}: {self.error}" if self.error else f"returned {self.value!r}"


def make_machine(driver: DriverBase, clock: ManualClock) -> type[RuleBasedStateMachine]:
    capabilities = driver.capabilities

    class DriverAgainstReference(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            if clock.now() != math.floor(clock.now()):
                clock.set(math.ceil(clock.now()))  # whole seconds, so every later time is exact in binary
            self.project = f"state-machine-{uuid.uuid4().hex[:12]}"
            self.ref = load("memory://", clock=clock)
            self.sut = driver
            self.ids: dict[str, str] = {}  # driver message id -> reference message id
            self.claim_ids: dict[str, str] = {}  # driver claim id -> reference claim id
            self.messages: list[tuple[str, str]] = []  # (reference id, driver id), every one ever posted
            self.claims: list[tuple[str, str]] = []  # (reference claim id, driver claim id)
            self.markers: dict[tuple[str, int], tuple[str | None, str | None]] = {}
            self.posted = 0

        def teardown(self) -> None:
            for name in QUEUES:
                self.sut.queue_controller.delete(name, project=self.project)
            self.ref.close()

        # --- comparing ---------------------------------------------------------------------------------------

        def both(self, action: str, call: Callable[[DriverBase, int], Any]) -> tuple[Any, Any] | None:
            """Make the call on both drivers, the reference as side 0 and the driver as side 1.

            The two results, or None when both raised an error of the same class.
            """
            expected = Outcome(lambda: call(self.ref, REF))
            got = Outcome(lambda: call(self.sut, SUT))
            if expected.error is not None or got.error is not None:
                assert type(got.error) is type(expected.error), f"{action}: the reference {expected}; the driver {got}"
                return None
            return expected.value, got.value

        def mapped(self, message: dict[str, Any]) -> dict[str, Any]:
            """A driver's message dict with its ids replaced by the reference's."""
            translated = dict(message)
            translated["id"] = self.ids.get(message["id"], f"<id unknown to the reference: {message['id']}>")
            if "claim_id" in message:
                translated["claim_id"] = self.claim_ids.get(message["claim_id"], f"<claim {message['claim_id']}>")
            return translated

        def same_messages(self, action: str, expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> None:
            assert [self.mapped(m) for m in got] == list(expected), (
                f"{action}: the reference returned {list(expected)}; the driver {[self.mapped(m) for m in got]}"
            )

        def message(self, pick: int, malformed: bool = False) -> tuple[str, str]:
            if malformed or not self.messages:
                return MALFORMED_ID, MALFORMED_ID
            return self.messages[pick % len(self.messages)]

        def claim(self, pick: int) -> tuple[str, str]:
            if not self.claims:
                return UNISSUED_CLAIM, UNISSUED_CLAIM
            return self.claims[pick % len(self.claims)]

        # --- queues ------------------------------------------------------------------------------------------

        @initialize()
        def create_queues(self) -> None:
            """Start with every queue there, so most steps act on messages; rules delete and re-create them."""
            for name in QUEUES:
                self.upsert_queue(name, {})
                self.post(name, [(600, 0, None), (30, 0, "x"), (5, 0, [])], CLIENTS[0], invalid=1)

        @rule(name=names, metadata=st.sampled_from([{}, {"ttl": 30}, {"nested": {"a": [1, "two", None]}}]))
        def upsert_queue(self, name: str, metadata: dict[str, Any]) -> None:
            results = self.both(
                f"upsert({name!r})", lambda d, side: d.queue_controller.upsert(name, metadata, project=self.project)
            )
            assert results is not None and results[0] == results[1], f"upsert({name!r}) returned {results}"

        @rule(name=names)
        def delete_queue(self, name: str) -> None:
            self.both(f"delete queue {name!r}", lambda d, side: d.queue_controller.delete(name, project=self.project))

        @rule(name=names)
        def get_queue(self, name: str) -> None:
            results = self.both(
                f"get queue {name!r}", lambda d, side: d.queue_controller.get(name, project=self.project)
            )
            assert results is None or results[0] == results[1], f"get queue {name!r}: {results}"

        @rule(marker=st.none() | names, limit=limits, detailed=st.booleans())
        def list_queues(self, marker: str | None, limit: int, detailed: bool) -> None:
            def listing(d: DriverBase, side: int) -> tuple[list[Any], str | None]:
                page = d.queue_controller.list(project=self.project, marker=marker, limit=limit, detailed=detailed)
                return list(page.items), page.marker

            results = self.both(f"list queues after {marker!r}", listing)
            assert results is not None and results[0] == results[1], f"list queues: {results}"

        @rule(name=names)
        def stats(self, name: str) -> None:
            results = self.both(f"stats {name!r}", lambda d, side: d.queue_controller.stats(name, project=self.project))
            if results is None:
                return
            expected, got = results
            for end in ("oldest", "newest"):
                if end in got["messages"]:
                    sut_id = got["messages"][end]["id"]
                    got["messages"][end]["id"] = self.ids.get(sut_id, f"<unknown {sut_id}>")
            assert got == expected, f"stats {name!r}: the reference {expected}; the driver {got}"

        # --- messages ----------------------------------------------------------------------------------------

        @rule(
            name=names,
            batch=st.lists(st.tuples(message_ttls, delays, json_values), min_size=1, max_size=4),
            client=st.sampled_from(CLIENTS),
            invalid=st.integers(min_value=0, max_value=9),
        )
        def post(self, name: str, batch: list[tuple[int, int, Any]], client: str, invalid: int) -> None:
            messages = []
            for ttl, delay, value in batch:
                self.posted += 1
                message: dict[str, Any] = {"ttl": ttl, "body": {"n": self.posted, "v": value}}
                if delay and "delay" in capabilities:
                    message["delay"] = delay
                messages.append(message)
            if invalid == 0:  # now and then, one bad message must refuse the whole batch on both
                messages[-1]["ttl"] = 0
            results = self.both(
                f"post {messages} to {name!r}",
                lambda d, side: d.message_controller.post(name, messages, client, project=self.project),
            )
            if results is None:
                return
            expected, got = results
            assert len(expected) == len(got) == len(messages), f"post returned {results}"
            assert len(set(got)) == len(got) and not set(got) & self.ids.keys(), f"the driver reused ids: {got}"
            for ref_id, sut_id in zip(expected, got, strict=True):
                self.ids[sut_id] = ref_id
                self.messages.append((ref_id, sut_id))

        @rule(name=names, ttl=message_ttls, delay=delays, client=st.sampled_from(CLIENTS))
        def post_one(self, name: str, ttl: int, delay: int, client: str) -> None:
            """A single message (posting is most of what a queue sees, so it gets two rules)."""
            self.post(name, [(ttl, delay, "one")], client, invalid=1)

        @rule(
            name=names,
            observer=st.sampled_from(OBSERVERS),
            limit=limits,
            echo=st.booleans(),
            client=st.sampled_from((None, *CLIENTS)),
            include_claimed=st.booleans(),
            restart=st.integers(min_value=0, max_value=3),
        )
        def list_page(
            self,
            name: str,
            observer: int,
            limit: int,
            echo: bool,
            client: str | None,
            include_claimed: bool,
            restart: int,
        ) -> None:
            """The observer asks for its next page, following each driver's own markers (now and then restarting)."""
            ref_marker, sut_marker = self.markers.get((name, observer), (None, None))
            if restart == 0:
                ref_marker, sut_marker = None, None
            markers = (ref_marker, sut_marker)

            def listing(d: DriverBase, side: int) -> tuple[list[Any], str | None]:
                page = d.message_controller.list(
                    name,
                    project=self.project,
                    marker=markers[side],
                    limit=limit,
                    echo=echo,
                    client_uuid=client,
                    include_claimed=include_claimed,
                )
                return list(page.items), page.marker

            action = f"list {name!r} (observer {observer}, limit={limit}, echo={echo}, client={client}, "
            action += f"include_claimed={include_claimed})"
            results = self.both(action, listing)
            if results is None:
                return
            (expected, ref_next), (got, sut_next) = results
            self.same_messages(action, expected, got)
            assert isinstance(sut_next, str), f"{action}: the driver's marker is {sut_next!r}"
            self.markers[(name, observer)] = (ref_next, sut_next)

        @rule(name=names, limit=limits)
        def list_with_a_malformed_marker(self, name: str, limit: int) -> None:
            self.both(
                f"list {name!r} after a malformed marker",
                lambda d, side: d.message_controller.list(name, project=self.project, marker="x.y", limit=limit),
            )

        @rule(name=names, pick=picks, malformed=st.integers(min_value=0, max_value=9))
        def get_message(self, name: str, pick: int, malformed: int) -> None:
            ids = self.message(pick, malformed == 0)
            action = f"get {ids[REF]} (driver {ids[SUT]}) from {name!r}"
            results = self.both(action, lambda d, side: d.message_controller.get(name, ids[side], project=self.project))
            if results is not None:
                self.same_messages(action, [results[0]], [results[1]])

        @rule(name=names, chosen=st.lists(picks, max_size=5), malformed=st.booleans())
        def bulk_get(self, name: str, chosen: list[int], malformed: bool) -> None:
            pairs = [self.message(pick) for pick in chosen] + ([(MALFORMED_ID, MALFORMED_ID)] if malformed else [])
            ids = ([r for r, _ in pairs], [s for _, s in pairs])
            action = f"bulk_get {ids[REF]} from {name!r}"
            results = self.both(
                action, lambda d, side: d.message_controller.bulk_get(name, ids[side], project=self.project)
            )
            if results is not None:
                self.same_messages(action, *results)

        @rule(
            name=names,
            pick=picks,
            claim_pick=picks,
            how=st.sampled_from(["no claim", "a claim", "unissued claim", "malformed claim"]),
        )
        def delete_message(self, name: str, pick: int, claim_pick: int, how: str) -> None:
            ref_id, sut_id = self.message(pick)
            ref_claim, sut_claim = {
                "no claim": (None, None),
                "a claim": self.claim(claim_pick),
                "unissued claim": (UNISSUED_CLAIM, UNISSUED_CLAIM),
                "malformed claim": ("nope", "nope"),
            }[how]
            args = ((ref_id, ref_claim), (sut_id, sut_claim))
            self.both(
                f"delete {ref_id} from {name!r} with {how} {ref_claim}",
                lambda d, side: d.message_controller.delete(
                    name, args[side][0], project=self.project, claim=args[side][1]
                ),
            )

        @rule(name=names, chosen=st.lists(picks, min_size=1, max_size=4))
        def bulk_delete(self, name: str, chosen: list[int]) -> None:
            pairs = [self.message(pick) for pick in chosen]
            ids = ([r for r, _ in pairs], [s for _, s in pairs])
            self.both(
                f"bulk_delete {ids[REF]} from {name!r}",
                lambda d, side: d.message_controller.bulk_delete(name, ids[side], project=self.project),
            )

        @precondition(lambda self: "pop" in capabilities)
        @rule(name=names, limit=limits)
        def pop(self, name: str, limit: int) -> None:
            action = f"pop {limit} from {name!r}"
            results = self.both(
                action, lambda d, side: d.message_controller.pop(name, limit=limit, project=self.project)
            )
            if results is not None:
                self.same_messages(action, *results)

        # --- claims ------------------------------------------------------------------------------------------

        @precondition(lambda self: "claims" in capabilities)
        @rule(name=names, ttl=claim_ttls, grace=graces, limit=limits)
        def claim_create(self, name: str, ttl: int, grace: int, limit: int) -> None:
            action = f"claim {limit} from {name!r} for {ttl} s + {grace} s"
            results = self.both(
                action,
                lambda d, side: d.claim_controller.create(
                    name, {"ttl": ttl, "grace": grace}, project=self.project, limit=limit
                ),
            )
            if results is None:
                return
            (ref_claim, expected), (sut_claim, got) = results
            assert (ref_claim is None) == (sut_claim is None), f"{action}: {results}"
            if sut_claim is not None:
                assert sut_claim not in self.claim_ids, f"{action}: the driver reused claim id {sut_claim}"
                self.claim_ids[sut_claim] = ref_claim
                self.claims.append((ref_claim, sut_claim))
            self.same_messages(action, expected, got)

        @precondition(lambda self: "claims" in capabilities)
        @rule(name=names, pick=picks, malformed=st.integers(min_value=0, max_value=9))
        def claim_get(self, name: str, pick: int, malformed: int) -> None:
            ref_claim, sut_claim = ("nope", "nope") if malformed == 0 else self.claim(pick)
            claims = (ref_claim, sut_claim)
            action = f"get claim {ref_claim} from {name!r}"
            results = self.both(
                action, lambda d, side: d.claim_controller.get(name, claims[side], project=self.project)
            )
            if results is None:
                return
            (ref_info, expected), (sut_info, got) = results
            sut_info = {**sut_info, "id": self.claim_ids.get(sut_info["id"], f"<claim {sut_info['id']}>")}
            assert sut_info == ref_info, f"{action}: the reference {ref_info}; the driver {sut_info}"
            self.same_messages(action, expected, got)

        @precondition(lambda self: "claims" in capabilities)
        @rule(name=names, pick=picks, ttl=claim_ttls, grace=graces)
        def claim_update(self, name: str, pick: int, ttl: int, grace: int) -> None:
            claims = self.claim(pick)
            self.both(
                f"renew claim {claims[REF]} on {name!r} for {ttl} s + {grace} s",
                lambda d, side: d.claim_controller.update(
                    name, claims[side], {"ttl": ttl, "grace": grace}, project=self.project
                ),
            )

        @precondition(lambda self: "claims" in capabilities)
        @rule(name=names, pick=picks)
        def claim_delete(self, name: str, pick: int) -> None:
            claims = self.claim(pick)
            self.both(
                f"release claim {claims[REF]} on {name!r}",
                lambda d, side: d.claim_controller.delete(name, claims[side], project=self.project),
            )

        # --- time --------------------------------------------------------------------------------------------

        @rule(seconds=advances, collect=st.booleans())
        def advance_clock(self, seconds: float, collect: bool) -> None:
            """Time passes; then, half the time, the garbage collector runs."""
            clock.advance(seconds)
            if collect:
                results = self.both("gc()", lambda d, side: d.gc())
                assert results is not None and isinstance(results[1], int) and results[1] >= 0, f"gc: {results}"

    return DriverAgainstReference


def test_driver_agrees_with_the_reference(marconi):
    """Random call sequences get the same answers from the driver under test as from the memory driver."""
    run_state_machine_as_test(make_machine(marconi.driver, marconi.clock), settings=SETTINGS)
