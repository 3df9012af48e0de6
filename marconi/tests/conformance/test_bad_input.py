"""Bad input. CONTRACT.md, "Objects and limits": bad input raises the one validation error class (``InvalidInput``,
a ``ValueError``) whose ``field`` names the field, and nothing is written. Malformed ids and claim ids supplied by
a caller mean "not found", never a crash. The field names are those of ``marconi/storage/validation.py``.

Every rejection test runs against a seeded queue ``q`` (three messages, one of them claimed when the driver has
claims) and compares everything observable in the project before and after the call. The long lists of bad
names and projects are tried one after another in one test per call, each case checked and every failure reported.
"""

from __future__ import annotations

import math
import unicodedata
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from marconi.storage import (
    Capability,
    ClaimDoesNotExist,
    InvalidInput,
    MessageDoesNotExist,
    MessageNotClaimedBy,
    QueueDoesNotExist,
)
from marconi.storage.validation import (
    MAX_CLAIM_GRACE,
    MAX_CLAIM_TTL,
    MAX_DELAY,
    MAX_IDS,
    MAX_METADATA_SIZE,
    MAX_PROJECT_LENGTH,
)

from ._helpers import claim, drain, ids, scratch_projects, snapshot

CLAIMS = pytest.mark.requires(Capability.CLAIMS)
POP = pytest.mark.requires(Capability.POP)


@dataclass
class Seeded:
    q: str
    ids: list[str]  # the three messages, in posting order
    claim_id: str | None  # the live claim holding ids[0], when the driver has claims
    free_id: str  # an unclaimed message


@pytest.fixture
def seeded(marconi):
    q = marconi.new_queue("q", {"seed": True})
    posted = marconi.post(q, ["m0", "m1", "m2"])
    claim_id = None
    if "claims" in marconi.driver.capabilities:
        claim_id, held = claim(marconi, q, ttl=300, limit=1)
        assert claim_id is not None
        free_id = next(message_id for message_id in posted if message_id not in ids(held))
    else:
        free_id = posted[0]
    return Seeded(q, posted, claim_id, free_id)


def assert_rejected(marconi, call, field):
    """``call()`` raises InvalidInput naming ``field``, and the project is exactly as it was."""
    before = snapshot(marconi)
    with pytest.raises(InvalidInput) as raised:
        call()
    assert isinstance(raised.value, ValueError)
    assert raised.value.field == field
    assert field in str(raised.value)
    assert snapshot(marconi) == before


def assert_each_rejected(marconi, cases, call, field):
    """``call(value)`` raises InvalidInput naming ``field`` for each case (a ``pytest.param`` of one value), and
    the project is exactly as it was after each; every case is tried, and every one that fails is reported."""
    before = snapshot(marconi)
    failures = []
    for case in cases:
        try:
            call(case.values[0])
        except InvalidInput as error:
            if not (isinstance(error, ValueError) and error.field == field and field in str(error)):
                failures.append(f"{case.id}: InvalidInput names {error.field!r}, not {field!r}: {error}")
        except Exception as error:  # any other outcome is this case's failure, reported with the rest
            failures.append(f"{case.id}: raised {type(error).__name__}: {error}")
        else:
            failures.append(f"{case.id}: accepted")
        after = snapshot(marconi)
        if after != before:
            failures.append(f"{case.id}: the project changed")
            before = after
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


def assert_raises_unchanged(marconi, error, call):
    """``call()`` raises ``error`` and changes nothing."""
    before = snapshot(marconi)
    with pytest.raises(error):
        call()
    assert snapshot(marconi) == before


def assert_unchanged(marconi, call):
    """``call()`` returns without error and changes nothing; returns what it returned."""
    before = snapshot(marconi)
    result = call()
    assert snapshot(marconi) == before
    return result


def nested_lists(depth):
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def nested_dicts(depth):
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def case(value, name):
    return pytest.param(value, id=name)


# -- queue names ---------------------------------------------------------------------------------------------------

BAD_QUEUE_NAMES = [
    case("a/b", "slash"),
    case("a:b", "colon"),
    case("{a", "brace-open"),
    case("a}", "brace-close"),
    case("a%", "percent"),
    case("_%", "like-pattern"),
    case("it's", "quote"),
    case('a"b', "double-quote"),
    case("a\0b", "nul"),
    case("a b", "space"),
    case(" a", "leading-space"),
    case("a ", "trailing-space"),
    case("a\n", "newline"),
    case("a.b", "dot"),
    case("*", "star"),
    case("é", "accent"),
    case("队列", "cjk"),
    case("🚀", "emoji"),
    case("\uff41", "fullwidth"),
    case("a" * 65, "65-chars"),
    case("", "empty"),
    case("a" * 10_000, "10k-chars"),
    case("q'; DROP TABLE queues; --", "sql"),
    case(None, "None"),
    case(1, "int"),
    case(b"q", "bytes"),
    case(["q"], "list"),
]

QUEUE_NAME_CALLS = [
    pytest.param(lambda m, s, v: m.queues.upsert(v, {}, project=m.project), "name", id="queues.upsert"),
    pytest.param(lambda m, s, v: m.queues.get(v, project=m.project), "name", id="queues.get"),
    pytest.param(lambda m, s, v: m.queues.delete(v, project=m.project), "name", id="queues.delete"),
    pytest.param(lambda m, s, v: m.queues.stats(v, project=m.project), "name", id="queues.stats"),
    pytest.param(lambda m, s, v: m.queues.list(project=m.project, marker=v), "marker", id="queues.list-marker"),
    pytest.param(lambda m, s, v: m.post(v, ["x"]), "queue", id="messages.post"),
    pytest.param(lambda m, s, v: m.messages.list(v, project=m.project), "queue", id="messages.list"),
    pytest.param(lambda m, s, v: m.messages.get(v, s.ids[1], project=m.project), "queue", id="messages.get"),
    pytest.param(lambda m, s, v: m.messages.bulk_get(v, s.ids, project=m.project), "queue", id="messages.bulk_get"),
    pytest.param(lambda m, s, v: m.messages.delete(v, s.ids[1], project=m.project), "queue", id="messages.delete"),
    pytest.param(
        lambda m, s, v: m.messages.bulk_delete(v, s.ids, project=m.project), "queue", id="messages.bulk_delete"
    ),
    pytest.param(
        lambda m, s, v: m.messages.bulk_delete(v, s.ids, project=m.project, claim=s.claim_id),
        "queue",
        id="messages.bulk_delete-claim",
        marks=CLAIMS,
    ),
    pytest.param(lambda m, s, v: m.messages.pop(v, project=m.project), "queue", id="messages.pop", marks=POP),
    pytest.param(
        lambda m, s, v: m.claims.create(v, {"ttl": 60}, project=m.project), "queue", id="claims.create", marks=CLAIMS
    ),
    pytest.param(
        lambda m, s, v: m.claims.get(v, s.claim_id, project=m.project), "queue", id="claims.get", marks=CLAIMS
    ),
    pytest.param(
        lambda m, s, v: m.claims.delete(v, s.claim_id, project=m.project), "queue", id="claims.delete", marks=CLAIMS
    ),
]


@pytest.mark.parametrize(("call", "field"), QUEUE_NAME_CALLS)
def test_a_bad_queue_name_is_rejected(marconi, seeded, call, field):
    # None is the absence of a marker, not a bad one.
    names = [name for name in BAD_QUEUE_NAMES if not (field == "marker" and name.values[0] is None)]
    assert_each_rejected(marconi, names, lambda value: call(marconi, seeded, value), field)


# -- projects ------------------------------------------------------------------------------------------------------

BAD_PROJECTS = [
    case(1, "int"),
    case(b"p", "bytes"),
    case(["p"], "list"),
    case(object(), "object"),
    case("", "empty"),
    case("p" * (MAX_PROJECT_LENGTH + 1), "257-chars"),
    case("p" * 10_000, "10k-chars"),
    case("a\nb", "newline"),
    case("a\tb", "tab"),
    case("a\rb", "carriage-return"),
    case("a\0b", "nul"),
    case("\x1b[31m", "escape"),
    case("a\x7f", "delete"),
    case("a\u2028b", "line-separator"),
    case("a\u200bb", "zero-width-space"),
]

PROJECT_CALLS = [
    pytest.param(lambda m, p: m.queues.upsert("q", {"x": 1}, project=p), id="queues.upsert"),
    pytest.param(lambda m, p: m.queues.get("q", project=p), id="queues.get"),
    pytest.param(lambda m, p: m.queues.list(project=p), id="queues.list"),
    pytest.param(lambda m, p: m.queues.delete("q", project=p), id="queues.delete"),
    pytest.param(lambda m, p: m.queues.stats("q", project=p), id="queues.stats"),
    pytest.param(lambda m, p: m.messages.post("q", [{"ttl": 60, "body": 1}], m.client, project=p), id="messages.post"),
    pytest.param(lambda m, p: m.messages.list("q", project=p), id="messages.list"),
    pytest.param(lambda m, p: m.messages.bulk_delete("q", ["1.1"], project=p), id="messages.bulk_delete"),
    pytest.param(lambda m, p: m.messages.pop("q", project=p), id="messages.pop", marks=POP),
    pytest.param(lambda m, p: m.claims.create("q", {"ttl": 60}, project=p), id="claims.create", marks=CLAIMS),
]


@pytest.mark.parametrize("call", PROJECT_CALLS)
def test_a_bad_project_is_rejected(marconi, seeded, call):
    assert_each_rejected(marconi, BAD_PROJECTS, lambda value: call(marconi, value), "project")


@pytest.mark.parametrize("value", BAD_PROJECTS)
def test_a_bad_project_creates_no_queue_anywhere(marconi, value):
    name = f"bad-project-{uuid.uuid4().hex}"
    with pytest.raises(InvalidInput):
        marconi.queues.upsert(name, {}, project=value)
    candidates = [None, marconi.project]
    if isinstance(value, str):
        cleaned = "".join(ch for ch in value if ch.isprintable())
        candidates += [
            project
            for project in (value[:MAX_PROJECT_LENGTH], cleaned[:MAX_PROJECT_LENGTH])
            if project and project.isprintable()
        ]
    for project in candidates:
        with pytest.raises(QueueDoesNotExist):
            marconi.queues.get(name, project=project)


# Valid project spellings, each appended to the test's own project. Their siblings are the spellings a careless
# backend confuses them with (case, trailing spaces, accents, LIKE wildcards); each must be a separate project.
GOOD_PROJECT_SUFFIXES = [
    case("-ünïcödé", "unicode"),
    case("-项目", "cjk"),
    case("-🚀", "emoji"),
    case("-it's", "quote"),
    case('-say "hi"', "double-quote"),
    case("-100%", "percent"),
    case("-_", "underscore"),
    case("-a;DROP TABLE queues;--", "semicolon"),
    case("-trailing ", "trailing-space"),
    case("-two  ", "two-trailing-spaces"),
    case(" -leading", "leading-space"),
    case("-back\\slash", "backslash"),
    case("-$where{}[]", "operators"),
    case("-MiXeD", "mixed-case"),
]


def look_alikes(suffix):
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", suffix) if not unicodedata.combining(ch))
    wildcards = suffix.replace("%", "x").replace("_", "x")
    return sorted({"-x", suffix.rstrip(), suffix.upper(), suffix.lower(), plain, wildcards} - {suffix})


def check_project_isolated(marconi, projects):
    for n, project in enumerate(projects):
        assert marconi.queues.upsert("shared", {"n": n}, project=project) is True
        marconi.messages.post("shared", [{"ttl": 300, "body": n}], marconi.client, project=project)
    for n, project in enumerate(projects):
        listed, _ = marconi.queues.list(project=project, detailed=True)
        assert list(listed) == [{"name": "shared", "metadata": {"n": n}}]
        assert marconi.queues.get("shared", project=project) == {"n": n}
        messages, _ = marconi.messages.list("shared", project=project)
        assert [message["body"] for message in messages] == [n]
        assert marconi.queues.stats("shared", project=project)["messages"]["total"] == 1
    for project in projects[1:]:
        marconi.queues.delete("shared", project=project)
    assert marconi.queues.get("shared", project=projects[0]) == {"n": 0}
    assert marconi.queues.stats("shared", project=projects[0])["messages"]["total"] == 1


@pytest.mark.parametrize("suffix", GOOD_PROJECT_SUFFIXES)
def test_a_valid_project_spelling_works_and_stays_isolated(marconi, suffix):
    with scratch_projects(marconi, suffix, *look_alikes(suffix)) as projects:
        check_project_isolated(marconi, projects)


def test_a_256_character_project_works_and_stays_isolated(marconi):
    longest = "z" * (MAX_PROJECT_LENGTH - len(marconi.project))
    with scratch_projects(marconi, longest, longest[:-1], longest[:-1] + "y") as projects:
        assert len(projects[0]) == MAX_PROJECT_LENGTH
        check_project_isolated(marconi, projects)


# -- markers -------------------------------------------------------------------------------------------------------

GARBAGE_MARKERS = [
    case("garbage", "word"),
    case("", "empty"),
    case("1", "one-number"),
    case("1.", "trailing-dot"),
    case(".1", "leading-dot"),
    case("-1.1", "negative"),
    case("1.-1", "negative-position"),
    case("1.1.1", "three-parts"),
    case("01.1", "leading-zero"),
    case(" 1.1", "leading-space"),
    case("1.1 ", "trailing-space"),
    case("1.1\n", "newline"),
    case("1.1\0", "nul"),
    case("1e3.1", "exponent"),
    case("0x1.1", "hex"),
    case("1_0.1", "underscore-digits"),
    case("\uff11.\uff11", "fullwidth-digits"),
    case("1,1", "comma"),
    case("9" * 30 + ".1", "huge"),
    case(f"1.{2**63}", "overflows-int64"),
    case("1.1' OR '1'='1", "sql"),
    case("a" * 10_000, "10k-chars"),
]


@pytest.mark.parametrize("marker", GARBAGE_MARKERS)
def test_a_garbage_marker_is_rejected_naming_marker(marconi, seeded, marker):
    assert_rejected(marconi, lambda: marconi.messages.list(seeded.q, project=marconi.project, marker=marker), "marker")


@pytest.mark.parametrize("marker", [case(1, "int"), case(1.5, "float"), case(b"1.1", "bytes"), case(["1.1"], "list")])
def test_a_marker_that_is_not_a_string_is_rejected(marconi, seeded, marker):
    assert_rejected(marconi, lambda: marconi.messages.list(seeded.q, project=marconi.project, marker=marker), "marker")


FORGED_MARKERS = [
    case(lambda inc: "0.0", "zero"),
    case(lambda inc: "0.1", "incarnation-zero"),
    case(lambda inc: "1.1", "one-one"),
    case(lambda inc: f"{2**63 - 1}.{2**63 - 1}", "largest"),
    case(lambda inc: f"{inc}.0", "own-queue-zero"),
    case(lambda inc: f"{inc}.2", "own-queue-two"),
    case(lambda inc: f"{inc}.{2**63 - 1}", "own-queue-largest"),
    case(lambda inc: f"{int(inc) + 1}.1", "next-incarnation"),
]


@pytest.mark.parametrize("forge", FORGED_MARKERS)
def test_a_forged_well_formed_marker_does_not_crash(marconi, seeded, forge):
    """Markers are "<incarnation>.<position>" (docs/design.md); a forged one lists some of the queue, in order."""
    marker = forge(seeded.ids[0].split(".")[0])
    everything = ids(drain(marconi, seeded.q, include_claimed=True)[0])
    items, next_marker = assert_unchanged(
        marconi, lambda: marconi.messages.list(seeded.q, project=marconi.project, marker=marker, include_claimed=True)
    )
    got = ids(list(items))
    assert got == [message_id for message_id in everything if message_id in got]
    assert isinstance(next_marker, str)
    marconi.messages.list(seeded.q, project=marconi.project, marker=next_marker)


# -- message ids ---------------------------------------------------------------------------------------------------

GARBAGE_MESSAGE_IDS = [
    case("garbage", "word"),
    case("", "empty"),
    case("1", "one-number"),
    case("1.1.1", "three-parts"),
    case("-1.1", "negative"),
    case("9" * 30 + ".1", "huge"),
    case(f"1.{2**63}", "overflows-int64"),
    case("1' OR '1'='1", "sql"),
    case("a" * 10_000, "10k-chars"),
    case("\0", "nul"),
    case("\uff11.\uff11", "fullwidth-digits"),
    case("0.0", "never-issued"),
]


@pytest.mark.parametrize("message_id", GARBAGE_MESSAGE_IDS)
def test_get_of_a_garbage_message_id_raises_message_does_not_exist(marconi, seeded, message_id):
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(seeded.q, message_id, project=marconi.project)


@pytest.mark.parametrize("message_id", GARBAGE_MESSAGE_IDS)
def test_garbage_message_ids_are_skipped_by_bulk_get(marconi, seeded, message_id):
    found = marconi.messages.bulk_get(seeded.q, [message_id, seeded.ids[1]], project=marconi.project)
    assert ids(found) == [seeded.ids[1]]


@pytest.mark.parametrize("message_id", GARBAGE_MESSAGE_IDS)
def test_deleting_a_garbage_message_id_does_nothing(marconi, seeded, message_id):
    assert_unchanged(marconi, lambda: marconi.messages.delete(seeded.q, message_id, project=marconi.project))
    assert_unchanged(marconi, lambda: marconi.messages.bulk_delete(seeded.q, [message_id], project=marconi.project))


NON_STRING_IDS = [
    case(1, "int"),
    case(None, "None"),
    case(1.5, "float"),
    case(b"1.1", "bytes"),
    case(["1.1"], "list"),
    case(uuid.uuid4(), "uuid"),
]


@pytest.mark.parametrize("message_id", NON_STRING_IDS)
def test_a_message_id_that_is_not_a_string_is_rejected(marconi, seeded, message_id):
    m, q = marconi, seeded.q
    assert_rejected(m, lambda: m.messages.get(q, message_id, project=m.project), "message_id")
    assert_rejected(m, lambda: m.messages.delete(q, message_id, project=m.project), "message_id")
    assert_rejected(m, lambda: m.messages.bulk_get(q, [seeded.ids[1], message_id], project=m.project), "message_ids[1]")
    assert_rejected(
        m, lambda: m.messages.bulk_delete(q, [seeded.free_id, message_id], project=m.project), "message_ids[1]"
    )


@pytest.mark.parametrize(
    "value", [case("1.1", "string"), case(b"1.1", "bytes"), case({"1.1": 1}, "dict"), case(5, "int")]
)
def test_bulk_ids_that_are_not_a_list_are_rejected(marconi, seeded, value):
    assert_rejected(marconi, lambda: marconi.messages.bulk_get(seeded.q, value, project=marconi.project), "message_ids")
    assert_rejected(
        marconi, lambda: marconi.messages.bulk_delete(seeded.q, value, project=marconi.project), "message_ids"
    )


def test_more_than_100_ids_are_rejected_and_nothing_is_deleted(marconi, seeded):
    too_many = [seeded.free_id] + [f"0.{n}" for n in range(1, MAX_IDS + 1)]
    assert_rejected(
        marconi, lambda: marconi.messages.bulk_get(seeded.q, too_many, project=marconi.project), "message_ids"
    )
    assert_rejected(
        marconi, lambda: marconi.messages.bulk_delete(seeded.q, too_many, project=marconi.project), "message_ids"
    )


def test_100_ids_are_accepted(marconi, seeded):
    hundred = [seeded.ids[1]] + [f"0.{n}" for n in range(1, MAX_IDS)]
    assert ids(marconi.messages.bulk_get(seeded.q, hundred, project=marconi.project)) == [seeded.ids[1]]


# -- claim ids -----------------------------------------------------------------------------------------------------

GARBAGE_CLAIM_IDS = [
    case(lambda real: "garbage", "word"),
    case(lambda real: "", "empty"),
    case(lambda real: "0" * 32, "zeros"),
    case(lambda real: "g" * 32, "not-hex"),
    case(lambda real: real.upper(), "upper-case"),
    case(lambda real: real + " ", "trailing-space"),
    case(lambda real: real[:-1], "truncated"),
    case(lambda real: real + "0", "extended"),
    case(lambda real: real + "\0", "nul"),
    case(lambda real: str(uuid.UUID(real)), "dashed"),
    case(lambda real: "' OR '1'='1", "sql"),
    case(lambda real: "a" * 10_000, "10k-chars"),
]


@CLAIMS
@pytest.mark.parametrize("forge", GARBAGE_CLAIM_IDS)
def test_a_garbage_claim_id_names_no_claim(marconi, seeded, forge):
    m, q, bad = marconi, seeded.q, forge(seeded.claim_id)
    assert_raises_unchanged(m, ClaimDoesNotExist, lambda: m.claims.get(q, bad, project=m.project))
    assert_raises_unchanged(m, ClaimDoesNotExist, lambda: m.claims.update(q, bad, {"ttl": 30}, project=m.project))
    assert_unchanged(m, lambda: m.claims.delete(q, bad, project=m.project))


@CLAIMS
@pytest.mark.parametrize("forge", GARBAGE_CLAIM_IDS)
def test_deleting_a_message_with_a_garbage_claim_id_raises_message_not_claimed_by(marconi, seeded, forge):
    m, q, bad = marconi, seeded.q, forge(seeded.claim_id)
    claimed, free = seeded.ids[0], seeded.free_id
    assert_raises_unchanged(m, MessageNotClaimedBy, lambda: m.messages.delete(q, claimed, project=m.project, claim=bad))
    assert_raises_unchanged(m, MessageNotClaimedBy, lambda: m.messages.delete(q, free, project=m.project, claim=bad))


@CLAIMS
@pytest.mark.parametrize("forge", GARBAGE_CLAIM_IDS)
def test_bulk_deleting_with_a_garbage_claim_id_raises_claim_does_not_exist(marconi, seeded, forge):
    m, q, bad = marconi, seeded.q, forge(seeded.claim_id)
    assert_raises_unchanged(
        m, ClaimDoesNotExist, lambda: m.messages.bulk_delete(q, seeded.ids, project=m.project, claim=bad)
    )


@CLAIMS
@pytest.mark.parametrize("claim_id", [case(v.values[0], v.id) for v in NON_STRING_IDS])
def test_a_claim_id_that_is_not_a_string_is_rejected(marconi, seeded, claim_id):
    m, q = marconi, seeded.q
    assert_rejected(m, lambda: m.claims.get(q, claim_id, project=m.project), "claim_id")
    assert_rejected(m, lambda: m.claims.update(q, claim_id, {"ttl": 30}, project=m.project), "claim_id")
    assert_rejected(m, lambda: m.claims.delete(q, claim_id, project=m.project), "claim_id")
    if claim_id is not None:
        assert_rejected(m, lambda: m.messages.delete(q, seeded.ids[0], project=m.project, claim=claim_id), "claim")
        assert_rejected(m, lambda: m.messages.bulk_delete(q, seeded.ids, project=m.project, claim=claim_id), "claim")


# -- message ttl and delay -----------------------------------------------------------------------------------------

BAD_WHOLE_NUMBERS = [
    case(-1, "negative"),
    case(10**30, "huge"),
    case(1.5, "fraction"),
    case(60.0, "float"),
    case(math.nan, "nan"),
    case(True, "True"),
    case(False, "False"),
    case("60", "string"),
    case(None, "None"),
    case(Decimal(60), "decimal"),
]


def post_second(marconi, q, **second):
    batch = [{"ttl": 60, "body": "fine"}, {"ttl": 60, "body": "second", **second}]
    return marconi.messages.post(q, batch, marconi.client, project=marconi.project)


@pytest.mark.parametrize("ttl", [*BAD_WHOLE_NUMBERS, case(0, "zero")])
def test_a_bad_message_ttl_is_rejected(marconi, seeded, ttl):
    assert_rejected(marconi, lambda: post_second(marconi, seeded.q, ttl=ttl), "messages[1].ttl")


def test_a_message_ttl_over_the_maximum_is_rejected(marconi, seeded):
    ttl = marconi.driver.limits.max_message_ttl + 1
    assert_rejected(marconi, lambda: post_second(marconi, seeded.q, ttl=ttl), "messages[1].ttl")


def test_the_message_ttl_bounds_are_accepted(marconi):
    q = marconi.new_queue()
    longest = marconi.driver.limits.max_message_ttl
    _, long_id = post_second(marconi, q, ttl=longest)
    _, short_id = post_second(marconi, q, ttl=1)
    assert marconi.messages.get(q, long_id, project=marconi.project)["ttl"] == longest
    assert marconi.messages.get(q, short_id, project=marconi.project)["ttl"] == 1


@pytest.mark.parametrize("delay", [*BAD_WHOLE_NUMBERS, case(MAX_DELAY + 1, "901")])
def test_a_bad_delay_is_rejected(marconi, seeded, delay):
    assert_rejected(marconi, lambda: post_second(marconi, seeded.q, delay=delay), "messages[1].delay")


@pytest.mark.requires(Capability.DELAY)
def test_the_delay_bounds_are_accepted(marconi):
    q = marconi.new_queue()
    post_second(marconi, q, delay=MAX_DELAY)
    post_second(marconi, q, delay=0)
    assert marconi.queues.stats(q, project=marconi.project)["messages"]["free"] == 3


# -- bodies and batches --------------------------------------------------------------------------------------------

BAD_BODIES = [
    case({1, 2}, "set"),
    case(frozenset(), "frozenset"),
    case(b"bytes", "bytes"),
    case(bytearray(b"x"), "bytearray"),
    case(math.nan, "nan"),
    case(math.inf, "inf"),
    case(-math.inf, "-inf"),
    case([1, [math.nan]], "nested-nan"),
    case(object(), "object"),
    case((1, 2), "tuple"),
    case({1: "x"}, "int-key"),
    case({None: 1}, "None-key"),
    case({("a",): 1}, "tuple-key"),
    case({"k": {1, 2}}, "nested-set"),
    case(complex(1, 2), "complex"),
    case(Decimal("1.5"), "decimal"),
    case(uuid.uuid4(), "uuid"),
    case(nested_lists(100), "lists-100-deep"),
    case(nested_lists(10_000), "lists-10000-deep"),
    case(nested_dicts(10_000), "dicts-10000-deep"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_body_that_is_not_json_is_rejected(marconi, seeded, body):
    assert_rejected(marconi, lambda: post_second(marconi, seeded.q, body=body), "messages[1].body")


def test_a_body_nested_32_deep_round_trips(marconi):
    q = marconi.new_queue()
    body = {"list": nested_lists(15), "dict": nested_dicts(15)}
    message_id = marconi.post(q, [body])[0]
    assert marconi.messages.get(q, message_id, project=marconi.project)["body"] == body


BAD_BATCHES = [
    pytest.param([], "messages", id="empty"),
    pytest.param(None, "messages", id="None"),
    pytest.param("abc", "messages", id="string"),
    pytest.param(b"abc", "messages", id="bytes"),
    pytest.param({"ttl": 60, "body": 1}, "messages", id="one-dict"),
    pytest.param(5, "messages", id="int"),
    pytest.param([5], "messages[0]", id="not-a-dict"),
    pytest.param([{"body": 1}], "messages[0]", id="no-ttl"),
    pytest.param([{"ttl": 60}], "messages[0]", id="no-body"),
    pytest.param([{"ttl": 60, "body": 1, "extra": 1}], "messages[0]", id="unknown-key"),
    pytest.param([{"ttl": 60, "body": 1, "claim_id": "x"}], "messages[0]", id="claim-id-key"),
    pytest.param([{"ttl": 60, "body": 1}, "x"], "messages[1]", id="second-not-a-dict"),
]


@pytest.mark.parametrize(("batch", "field"), BAD_BATCHES)
def test_a_malformed_batch_is_rejected(marconi, seeded, batch, field):
    assert_rejected(
        marconi, lambda: marconi.messages.post(seeded.q, batch, marconi.client, project=marconi.project), field
    )


def largest_body(marconi, ttl=60):
    """The length of the largest string body a one-message batch may have (docs/design.md counts the size)."""
    overhead = 2 + len(f'{{"ttl":{ttl},"delay":0,"body":""}},')
    return marconi.driver.limits.max_post_size - overhead


def test_a_batch_over_the_size_limit_is_rejected(marconi, seeded):
    body = "x" * (largest_body(marconi) + 1)
    batch = [{"ttl": 60, "body": body}]
    assert_rejected(
        marconi, lambda: marconi.messages.post(seeded.q, batch, marconi.client, project=marconi.project), "messages"
    )


def test_many_small_messages_over_the_size_limit_are_rejected(marconi, seeded):
    batch = [{"ttl": 60, "body": "x" * 1000} for _ in range(marconi.driver.limits.max_post_size // 1000 + 1)]
    assert_rejected(
        marconi, lambda: marconi.messages.post(seeded.q, batch, marconi.client, project=marconi.project), "messages"
    )


def test_a_batch_of_exactly_the_size_limit_is_accepted_whole(marconi):
    q = marconi.new_queue()
    body = "x" * largest_body(marconi)
    message_id = marconi.messages.post(q, [{"ttl": 60, "body": body}], marconi.client, project=marconi.project)[0]
    assert marconi.messages.get(q, message_id, project=marconi.project)["body"] == body


BAD_CLIENT_UUIDS = [
    case("not-a-uuid", "word"),
    case("", "empty"),
    case("1234", "short"),
    case(str(uuid.uuid4()) + "x", "trailing-junk"),
    case("x" * 100, "long"),
    case(5, "int"),
    case(b"\x00" * 16, "bytes"),
    case(uuid.uuid4().int, "uuid-as-int"),
]


@pytest.mark.parametrize("client_uuid", [*BAD_CLIENT_UUIDS, case(None, "None")])
def test_post_with_a_bad_client_uuid_is_rejected(marconi, seeded, client_uuid):
    batch = [{"ttl": 60, "body": 1}]
    assert_rejected(
        marconi, lambda: marconi.messages.post(seeded.q, batch, client_uuid, project=marconi.project), "client_uuid"
    )


@pytest.mark.parametrize("client_uuid", BAD_CLIENT_UUIDS)
def test_list_with_a_bad_client_uuid_is_rejected(marconi, seeded, client_uuid):
    assert_rejected(
        marconi,
        lambda: marconi.messages.list(seeded.q, project=marconi.project, client_uuid=client_uuid),
        "client_uuid",
    )


@pytest.mark.parametrize("value", [case(1, "int"), case(0, "zero"), case("yes", "string"), case(None, "None")])
@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda m, s, v: m.messages.list(s.q, project=m.project, echo=v), "echo", id="echo"),
        pytest.param(
            lambda m, s, v: m.messages.list(s.q, project=m.project, include_claimed=v),
            "include_claimed",
            id="include_claimed",
        ),
        pytest.param(lambda m, s, v: m.queues.list(project=m.project, detailed=v), "detailed", id="detailed"),
    ],
)
def test_a_flag_that_is_not_a_bool_is_rejected(marconi, seeded, call, field, value):
    assert_rejected(marconi, lambda: call(marconi, seeded, value), field)


# -- limits --------------------------------------------------------------------------------------------------------

LIMIT_CALLS = [
    pytest.param(lambda m, s, v: m.queues.list(project=m.project, limit=v), id="queues.list"),
    pytest.param(lambda m, s, v: m.messages.list(s.q, project=m.project, limit=v), id="messages.list"),
    pytest.param(lambda m, s, v: m.messages.pop(s.q, limit=v, project=m.project), id="messages.pop", marks=POP),
    pytest.param(
        lambda m, s, v: m.claims.create(s.q, {"ttl": 60}, project=m.project, limit=v), id="claims.create", marks=CLAIMS
    ),
]


BAD_LIMITS = [
    case(0, "zero"),
    case(101, "101"),
    case(-1, "negative"),
    case(10**30, "huge"),
    case(True, "True"),
    case(1.5, "fraction"),
    case(10.0, "float"),
    case("10", "string"),
    case(None, "None"),
]


@pytest.mark.parametrize("limit", BAD_LIMITS)
@pytest.mark.parametrize("call", LIMIT_CALLS)
def test_a_bad_limit_is_rejected(marconi, seeded, call, limit):
    assert_rejected(marconi, lambda: call(marconi, seeded, limit), "limit")


def test_the_limit_bounds_are_accepted(marconi):
    q = marconi.new_queue()
    marconi.post(q, 101)
    items, _ = marconi.messages.list(q, project=marconi.project, limit=100)
    assert len(list(items)) == 100
    items, _ = marconi.messages.list(q, project=marconi.project, limit=1)
    assert len(list(items)) == 1


# -- claim terms ---------------------------------------------------------------------------------------------------

CLAIM_TERM_CASES = [
    pytest.param([], "metadata", id="list"),
    pytest.param(None, "metadata", id="None"),
    pytest.param("ttl", "metadata", id="string"),
    pytest.param(60, "metadata", id="int"),
    pytest.param({}, "metadata", id="empty"),
    pytest.param({"grace": 5}, "metadata", id="no-ttl"),
    pytest.param({"ttl": 60, "limit": 5}, "metadata", id="unknown-key"),
    pytest.param({"TTL": 60}, "metadata", id="upper-case-key"),
    pytest.param({"ttl": 0}, "metadata.ttl", id="ttl-zero"),
    pytest.param({"ttl": MAX_CLAIM_TTL + 1}, "metadata.ttl", id="ttl-too-long"),
    pytest.param({"ttl": 10**30}, "metadata.ttl", id="ttl-huge"),
    pytest.param({"ttl": -1}, "metadata.ttl", id="ttl-negative"),
    pytest.param({"ttl": 1.5}, "metadata.ttl", id="ttl-fraction"),
    pytest.param({"ttl": True}, "metadata.ttl", id="ttl-True"),
    pytest.param({"ttl": "60"}, "metadata.ttl", id="ttl-string"),
    pytest.param({"ttl": None}, "metadata.ttl", id="ttl-None"),
    pytest.param({"ttl": 60, "grace": -1}, "metadata.grace", id="grace-negative"),
    pytest.param({"ttl": 60, "grace": MAX_CLAIM_GRACE + 1}, "metadata.grace", id="grace-too-long"),
    pytest.param({"ttl": 60, "grace": 1.5}, "metadata.grace", id="grace-fraction"),
    pytest.param({"ttl": 60, "grace": True}, "metadata.grace", id="grace-True"),
    pytest.param({"ttl": 60, "grace": "0"}, "metadata.grace", id="grace-string"),
    pytest.param({"ttl": 60, "grace": None}, "metadata.grace", id="grace-None"),
]


@CLAIMS
@pytest.mark.parametrize(("terms", "field"), CLAIM_TERM_CASES)
def test_claim_create_with_bad_terms_is_rejected(marconi, seeded, terms, field):
    assert_rejected(marconi, lambda: marconi.claims.create(seeded.q, terms, project=marconi.project), field)


@CLAIMS
@pytest.mark.parametrize(("terms", "field"), CLAIM_TERM_CASES)
def test_claim_update_with_bad_terms_is_rejected(marconi, seeded, terms, field):
    assert_rejected(
        marconi, lambda: marconi.claims.update(seeded.q, seeded.claim_id, terms, project=marconi.project), field
    )


@CLAIMS
def test_the_claim_term_bounds_are_accepted(marconi):
    q = marconi.new_queue()
    marconi.post(q, 2)
    longest, held = marconi.claims.create(
        q, {"ttl": MAX_CLAIM_TTL, "grace": MAX_CLAIM_GRACE}, project=marconi.project, limit=1
    )
    shortest, _ = marconi.claims.create(q, {"ttl": 1, "grace": 0}, project=marconi.project, limit=1)
    assert marconi.claims.get(q, longest, project=marconi.project)[0]["ttl"] == MAX_CLAIM_TTL
    assert marconi.claims.get(q, shortest, project=marconi.project)[0]["ttl"] == 1
    assert held[0]["ttl"] == MAX_CLAIM_TTL + MAX_CLAIM_GRACE


# -- queue metadata ------------------------------------------------------------------------------------------------

BAD_METADATA = [
    case([], "list"),
    case("x", "string"),
    case(None, "None"),
    case(5, "int"),
    case([("a", 1)], "pairs"),
    case({"k": "x" * MAX_METADATA_SIZE}, "over-64KiB"),
    case({"k": {1, 2}}, "set-value"),
    case({1: "a"}, "int-key"),
    case({"k": math.nan}, "nan"),
    case({"k": (1, 2)}, "tuple"),
    case(nested_dicts(10_000), "10000-deep"),
]


@pytest.mark.parametrize("metadata", BAD_METADATA)
@pytest.mark.parametrize("queue", ["q", "new-queue"])
def test_bad_metadata_is_rejected(marconi, seeded, queue, metadata):
    assert_rejected(marconi, lambda: marconi.queues.upsert(queue, metadata, project=marconi.project), "metadata")


def test_metadata_of_exactly_64_kib_is_accepted(marconi):
    metadata = {"k": "x" * (MAX_METADATA_SIZE - len('{"k":""}'))}
    marconi.queues.upsert("big", metadata, project=marconi.project)
    assert marconi.queues.get("big", project=marconi.project) == metadata


# -- values that are hard to describe ------------------------------------------------------------------------------


class Unprintable:
    """A value whose repr and str raise: an error message must still describe it without calling them."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


HOSTILE_VALUES = [
    case(10**5000, "5000-digit-int"),
    case(-(10**5000), "negative-5000-digits"),
    case(Unprintable(), "unprintable"),
]

HOSTILE_CALLS = [
    pytest.param(lambda m, s, v: m.queues.get(v, project=m.project), "name", id="queue-name"),
    pytest.param(lambda m, s, v: m.queues.get(s.q, project=v), "project", id="project"),
    pytest.param(
        lambda m, s, v: m.messages.post(s.q, [{"ttl": v, "body": 1}], m.client, project=m.project),
        "messages[0].ttl",
        id="ttl",
    ),
    pytest.param(
        lambda m, s, v: m.messages.post(s.q, [{"ttl": 60, "body": v}], m.client, project=m.project),
        "messages[0].body",
        id="body",
    ),
    pytest.param(lambda m, s, v: m.messages.list(s.q, project=m.project, limit=v), "limit", id="limit"),
    pytest.param(lambda m, s, v: m.messages.list(s.q, project=m.project, marker=v), "marker", id="marker"),
    pytest.param(lambda m, s, v: m.messages.get(s.q, v, project=m.project), "message_id", id="message-id"),
    pytest.param(
        lambda m, s, v: m.messages.post(s.q, [{"ttl": 60, "body": 1}], v, project=m.project),
        "client_uuid",
        id="client-uuid",
    ),
    pytest.param(
        lambda m, s, v: m.claims.create(s.q, {"ttl": v}, project=m.project),
        "metadata.ttl",
        id="claim-ttl",
        marks=CLAIMS,
    ),
    pytest.param(lambda m, s, v: m.claims.get(s.q, v, project=m.project), "claim_id", id="claim-id", marks=CLAIMS),
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize(("call", "field"), HOSTILE_CALLS)
def test_a_value_that_is_hard_to_describe_is_still_rejected_naming_its_field(marconi, seeded, call, field, value):
    assert_rejected(marconi, lambda: call(marconi, seeded, value), field)
