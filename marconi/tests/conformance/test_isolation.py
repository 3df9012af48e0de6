"""Isolation: "Nothing in one project is ever visible from another" (CONTRACT.md, "Objects and limits"), and one
queue's messages and claims are never reached through another queue. Projects compare exactly (docs/design.md):
``None``, ``"a"``, ``"A"`` and ``"a "`` are four projects.
"""

from __future__ import annotations

import uuid

import pytest

from marconi.storage import Capability, ClaimDoesNotExist, InvalidInput, MessageDoesNotExist, QueueDoesNotExist

from ._helpers import drain, scratch_projects

# Each pair is two projects that must share nothing, as suffixes of the test's own project ("" is the project).
PROJECT_PAIRS = [
    pytest.param(("", "-other"), id="two-projects"),
    pytest.param(("a", "A"), id="case"),
    pytest.param(("a", "a "), id="trailing-space"),
    pytest.param(("A", "a "), id="case-and-space"),
    pytest.param(("e", "é"), id="accent"),
    pytest.param(("x", "%"), id="like-wildcard"),
    pytest.param(("x", "_"), id="like-single"),
]


class Side:
    """One project's view of the same queue name."""

    def __init__(self, marconi, project):
        self.m, self.project = marconi, project

    def post(self, q, bodies):
        batch = [{"ttl": 300, "body": body} for body in bodies]
        return self.m.messages.post(q, batch, self.m.client, project=self.project)

    def bodies(self, q, **options):
        items, _ = self.m.messages.list(q, project=self.project, limit=100, **options)
        return sorted(message["body"] for message in items)

    def counts(self, q):
        found = self.m.queues.stats(q, project=self.project)["messages"]
        return (found["claimed"], found["free"], found["total"])

    def queue_names(self):
        items, _ = self.m.queues.list(project=self.project, limit=100)
        return [entry["name"] for entry in items]

    def claim(self, q, limit=10):
        return self.m.claims.create(q, {"ttl": 300}, project=self.project, limit=limit)


@pytest.fixture(params=PROJECT_PAIRS)
def sides(request, marconi):
    first, second = request.param
    with scratch_projects(marconi, first, second) as projects:
        yield Side(marconi, projects[0]), Side(marconi, projects[1])


def test_the_same_queue_name_is_a_separate_queue_in_each_project(sides):
    one, two = sides
    assert one.m.queues.upsert("shared", {"owner": 1}, project=one.project) is True
    assert two.m.queues.upsert("shared", {"owner": 2}, project=two.project) is True
    assert one.m.queues.get("shared", project=one.project) == {"owner": 1}
    assert two.m.queues.get("shared", project=two.project) == {"owner": 2}


def test_queue_lists_show_only_the_projects_own_queues(sides):
    one, two = sides
    one.m.queues.upsert("shared", {}, project=one.project)
    one.m.queues.upsert("only-one", {}, project=one.project)
    two.m.queues.upsert("only-two", {}, project=two.project)
    assert one.queue_names() == ["only-one", "shared"]
    assert two.queue_names() == ["only-two"]


def test_a_queue_is_missing_in_the_other_project(sides):
    one, two = sides
    one.m.queues.upsert("shared", {}, project=one.project)
    with pytest.raises(QueueDoesNotExist):
        two.m.queues.get("shared", project=two.project)
    with pytest.raises(QueueDoesNotExist):
        two.post("shared", ["intruder"])
    assert one.counts("shared") == (0, 0, 0)


def test_messages_and_stats_stay_in_their_project(sides):
    one, two = sides
    for side in sides:
        side.m.queues.upsert("shared", {}, project=side.project)
    mine = one.post("shared", ["one-a", "one-b"])
    two.post("shared", ["two-a"])
    assert one.bodies("shared") == ["one-a", "one-b"]
    assert two.bodies("shared") == ["two-a"]
    assert (one.counts("shared"), two.counts("shared")) == ((0, 2, 2), (0, 1, 1))
    with pytest.raises(MessageDoesNotExist):
        two.m.messages.get("shared", mine[0], project=two.project)
    assert two.m.messages.bulk_get("shared", mine, project=two.project) == []


def test_deletes_stay_in_their_project(sides):
    one, two = sides
    for side in sides:
        side.m.queues.upsert("shared", {}, project=side.project)
    mine = one.post("shared", ["one-a", "one-b", "one-c"])
    two.post("shared", ["two-a"])
    two.m.messages.delete("shared", mine[0], project=two.project)
    two.m.messages.bulk_delete("shared", mine, project=two.project)
    assert one.bodies("shared") == ["one-a", "one-b", "one-c"]
    two.m.queues.delete("shared", project=two.project)
    assert one.bodies("shared") == ["one-a", "one-b", "one-c"]
    assert one.m.queues.get("shared", project=one.project) == {}


@pytest.mark.requires(Capability.CLAIMS)
def test_claims_stay_in_their_project(sides):
    one, two = sides
    for side in sides:
        side.m.queues.upsert("shared", {}, project=side.project)
    one.post("shared", ["one-a", "one-b"])
    two.post("shared", ["two-a"])
    claim_id, held = one.claim("shared")
    assert sorted(message["body"] for message in held) == ["one-a", "one-b"]
    assert two.counts("shared") == (0, 1, 1)
    with pytest.raises(ClaimDoesNotExist):
        two.m.claims.get("shared", claim_id, project=two.project)
    with pytest.raises(ClaimDoesNotExist):
        two.m.claims.update("shared", claim_id, {"ttl": 60}, project=two.project)
    two.m.claims.delete("shared", claim_id, project=two.project)
    assert one.counts("shared") == (2, 0, 2)
    _, theirs = two.claim("shared")
    assert [message["body"] for message in theirs] == ["two-a"]


@pytest.mark.requires(Capability.POP)
def test_pop_stays_in_its_project(sides):
    one, two = sides
    for side in sides:
        side.m.queues.upsert("shared", {}, project=side.project)
    one.post("shared", ["one-a"])
    two.post("shared", ["two-a", "two-b"])
    popped = two.m.messages.pop("shared", project=two.project)
    assert sorted(message["body"] for message in popped) == ["two-a", "two-b"]
    assert one.bodies("shared") == ["one-a"]


def test_the_none_project_is_its_own_project(marconi):
    name = f"iso-{uuid.uuid4().hex}"
    try:
        marconi.queues.upsert(name, {"owner": None}, project=None)
        marconi.messages.post(name, [{"ttl": 300, "body": "none"}], marconi.client, project=None)
        with pytest.raises(QueueDoesNotExist):
            marconi.queues.get(name, project=marconi.project)
        marconi.queues.upsert(name, {"owner": "project"}, project=marconi.project)
        marconi.post(name, ["project"])
        listed, _ = marconi.messages.list(name, project=None)
        assert [message["body"] for message in listed] == ["none"]
        assert [message["body"] for message in drain(marconi, name)[0]] == ["project"]
        assert marconi.queues.get(name, project=None) == {"owner": None}
        marconi.queues.delete(name, project=marconi.project)
        assert marconi.queues.stats(name, project=None)["messages"]["total"] == 1
        names, _ = marconi.queues.list(project=marconi.project, limit=100)
        assert list(names) == []
    finally:
        marconi.queues.delete(name, project=None)


def test_two_queues_of_one_project_share_nothing(marconi):
    q1, q2 = marconi.new_queue(), marconi.new_queue()
    first = marconi.post(q1, ["q1-a", "q1-b"])
    marconi.post(q2, ["q2-a"])
    with pytest.raises(MessageDoesNotExist):
        marconi.messages.get(q2, first[0], project=marconi.project)
    marconi.messages.bulk_delete(q2, first, project=marconi.project)
    marconi.messages.delete(q2, first[0], project=marconi.project)
    assert [message["body"] for message in drain(marconi, q1)[0]] == ["q1-a", "q1-b"]
    assert [message["body"] for message in drain(marconi, q2)[0]] == ["q2-a"]
    marconi.queues.delete(q2, project=marconi.project)
    assert len(drain(marconi, q1)[0]) == 2


def test_a_marker_of_one_queue_does_not_skip_messages_of_another(marconi):
    """A marker from another queue is rejected (InvalidInput) or read as the start; it never hides messages."""
    q1, q2 = marconi.new_queue(), marconi.new_queue()
    marconi.post(q1, 5)
    _, marker = drain(marconi, q1)
    posted = marconi.post(q2, 3)
    try:
        seen, _ = drain(marconi, q2, marker=marker)
    except InvalidInput as error:
        assert error.field == "marker"
        return
    assert sorted(message["id"] for message in seen) == sorted(posted)
