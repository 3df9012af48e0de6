"""python-zaqarclient 4.x (``version=2``, ``noauth``) against ``marconi serve``, on every driver URI.

These are the calls a Zaqar user makes; each test asserts what the client hands back, so a shape the client
cannot read (an extra key in a message, a missing ``links`` entry) fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from itertools import islice

import pytest
from zaqarclient.queues.v2 import client as zaqar
from zaqarclient.queues.v2 import core
from zaqarclient.transport import errors as zaqar_errors

from marconi.tests.transport.conftest import Endpoint
from marconi.tests.transport.rest import Api


def make_client(endpoint: Endpoint, project: str) -> zaqar.Client:
    conf = {
        "auth_opts": {"backend": "noauth", "options": {"os_project_id": project}},
        "client_uuid": str(uuid.uuid4()),
    }
    return zaqar.Client(endpoint.url, version=2, conf=conf)


@pytest.fixture
def project(http_endpoint: Endpoint) -> Iterator[str]:
    name = f"zaqarclient-{uuid.uuid4().hex[:12]}"
    yield name
    Api(http_endpoint.url, project=name).cleanup()


@pytest.fixture
def client(http_endpoint: Endpoint, project: str) -> zaqar.Client:
    return make_client(http_endpoint, project)


#: The most items a test takes from a client's stream(): a server whose links never end fails instead of hanging.
MAX_STREAMED = 50


def bodies(messages) -> list[object]:
    return [message.body for message in islice(messages, MAX_STREAMED)]


def test_ping_and_health(client):
    assert client.ping() is True
    assert client.health() == {"storage_reachable": True}


def test_queue_with_metadata_stats_and_delete(client):
    queue = client.queue("orders", force_create=True)
    assert queue.metadata(force_reload=True) == {}
    assert queue.metadata(new_meta={"owner": "shop", "tier": 1}) == {"owner": "shop", "tier": 1}
    assert queue.metadata(new_meta={"owner": "warehouse"}) == {"owner": "warehouse"}  # tier removed, owner replaced
    assert client.queue("orders", auto_create=False).metadata(force_reload=True) == {"owner": "warehouse"}

    queue.post([{"ttl": 300, "body": {"sku": n}} for n in range(3)])
    stats = queue.stats["messages"]
    assert (stats["total"], stats["free"], stats["claimed"]) == (3, 3, 0)
    assert stats["oldest"]["href"].startswith("/v2/queues/orders/messages/")

    queue.delete()
    assert queue.stats["messages"] == {"claimed": 0, "free": 0, "total": 0}  # a missing queue reads as empty
    assert [q.name for q in client.queues()[0]] == []


def test_queue_listing_pages_through_links(client):
    names = [f"q{n:02d}" for n in range(5)]
    for n, name in reversed(list(enumerate(names))):
        client.queue(name, force_create=True).metadata(new_meta={"n": n})
    listing, _ = client.queues(limit=2)
    assert [q.name for q in islice(listing.stream(), MAX_STREAMED)] == names
    detailed, _ = client.queues(limit=2, detailed=True)
    assert [q.metadata() for q in islice(detailed.stream(), MAX_STREAMED)] == [
        {"n": n} for n in range(5)
    ]  # from the listing itself


def test_post_list_with_paging_and_get_by_ids(client, http_endpoint, project):
    queue = client.queue("events")  # lazy: the first post creates it
    posted = queue.post([{"ttl": 600, "body": n} for n in range(7)])
    hrefs = posted["resources"]
    assert [href.rsplit("/", 1)[0] for href in hrefs] == ["/v2/queues/events/messages"] * 7
    ids = [href.rsplit("/", 1)[1] for href in hrefs]

    assert bodies(queue.messages(limit=3)) == []  # the poster's own messages are hidden without echo
    first_page = queue.messages(limit=3, echo=True)
    assert bodies(first_page) == [0, 1, 2]
    assert bodies(queue.messages(limit=3, echo=True).stream()) == list(range(7))
    reader = make_client(http_endpoint, project).queue("events", auto_create=False)
    assert bodies(reader.messages(limit=2).stream()) == list(range(7))  # another client sees them all

    assert bodies(queue.messages(ids[4], ids[1])) == [4, 1]
    one = queue.message(ids[5])
    assert (one.id, one.body, one.ttl, one.claim_id) == (ids[5], 5, 600, None)
    queue.delete_messages(ids[0], ids[1])
    assert bodies(queue.messages(echo=True, limit=10)) == [2, 3, 4, 5, 6]
    with pytest.raises(zaqar_errors.ResourceNotFound):
        queue.message(ids[0])


def test_claim_renew_delete_under_claim_and_release(client):
    queue = client.queue("jobs")
    queue.post([{"ttl": 600, "body": n} for n in range(5)])

    claim = queue.claim(ttl=120, grace=60, limit=2)
    held = list(claim)
    assert bodies(held) == [0, 1]
    assert {message.claim_id for message in held} == {claim.id}
    other = queue.claim(ttl=120, grace=60, limit=10)
    assert bodies(other) == [2, 3, 4]  # claims are exclusive, oldest first
    assert queue.claim(ttl=120, limit=5).id is None  # nothing left: 204 (grace omitted: the client sends null)

    claim.update(ttl=300, grace=30)
    renewed = queue.claim(id=claim.id)
    assert renewed.ttl == 300 and bodies(renewed) == [0, 1]

    request, transport = client._request_and_transport()
    with pytest.raises(zaqar_errors.ForbiddenError):  # claimed: no delete without the claim id
        core.message_delete(transport, request, "jobs", held[0].id)
    held[0].delete()  # the href carries the claim id
    assert bodies(queue.claim(id=claim.id)) == [1]

    claim.delete()  # release: message 1 is eligible again
    with pytest.raises(zaqar_errors.ResourceNotFound):
        queue.claim(id=claim.id).ttl  # noqa: B018
    again = queue.claim(ttl=60, grace=60, limit=10)
    assert bodies(again) == [1]
    other.delete()
    stats = queue.stats["messages"]
    assert (stats["total"], stats["claimed"], stats["free"]) == (4, 1, 3)


def test_pop(client):
    queue = client.queue("pops")
    queue.post([{"ttl": 600, "body": n} for n in range(4)])
    popped = list(queue.pop(count=3))
    assert bodies(popped) == [0, 1, 2] and all(message.id for message in popped)
    assert bodies(queue.pop(count=3)) == [3]
    assert bodies(queue.pop(count=3)) == []
    assert queue.stats["messages"]["total"] == 0
