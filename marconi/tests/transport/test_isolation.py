"""One project never reads or changes another's queues, messages or claims through any route, even with a
queue of the same name and the other project's ids in hand (Zaqar 23's Redis store fails exactly this)."""

from __future__ import annotations

from marconi.tests.transport.rest import Api


def test_project_b_cannot_reach_project_a_by_id(api: Api):
    a, b = api, api.other()
    a.put("/v2/queues/shared", {"owner": "a"})
    a_ids = a.post_messages("shared", ["a-0", "a-1", "a-2"])
    a_claim, _ = a.claim("shared", limit=1)  # holds a-0
    b_ids = b.post_messages("shared", ["b-0"])

    # Ids are opaque: one of a's might also name a message of b's (never one of a's messages).
    for message_id in a_ids:
        reply = b.get(f"/v2/queues/shared/messages/{message_id}")
        assert reply.status == 404 or reply.json["body"] == "b-0", reply
    by_ids = b.get("/v2/queues/shared/messages", params={"ids": ",".join(a_ids)})
    assert by_ids.status == 404 or [m["body"] for m in by_ids.json["messages"]] == ["b-0"], by_ids
    assert b.get(f"/v2/queues/shared/claims/{a_claim}").status == 404
    assert b.patch(f"/v2/queues/shared/claims/{a_claim}", {"ttl": 60}).status == 404

    # What b sees of the queue is its own.
    assert b.get("/v2/queues/shared").json == {}
    listed = b.get("/v2/queues/shared/messages", params={"echo": "true", "include_claimed": "true"}).json
    assert [m["body"] for m in listed["messages"]] == ["b-0"]
    assert b.get("/v2/queues/shared/stats").json["messages"]["total"] == 1
    assert [m["body"] for m in b.delete("/v2/queues/shared/messages", params={"pop": 10}).json["messages"]] == ["b-0"]

    # Deletes with a's ids and claim change nothing of a's (b's queue is empty now: they find nothing).
    assert b.delete(f"/v2/queues/shared/messages/{a_ids[1]}").status == 204
    assert b.delete(f"/v2/queues/shared/messages/{a_ids[0]}", params={"claim_id": a_claim}).status == 204
    assert b.delete("/v2/queues/shared/messages", params={"ids": ",".join(a_ids)}).status == 204
    assert b.delete(f"/v2/queues/shared/claims/{a_claim}").status == 204
    assert b.post("/v2/queues/shared/claims", {"ttl": 60}).status == 204
    assert [q["name"] for q in b.get("/v2/queues").json["queues"]] == ["shared"]
    assert b.delete("/v2/queues/shared").status == 204

    # a's queue is as it was: metadata, every message, the claim still holding a-0.
    assert a.get("/v2/queues/shared").json == {"owner": "a"}
    everything = a.get("/v2/queues/shared/messages", params={"echo": "true", "include_claimed": "true"}).json
    assert [m["body"] for m in everything["messages"]] == ["a-0", "a-1", "a-2"]
    held = a.get(f"/v2/queues/shared/claims/{a_claim}").json["messages"]
    assert [m["body"] for m in held] == ["a-0"]
    assert a.get(f"/v2/queues/shared/messages/{b_ids[0]}").status == 404
