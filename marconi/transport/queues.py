"""Queue routes: ``/v2/queues``, ``/v2/queues/{name}``, ``/v2/queues/{name}/stats``.

Zaqar's v2 queues are lazy: a queue that was never created reads as an empty one (its metadata is ``{}``, its
stats are zero counts) and is created by the first post to it. ``PUT`` creates a queue and leaves an existing
one as it is (201 or 204); ``PATCH`` changes metadata with JSON-patch operations on ``/metadata/<key>``.
"""

from __future__ import annotations

from typing import Any

import falcon

from marconi.storage import DriverBase, QueueDoesNotExist, validation
from marconi.storage.errors import InvalidInput
from marconi.transport import bodies, formats

PATCH_MEDIA_TYPE = "application/openstack-messaging-v2.0-json-patch"

#: Zaqar's reserved metadata names. They configure Zaqar features (default TTL and delay, size limits, dead
#: letter queues, encryption, notification retries, pools) that this server does not have, so it refuses them
#: rather than store a setting that would silently have no effect.
RESERVED_METADATA = frozenset(
    {
        "_max_messages_post_size",
        "_default_message_ttl",
        "_default_message_delay",
        "_dead_letter_queue",
        "_dead_letter_queue_messages_ttl",
        "_max_claim_count",
        "_enable_encrypt_messages",
        "_retry_policy",
        "_flavor",
    }
)

#: Query parameters of ``GET /v2/queues``; Zaqar reads any other as a metadata filter, which is not served.
LIST_PARAMS = frozenset({"marker", "limit", "detailed"})


def checked_metadata(metadata: Any) -> dict[str, Any]:
    """Queue metadata the storage contract accepts and that sets no Zaqar feature this server lacks."""
    validation.queue_metadata(metadata)
    reserved = sorted(RESERVED_METADATA & set(metadata))
    if reserved:
        raise InvalidInput(f"metadata.{reserved[0]}", "is a Zaqar setting this server does not support")
    result: dict[str, Any] = metadata
    return result


class Collection:
    """``GET /v2/queues``: the project's queues by name, ``limit`` at a time, with a ``next`` link."""

    def __init__(self, driver: DriverBase) -> None:
        self.queues = driver.queue_controller

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        unknown = sorted(set(req.params) - LIST_PARAMS)
        if unknown:
            raise InvalidInput(unknown[0], "is not a parameter of this server's queue listing (no filters)")
        limit = bodies.integer(req, "limit")
        detailed = bodies.flag(req, "detailed")
        page = self.queues.list(
            project=req.context.project,
            marker=req.get_param("marker"),
            limit=validation.DEFAULT_LIMIT if limit is None else limit,
            detailed=detailed,
        )
        found = [{**entry, "href": formats.queue_path(entry["name"])} for entry in page.items]
        links = []
        if found:
            query = {"limit": limit, "detailed": req.get_param_as_bool("detailed"), "marker": page.marker}
            links = formats.next_link(req.path, query)
        resp.media = {"queues": found, "links": links}


class Item:
    """``PUT``, ``GET``, ``PATCH``, ``DELETE /v2/queues/{name}``."""

    def __init__(self, driver: DriverBase, max_metadata_body: int = validation.MAX_METADATA_SIZE) -> None:
        self.queues = driver.queue_controller
        self.max_body = max_metadata_body

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        document = bodies.read_json(req, self.max_body, required=False)
        metadata = checked_metadata({} if document is None else bodies.json_object(document, "Queue metadata"))
        project = req.context.project
        try:
            self.queues.get(name, project=project)
            created = False  # as in Zaqar, PUT leaves an existing queue's metadata alone
        except QueueDoesNotExist:
            created = self.queues.upsert(name, metadata, project=project)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_204
        resp.location = req.path

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        try:
            resp.media = self.queues.get(name, project=req.context.project)
        except QueueDoesNotExist:
            resp.media = {}  # a lazy queue that was never created

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.queues.delete(name, project=req.context.project)
        resp.status = falcon.HTTP_204

    def on_patch(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if media_type != PATCH_MEDIA_TYPE:
            raise falcon.HTTPUnsupportedMediaType(
                description=f"Accepted media type for PATCH: {PATCH_MEDIA_TYPE}.",
                headers={"Accept-Patch": PATCH_MEDIA_TYPE},
            )
        changes = bodies.read_json(req, self.max_body)
        operations = parse_patch(changes)
        project = req.context.project
        metadata = self.queues.get(name, project=project)  # a queue never created is 404 here, as in Zaqar
        for op, key, value in operations:
            if op in ("replace", "remove") and key not in metadata:
                raise falcon.HTTPConflict(
                    title="Resource conflict", description=f"Can't {op} non-existent object {key}."
                )
            if op == "remove":
                del metadata[key]
            else:
                metadata[key] = value
        self.queues.upsert(name, checked_metadata(metadata), project=project)
        resp.media = metadata


def parse_patch(changes: Any) -> list[tuple[str, str, Any]]:
    """JSON-patch operations (add, remove, replace) on ``/metadata/<key>``, as ``(op, key, value)``."""
    if not isinstance(changes, list):
        raise bodies.BadBody("Request body must be a JSON array of operation objects.")
    operations = []
    for index, change in enumerate(changes):
        field = f"patch[{index}]"
        if not isinstance(change, dict):
            raise InvalidInput(field, "must be a JSON object with op and path")
        op, path = change.get("op"), change.get("path")
        if op not in ("add", "remove", "replace"):
            raise InvalidInput(f"{field}.op", f"must be add, remove or replace, got {validation.describe(op)}")
        if not isinstance(path, str) or not path.startswith("/metadata/") or path.count("/") != 2:
            raise InvalidInput(f"{field}.path", f"must be /metadata/<key>, got {validation.describe(path)}")
        if op != "remove" and "value" not in change:
            raise InvalidInput(field, f'operation "{op}" requires a member named "value"')
        key = path.split("/", 2)[2].replace("~1", "/").replace("~0", "~")
        if not key:
            raise InvalidInput(f"{field}.path", "names no key")
        operations.append((op, key, change.get("value")))
    return operations


class Stats:
    """``GET /v2/queues/{name}/stats``: zero counts for a queue that was never created, as in Zaqar."""

    def __init__(self, driver: DriverBase) -> None:
        self.queues = driver.queue_controller

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        try:
            stats = self.queues.stats(name, project=req.context.project)
        except QueueDoesNotExist:
            stats = {"messages": {"claimed": 0, "free": 0, "total": 0}}
        counts = stats["messages"]
        for end in ("oldest", "newest"):
            if end in counts:
                entry = dict(counts[end])
                entry["href"] = formats.message_path(name, entry.pop("id"))
                counts[end] = entry
        resp.media = stats
