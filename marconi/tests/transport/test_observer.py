"""An observer following ``links`` over HTTP sees every message once, in order, while producers post over HTTP.

The workload roles of ``marconi.tests.workloads`` run unchanged against a client that speaks the HTTP API: a
list "marker" is the ``next`` link the server answered (or the first page's address), so the observer only
ever follows links. The history checker then looks for lost, duplicated, out-of-order and skipped messages,
and for claims that overlap. Nothing is timed; every role has a deadline.
"""

from __future__ import annotations

import os
import random
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from marconi.storage import MessageConflict, Page
from marconi.tests import workloads
from marconi.tests.history import check
from marconi.tests.transport.rest import Api

TIMEOUT = 60.0


class HttpQueues:
    """The parts of a driver the workload roles call, over the HTTP API (one project per role's ``project``)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.message_controller = self
        self.claim_controller = _Claims(self)

    def client(self, project: str | None, client_uuid: Any = None) -> Api:
        return self.api.other(project=project, client_id=str(client_uuid or self.api.client_id))

    def post(
        self, queue: str, messages: list[dict[str, Any]], client_uuid: Any, project: str | None = None
    ) -> list[str]:
        reply = self.client(project, client_uuid).post(f"/v2/queues/{queue}/messages", {"messages": messages})
        if reply.status == 503 and "retry-after" in reply.headers:
            raise MessageConflict(queue, project)
        assert reply.status == 201, reply
        return [href.rsplit("/", 1)[1] for href in reply.json["resources"]]

    def list(
        self, queue: str, project: str | None = None, marker: str | None = None, limit: int = 10, **flags: bool
    ) -> Page[dict[str, Any]]:
        """``marker`` is the link to follow (None: the first page); the page's limit is set on it."""
        href = (
            marker or f"/v2/queues/{queue}/messages?echo=true&include_claimed={str(flags['include_claimed']).lower()}"
        )
        parts = urlsplit(href)
        query = dict(parse_qsl(parts.query))
        query["limit"] = str(limit)
        reply = self.client(project).get(f"{parts.path}?{urlencode(query)}")
        assert reply.status == 200, reply
        links = reply.json["links"]
        return Page(reply.json["messages"], links[0]["href"] if links else href)


class _Claims:
    def __init__(self, queues: HttpQueues) -> None:
        self.queues = queues

    def create(self, queue: str, metadata: dict[str, int], project: str | None = None, limit: int = 10):
        reply = self.queues.client(project).post(f"/v2/queues/{queue}/claims", metadata, params={"limit": limit})
        if reply.status == 204:
            return None, []
        assert reply.status == 201, reply
        return reply.headers["location"].rsplit("/", 1)[1], reply.json["messages"]


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("MARCONI_TEST_SEED") or random.SystemRandom().randrange(2**31))


def test_an_observer_following_links_sees_every_message_once_in_order(api: Api, seed: int, tmp_path):
    queue, project = "observed", api.project
    roles: list[workloads.Role] = [
        workloads.Producer(
            f"producer-{i}",
            queue,
            project,
            seed=seed + i,
            client_uuid=f"00000000-0000-4000-8000-{i:012d}",
            batches=8,
            max_batch=5,
            pause=0.003,
        )
        for i in range(3)
    ]
    roles += [
        workloads.Observer("observer-0", queue, project, seed=seed + 100, max_limit=7),
        workloads.Observer("observer-1", queue, project, seed=seed + 101, max_limit=2),
        workloads.Claimer("claimer", queue, project, seed=seed + 200, max_limit=3),
    ]
    outcomes = workloads.run_threads(HttpQueues(api), roles, timeout=TIMEOUT)  # type: ignore[arg-type]
    report = check(outcomes.history)
    context = f"(MARCONI_TEST_SEED={seed})"
    if outcomes.errors or not report.ok:
        (tmp_path / "history.json").write_text(outcomes.history.to_json())
        context += f", history in {tmp_path / 'history.json'}"
    assert outcomes.errors == [], f"roles failed {context}: {outcomes.errors}"
    assert report.ok, f"{context}\n{report.summary()}"
    posted = sum(len(op.values) for op in outcomes.history if op.kind == "post" and op.outcome == "ok")
    observed = [op for op in outcomes.history if op.process == "observer-0" and op.kind == "list"]
    assert sum(len(op.values) for op in observed) == posted > 0
