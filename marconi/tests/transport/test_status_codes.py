"""Every status the transport answers, over raw HTTP, on every driver URI.

Each expectation was checked against Zaqar 23 itself (its WSGI v2 resources, with its Redis store) except
where the module says otherwise: those are deliberate differences, listed in docs/http.md.
"""

from __future__ import annotations

import json
import uuid

import pytest

from marconi.tests.transport.rest import Api

PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch"


def patch(api: Api, queue: str, operations: list[dict[str, object]], media_type: str = PATCH_TYPE):
    return api.patch(f"/v2/queues/{queue}", data=json.dumps(operations).encode(), headers={"Content-Type": media_type})


# --- identity headers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Project-ID": None}, "X-Project-ID"),
        ({"X-Project-ID": ""}, "X-Project-ID"),
        ({"X-Project-ID": "p" * 257}, "X-Project-ID"),
        ({"Client-ID": None}, "Client-ID"),
        ({"Client-ID": "not-a-uuid"}, "Client-ID"),
    ],
)
@pytest.mark.parametrize("path", ["/v2/queues", "/v2/ping", "/v2/queues/q/messages"])
def test_identity_headers_are_required_under_v2(api, headers, problem, path):
    reply = api.get(path, headers=headers)
    assert reply.status == 400, reply
    assert problem in reply.json["description"]


def test_the_versions_document_needs_no_identity(api):
    reply = api.get("/", headers={"X-Project-ID": None, "Client-ID": None})
    assert reply.status == 300 and reply.json["versions"][0]["id"] == "2"


def test_a_client_that_does_not_accept_json_is_refused(api):
    assert api.get("/v2/queues", headers={"Accept": "application/xml"}).status == 406


def test_a_form_encoded_body_is_refused(api):
    reply = api.put("/v2/queues/q", data=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 400


# --- routing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/nothing", "/v2/queues/q/subscriptions", "/v2/pools", "/v2/queues/q/purge"])
def test_an_unknown_route_is_404(api, path):
    reply = api.get(path)
    assert reply.status == 404 and reply.json["title"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v2/queues/q"), ("HEAD", "/v2/queues/q"), ("PUT", "/v2/queues/q/messages"), ("POST", "/v2/ping")],
)
def test_an_unsupported_method_is_405_with_allow(api, method, path):
    reply = api.request(method, path)
    assert reply.status == 405 and "GET" in reply.headers["allow"]


def test_ping_and_health(api):
    assert api.get("/v2/ping").status == 204
    assert api.request("HEAD", "/v2/ping").status == 204
    assert api.get("/v2/health").json == {"storage_reachable": True}


# --- queues -----------------------------------------------------------------------------------------------------


def test_put_creates_then_leaves_the_queue_alone(api):
    created = api.put("/v2/queues/q", {"owner": "a"})
    assert created.status == 201 and created.headers["location"] == "/v2/queues/q"
    assert api.put("/v2/queues/q", {"owner": "b"}).status == 204  # as Zaqar: PUT does not change metadata
    assert api.get("/v2/queues/q").json == {"owner": "a"}
    assert api.put("/v2/queues/empty").status == 201  # no body: no metadata
    assert api.get("/v2/queues/empty").json == {}


def test_a_missing_queue_reads_as_an_empty_one(api):
    assert (api.get("/v2/queues/never").status, api.get("/v2/queues/never").json) == (200, {})
    stats = api.get("/v2/queues/never/stats")
    assert stats.status == 200 and stats.json == {"messages": {"claimed": 0, "free": 0, "total": 0}}
    listing = api.get("/v2/queues/never/messages")
    assert listing.status == 200 and listing.json == {"messages": [], "links": []}
    assert api.delete("/v2/queues/never").status == 204
    assert api.delete("/v2/queues/never/messages", params={"ids": "1.1"}).status == 204
    assert api.delete("/v2/queues/never/messages", params={"pop": 3}).json == {"messages": []}
    assert api.post("/v2/queues/never/claims", {"ttl": 60}).status == 204
    assert api.delete(f"/v2/queues/never/claims/{uuid.uuid4().hex}").status == 204
    assert api.get("/v2/queues").json == {"queues": [], "links": []}  # reading created nothing


def test_a_missing_message_or_claim_is_404(api):
    api.post_messages("q", ["x"])
    claim = uuid.uuid4().hex
    for reply in (
        api.get("/v2/queues/q/messages/1.999999"),
        api.get("/v2/queues/q/messages/not-an-id"),
        api.get("/v2/queues/q/messages", params={"ids": "1.999999,junk"}),
        api.get("/v2/queues/never/messages/1.1"),
        api.get(f"/v2/queues/q/claims/{claim}"),
        api.patch(f"/v2/queues/q/claims/{claim}", {"ttl": 60}),
        api.get(f"/v2/queues/never/claims/{claim}"),
        patch(api, "never", [{"op": "add", "path": "/metadata/a", "value": 1}]),
    ):
        assert reply.status == 404, reply
        assert reply.json["title"] == "Not found"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"_default_message_ttl": 60}, "metadata._default_message_ttl"),
        ({"deep": json.loads("[" * 70 + "]" * 70)}, "metadata"),
        ({"big": "x" * 70_000}, None),  # over the bound of a metadata body: 413
    ],
)
def test_bad_queue_metadata(api, metadata, field):
    reply = api.put("/v2/queues/q", metadata)
    if field is None:
        assert reply.status == 413, reply
    else:
        assert reply.status == 400 and reply.json["field"] == field, reply
    assert api.get("/v2/queues").json["queues"] == []


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"{nope", 400), (b"[1]", 400), (b"\xff\xfe", 400), (b'{"a": NaN}', 400), (b'{"a": ' + b"1" * 5000 + b"}", 400)],
)
def test_a_malformed_body_is_400(api, data, status):
    reply = api.put("/v2/queues/q", data=data, headers={"Content-Type": "application/json"})
    assert reply.status == status, reply
    assert reply.json["title"] and reply.json["description"]


def test_bad_queue_names_are_400(api):
    for name in ("bad%20name", "x" * 65, "dots.are.not.names"):
        reply = api.put(f"/v2/queues/{name}")
        assert reply.status == 400 and reply.json["field"] == "name", reply


def test_metadata_patch(api):
    api.put("/v2/queues/q", {"a": 1, "b": 2})
    reply = patch(
        api,
        "q",
        [
            {"op": "add", "path": "/metadata/c", "value": [3]},
            {"op": "replace", "path": "/metadata/a", "value": "one"},
            {"op": "remove", "path": "/metadata/b"},
            {"op": "add", "path": "/metadata/x~1y", "value": True},
        ],
    )
    assert reply.status == 200 and reply.json == {"a": "one", "c": [3], "x/y": True}
    assert api.get("/v2/queues/q").json == {"a": "one", "c": [3], "x/y": True}

    assert patch(api, "q", [{"op": "replace", "path": "/metadata/zz", "value": 1}]).status == 409
    assert patch(api, "q", [{"op": "remove", "path": "/metadata/zz"}]).status == 409
    wrong_type = patch(api, "q", [{"op": "add", "path": "/metadata/d", "value": 1}], media_type="application/json")
    assert wrong_type.status == 415 and wrong_type.headers["accept-patch"] == PATCH_TYPE
    for bad in (
        [{"op": "move", "path": "/metadata/a"}],
        [{"op": "add", "path": "/a", "value": 1}],
        [{"op": "add", "path": "/metadata/a"}],
        [{"op": "add", "path": "/metadata/_max_claim_count", "value": 3}],
        {"op": "add"},
        ["add"],
    ):
        assert patch(api, "q", bad).status == 400, bad  # type: ignore[arg-type]
    assert api.get("/v2/queues/q").json == {"a": "one", "c": [3], "x/y": True}


def test_queue_listing(api):
    for name in ("c", "a", "b"):
        api.put(f"/v2/queues/{name}", {"n": name})
    first = api.get("/v2/queues", params={"limit": 2, "detailed": "true"})
    assert first.status == 200
    assert first.json["queues"] == [
        {"name": "a", "metadata": {"n": "a"}, "href": "/v2/queues/a"},
        {"name": "b", "metadata": {"n": "b"}, "href": "/v2/queues/b"},
    ]
    [link] = first.json["links"]
    assert link["rel"] == "next"
    second = api.get(link["href"])
    assert [q["name"] for q in second.json["queues"]] == ["c"]
    third = api.get(second.json["links"][0]["href"])
    assert third.json == {"queues": [], "links": []}
    assert api.get("/v2/queues", params={"limit": 0}).status == 400
    assert api.get("/v2/queues", params={"name": "a"}).status == 400  # Zaqar's filters are not served


# --- messages ---------------------------------------------------------------------------------------------------


def test_post_answers_the_created_resources_in_input_order(api):
    reply = api.post("/v2/queues/q/messages", {"messages": [{"ttl": 300, "body": n} for n in range(3)]})
    assert reply.status == 201
    hrefs = reply.json["resources"]
    ids = [href.rsplit("/", 1)[1] for href in hrefs]
    assert hrefs == [f"/v2/queues/q/messages/{i}" for i in ids]
    assert reply.headers["location"] == f"/v2/queues/q/messages?ids={','.join(ids)}"
    assert [api.get(href).json["body"] for href in hrefs] == [0, 1, 2]
    assert api.get("/v2/queues").json["queues"][0]["name"] == "q"  # the post created the queue


def test_a_message_without_ttl_gets_zaqars_default(api):
    [message_id] = api.post_messages("q", [0])
    reply = api.post("/v2/queues/q/messages", {"messages": [{"body": "no ttl"}]})
    assert reply.status == 201
    assert api.get(reply.json["resources"][0]).json["ttl"] == 3600
    assert api.get(f"/v2/queues/q/messages/{message_id}").json["ttl"] == 300


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({}, None),
        ([{"ttl": 60, "body": 1}], None),
        ({"messages": []}, "messages"),
        ({"messages": {"ttl": 60, "body": 1}}, "messages"),
        ({"messages": [{"ttl": 60}]}, "messages[0]"),
        ({"messages": [{"ttl": 60, "body": 1}, {"ttl": 0, "body": 2}]}, "messages[1].ttl"),
        ({"messages": [{"ttl": "60", "body": 1}]}, "messages[0].ttl"),
        ({"messages": [{"ttl": 60, "body": 1, "delay": 901}]}, "messages[0].delay"),
        ({"messages": [{"ttl": 60, "body": 1, "colour": "red"}]}, "messages[0]"),
        ({"messages": [1]}, "messages[0]"),
    ],
)
def test_a_bad_post_is_400_naming_the_field_and_posts_nothing(api, document, field):
    reply = api.post("/v2/queues/q/messages", document)
    assert reply.status == 400, reply
    assert reply.json.get("field") == field
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 0


def test_a_post_over_the_size_limit_is_413(api):
    reply = api.post("/v2/queues/q/messages", {"messages": [{"ttl": 60, "body": "x" * (256 * 1024)}]})
    assert reply.status == 413 and reply.json["title"] == "Request body too large"
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 0


def test_listing_pages_with_limit_one_never_loop(api):
    """Zaqar 23 on Redis answers the first message again and again for limit=1; each page here moves on."""
    api.post_messages("q", list(range(4)))
    seen, href = [], "/v2/queues/q/messages?limit=1&echo=true"
    for _ in range(10):
        page = api.get(href).json
        seen += [message["body"] for message in page["messages"]]
        if not page["links"]:
            break
        href = page["links"][0]["href"]
    else:
        pytest.fail(f"the next links never ended; saw {seen}")
    assert seen == [0, 1, 2, 3] and page == {"messages": [], "links": []}  # an empty page links nowhere


def test_listing_filters(api):
    reader = api.other(project=api.project)
    api.post_messages("q", ["mine-0", "mine-1", "mine-2"])
    claim_id, _ = reader.claim("q", limit=1)
    listed = reader.get("/v2/queues/q/messages").json["messages"]
    assert [m["body"] for m in listed] == ["mine-1", "mine-2"]  # claimed ones left out
    with_claimed = reader.get("/v2/queues/q/messages", params={"include_claimed": "true"}).json["messages"]
    assert [m["body"] for m in with_claimed] == ["mine-0", "mine-1", "mine-2"]  # Zaqar 23 on Redis: 503
    assert with_claimed[0]["href"].endswith(f"?claim_id={claim_id}")
    assert set(with_claimed[0]) == {"id", "href", "ttl", "age", "body"}
    assert api.get("/v2/queues/q/messages").json["messages"] == []  # the poster's own, without echo
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"marker": "junk"}, {"echo": "maybe"}):
        assert reader.get("/v2/queues/q/messages", params=params).status == 400, params


def test_get_by_ids(api):
    ids = api.post_messages("q", ["a", "b", "c"])
    reply = api.get("/v2/queues/q/messages", params={"ids": f"{ids[2]},junk,{ids[0]}"})
    assert reply.status == 200 and [m["body"] for m in reply.json["messages"]] == ["c", "a"]
    assert api.get("/v2/queues/q/messages", params={"ids": ",".join(["1.1"] * 101)}).status == 400


def test_bulk_delete_and_pop(api):
    ids = api.post_messages("q", list(range(6)))
    claim_id, _ = api.claim("q", limit=1)  # holds message 0
    reply = api.delete("/v2/queues/q/messages", params={"ids": ",".join(ids[:3])})
    assert reply.status == 204
    left = api.get("/v2/queues/q/messages", params={"echo": "true", "include_claimed": "true"}).json["messages"]
    assert [m["body"] for m in left] == [0, 3, 4, 5]  # the claimed one is left alone without its claim id
    unknown = api.delete("/v2/queues/q/messages", params={"ids": ids[0], "claim_ids": uuid.uuid4().hex})
    assert unknown.status == 400
    mine = api.delete("/v2/queues/q/messages", params={"ids": f"{ids[0]},{ids[3]}", "claim_ids": claim_id})
    assert mine.status == 204
    popped = api.delete("/v2/queues/q/messages", params={"pop": 1})
    assert popped.status == 200 and [(m["body"], set(m)) for m in popped.json["messages"]] == [
        (3, {"id", "ttl", "age", "body"})
    ]
    assert [m["body"] for m in api.delete("/v2/queues/q/messages", params={"pop": 5}).json["messages"]] == [4, 5]
    for params in ({}, {"ids": ids[0], "pop": 1}, {"pop": 0}, {"pop": 101}, {"ids": "a", "claim_ids": "b,c"}):
        assert api.delete("/v2/queues/q/messages", params=params).status == 400, params


def test_deleting_a_claimed_message(api):
    """403 without a claim id or with another live claim's; 400 with an id that names no live claim."""
    api.post_messages("q", ["held", "other", "free"])
    mine, [held] = api.claim("q", limit=1)
    theirs, _ = api.claim("q", limit=1)
    path = f"/v2/queues/q/messages/{held['id']}"
    assert api.delete(path).status == 403
    assert api.delete(path, params={"claim_id": theirs}).status == 403
    for no_claim in (uuid.uuid4().hex, "junk"):
        reply = api.delete(path, params={"claim_id": no_claim})
        assert reply.status == 400 and "does not exist" in reply.json["description"], reply
    free = api.get("/v2/queues/q/messages", params={"echo": "true"}).json["messages"][0]
    not_claimed = api.delete(f"/v2/queues/q/messages/{free['id']}", params={"claim_id": mine})
    assert not_claimed.status == 400 and "not currently claimed" in not_claimed.json["description"]
    assert api.get(path).status == 200
    assert api.delete(path, params={"claim_id": mine}).status == 204
    assert api.get(path).status == 404
    assert api.delete(path, params={"claim_id": mine}).status == 204  # missing is not an error


# --- claims -----------------------------------------------------------------------------------------------------


def test_claim_lifecycle(api):
    api.post_messages("q", [0, 1, 2])
    empty_body = api.post("/v2/queues/q/claims", params={"limit": 1})  # Zaqar's defaults: ttl 300, grace 60
    assert empty_body.status == 201
    location = empty_body.headers["location"]
    claim_id = location.rsplit("/", 1)[1]
    assert location == f"/v2/queues/q/claims/{claim_id}"
    [message] = empty_body.json["messages"]
    assert message["href"] == f"/v2/queues/q/messages/{message['id']}?claim_id={claim_id}"

    got = api.get(location)
    assert got.status == 200
    assert (got.json["ttl"], got.json["href"], [m["body"] for m in got.json["messages"]]) == (300, location, [0])
    assert api.patch(location, {"ttl": 600}).status == 204  # grace omitted: Zaqar's default
    assert api.get(location).json["ttl"] == 600
    assert api.post("/v2/queues/q/claims", {"ttl": 60, "grace": None}, params={"limit": 5}).status == 201
    assert api.post("/v2/queues/q/claims", {"ttl": 60}).status == 204  # nothing left to claim
    assert api.delete(location).status == 204
    assert api.get(location).status == 404
    assert api.delete(location).status == 204  # releasing twice is not an error


@pytest.mark.parametrize(
    ("document", "params"),
    [
        ({"ttl": 0}, {}),
        ({"ttl": 43_201}, {}),
        ({"ttl": 60, "grace": -1}, {}),
        ({"ttl": "60"}, {}),
        ({"ttl": 60, "colour": "red"}, {}),
        ([60], {}),
        ({"ttl": 60}, {"limit": 0}),
        ({"ttl": 60}, {"limit": "x"}),
    ],
)
def test_bad_claims_are_400(api, document, params):
    api.post_messages("q", [0])
    assert api.post("/v2/queues/q/claims", document, params=params).status == 400
    assert api.get("/v2/queues/q/stats").json["messages"]["claimed"] == 0


def test_bad_renewals_are_400(api):
    api.post_messages("q", [0])
    claim_id, _ = api.claim("q")
    path = f"/v2/queues/q/claims/{claim_id}"
    assert api.patch(path).status == 400  # a renewal needs a body
    assert api.patch(path, {"ttl": 0}).status == 400
    assert api.patch(path, data=b"{", headers={"Content-Type": "application/json"}).status == 400
    assert api.patch(path, {"ttl": 60, "grace": 60}).status == 204
