"""Small helpers shared by the conformance tests: each wraps one public call, so the tests read as the contract."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from marconi.storage import ClaimDoesNotExist
from marconi.tests import plugin


def listing(m: Any, queue: str, **options: Any) -> tuple[list[dict[str, Any]], str]:
    """One page of ``messages.list`` in its generator form: the items, then the marker of the next page."""
    items, marker = m.messages.list(queue, project=m.project, **options)
    return list(items), marker


def drain(
    m: Any, queue: str, marker: str | None = None, limit: int = 10, **options: Any
) -> tuple[list[dict[str, Any]], str | None]:
    """``plugin.drain`` on the harness's project (or that of anything with ``messages`` and ``project``)."""
    return plugin.drain(m.messages, queue, m.project, marker, limit, **options)


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [message["id"] for message in messages]


def bodies(messages: list[dict[str, Any]]) -> list[Any]:
    return [message["body"] for message in messages]


def stats(m: Any, queue: str) -> dict[str, Any]:
    messages: dict[str, Any] = m.queues.stats(queue, project=m.project)["messages"]
    return messages


def counts(m: Any, queue: str) -> dict[str, int]:
    """``claimed``, ``free`` and ``total`` of a queue's stats."""
    found = stats(m, queue)
    return {key: found[key] for key in ("claimed", "free", "total")}


def claim(m: Any, queue: str, ttl: int = 60, grace: int = 0, limit: int = 10) -> tuple[str | None, list[Any]]:
    made: tuple[str | None, list[Any]] = m.claims.create(
        queue, {"ttl": ttl, "grace": grace}, project=m.project, limit=limit
    )
    return made


def claimed_ids(m: Any, queue: str, claim_id: str | None) -> list[str]:
    """The ids a live claim holds, as ``claims.get`` reports them."""
    _, messages = m.claims.get(queue, claim_id, project=m.project)
    return ids(messages)


def claim_is_gone(m: Any, queue: str, claim_id: str | None) -> bool:
    try:
        m.claims.get(queue, claim_id, project=m.project)
    except ClaimDoesNotExist:
        return True
    return False


def unissued_claim_id() -> str:
    """A well-formed claim id that no driver issued."""
    return uuid.uuid4().hex


def iso(when: float) -> str:
    """The ``created`` of stats for a message posted at ``when``: UTC ISO 8601, to the second."""
    return datetime.fromtimestamp(int(when), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot(m: Any) -> dict[str, Any]:
    """Everything a caller can observe in the test's project: queues, metadata, stats, messages, claims.

    Two equal snapshots around a failed call show that the call wrote nothing.
    """
    queues, _ = m.queues.list(project=m.project, limit=100, detailed=True)
    state: dict[str, Any] = {}
    for entry in queues:
        name = entry["name"]
        messages, _ = drain(m, name, limit=100, include_claimed=True)
        claims = {}
        for claim_id in sorted({message["claim_id"] for message in messages if "claim_id" in message}):
            info, held = m.claims.get(name, claim_id, project=m.project)
            claims[claim_id] = (info, held)
        state[name] = {
            "metadata": entry.get("metadata"),
            "stats": m.queues.stats(name, project=m.project),
            "messages": messages,
            "claims": claims,
        }
    return state


@contextmanager
def scratch_projects(m: Any, *suffixes: str) -> Iterator[list[str]]:
    """Extra projects for one test (the test's project plus each suffix), emptied afterwards."""
    projects = [m.project + suffix for suffix in suffixes]
    try:
        yield projects
    finally:
        for project in projects:
            entries, _ = m.queues.list(project=project, limit=100)
            for entry in list(entries):
                m.queues.delete(entry["name"], project=project)
