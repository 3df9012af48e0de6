"""Answers in Zaqar v2's shapes: message documents with their ``href``, ``links`` to the next page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from marconi.storage import Message

PREFIX = "/v2"


def queue_path(name: str) -> str:
    return f"{PREFIX}/queues/{quote(name, safe='')}"


def message_path(queue: str, message_id: str) -> str:
    return f"{queue_path(queue)}/messages/{quote(message_id, safe='')}"


def message(queue: str, found: Message, claim_id: str | None = None) -> dict[str, Any]:
    """A message as Zaqar 23 shows it: ``id``, ``href`` (with ``?claim_id=`` while claimed), ``ttl``, ``age``,
    ``body``. python-zaqarclient builds its Message from exactly these keys and reads the claim from the href."""
    href = message_path(queue, found["id"])
    holder = claim_id or found.get("claim_id")
    if holder:
        href += "?" + urlencode({"claim_id": holder})
    return {"id": found["id"], "href": href, "ttl": found["ttl"], "age": found["age"], "body": found["body"]}


def popped(found: Message) -> dict[str, Any]:
    """A popped message: it no longer exists, so it has no ``href`` (as in Zaqar)."""
    return {"id": found["id"], "ttl": found["ttl"], "age": found["age"], "body": found["body"]}


def next_link(path: str, params: Mapping[str, Any]) -> list[dict[str, str]]:
    """``links`` holding the next page: the same query with the new marker."""
    query = {name: _text(value) for name, value in params.items() if value is not None}
    return [{"rel": "next", "href": f"{path}?{urlencode(query)}"}]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
