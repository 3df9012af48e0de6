"""Keys: a queue's keys share one hash tag, and no project or queue name reaches another's keys or escapes its tag."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from ..keys import Keys, encode_project
from .conftest import open_driver, post

pytestmark = pytest.mark.driver("redis")

projects = st.none() | st.text(min_size=1, max_size=40).filter(str.isprintable)
queues = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=64)


def tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: between the first ``{`` and the first ``}`` after it."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


@given(projects, queues)
def test_every_key_of_a_queue_has_the_queues_tag_and_one_slot(project, queue):
    keys = Keys().queue(project, queue)
    assert {tag(key) for key in keys} == {f"q:{encode_project(project)}:{queue}"}
    assert all(key.count("{") == 1 and key.count("}") == 1 for key in keys)
    assert len({key_slot(key.encode()) for key in keys}) == 1


@given(projects, queues, projects, queues)
def test_two_queues_never_share_a_key(project, queue, other_project, other_queue):
    if (project, queue) != (other_project, other_queue):
        assert not set(Keys().queue(project, queue)) & set(Keys().queue(other_project, other_queue))
        assert Keys().queue_base(project, queue) != Keys().queue_base(other_project, other_queue)


@given(projects, projects)
def test_two_projects_never_share_an_index(project, other):
    if project != other:
        assert not set(Keys().index(project)) & set(Keys().index(other))


@given(projects)
def test_an_encoded_project_holds_no_brace_or_colon(project):
    encoded = encode_project(project)
    assert not set(encoded) & set("{}:*?[]\\")


def test_index_counter_and_queues_use_separate_tags():
    keys = Keys()
    assert tag(keys.incarnations()) == "incarnations"
    assert tag(keys.index("p")[0]) == "p:p"
    assert tag(keys.queue("p", "q")[0]) == "q:p:q"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a:b", "c"), ("a", "b-c")),  # a colon in a project cannot pose as the separator
        (("x}", "q"), ("x", "q")),  # nor a brace close the tag early
        (("{x}", "q"), ("%7Bx%7D", "q")),  # an encoded brace is not the brace
        (("%", "q"), ("%25", "q")),
    ],
)
def test_names_that_look_alike_are_separate_queues(driver, project, first, second):
    """Project suffixes and queue names that would collide under a careless encoding stay apart on the server."""
    (p1, q1), (p2, q2) = (project + first[0], first[1]), (project + second[0], second[1])
    try:
        for p, q, n in ((p1, q1, 2), (p2, q2, 3)):
            driver.queue_controller.upsert(q, {}, project=p)
            post(driver, q, p, n)
        assert driver.queue_controller.stats(q1, project=p1)["messages"]["total"] == 2
        assert driver.queue_controller.stats(q2, project=p2)["messages"]["total"] == 3
    finally:
        for p, q in ((p1, q1), (p2, q2)):
            driver.queue_controller.delete(q, project=p)


def test_two_prefixes_on_one_database_are_two_stores(redis_uri, clock, project):
    with open_driver(redis_uri, clock=clock, key_prefix="marconi-a") as one:
        with open_driver(redis_uri, clock=clock, key_prefix="marconi-b") as two:
            one.queue_controller.upsert("shared", {"store": "a"}, project=project)
            try:
                assert [entry["name"] for entry in two.queue_controller.list(project=project).items] == []
                two.queue_controller.upsert("shared", {"store": "b"}, project=project)
                assert one.queue_controller.get("shared", project=project) == {"store": "a"}
                two.queue_controller.delete("shared", project=project)
                assert one.queue_controller.get("shared", project=project) == {"store": "a"}
            finally:
                one.queue_controller.delete("shared", project=project)
                two.queue_controller.delete("shared", project=project)
