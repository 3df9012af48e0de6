"""Message routes: ``/v2/queues/{name}/messages`` and ``/v2/queues/{name}/messages/{id}``.

A post to a queue that was never created creates it (Zaqar's lazy queues); listing one answers an empty page,
getting a message of it is 404, deleting from it or popping it is not an error.
"""

from __future__ import annotations

from typing import Any

import falcon

from marconi.storage import (
    ClaimDoesNotExist,
    DoesNotExist,
    DriverBase,
    MessageNotClaimed,
    MessageNotClaimedBy,
    QueueDoesNotExist,
    validation,
)
from marconi.storage.errors import InvalidInput
from marconi.transport import bodies, errors, formats

#: A message posted without ``ttl`` lives this long (Zaqar's default_message_ttl).
DEFAULT_MESSAGE_TTL = 3600


class Collection:
    """``POST``, ``GET``, ``DELETE /v2/queues/{name}/messages``."""

    def __init__(self, driver: DriverBase) -> None:
        self.queues = driver.queue_controller
        self.messages = driver.message_controller
        self.max_body = driver.limits.max_post_size

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        document = bodies.read_json(req, self.max_body)
        if not isinstance(document, dict) or "messages" not in document:
            raise falcon.HTTPBadRequest(
                title="Invalid API request", description="No messages were found in the request body."
            )
        batch = document["messages"]
        if isinstance(batch, list):
            batch = [{"ttl": DEFAULT_MESSAGE_TTL, **item} if isinstance(item, dict) else item for item in batch]
        ids = self._post(req, name, batch)
        resp.status = falcon.HTTP_201
        resp.location = f"{req.path}?ids={','.join(ids)}"
        resp.media = {"resources": [formats.message_path(name, message_id) for message_id in ids]}

    def _post(self, req: falcon.Request, name: str, batch: Any) -> list[str]:
        project, client = req.context.project, req.context.client_id
        try:
            return self.messages.post(name, batch, client, project=project)
        except QueueDoesNotExist:
            pass
        # Lazy creation. The contract's upsert would replace metadata a concurrent PUT just stored, so look first.
        try:
            self.queues.get(name, project=project)
        except QueueDoesNotExist:
            self.queues.upsert(name, {}, project=project)
        return self.messages.post(name, batch, client, project=project)  # deleted again meanwhile: 404

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        project = req.context.project
        ids = bodies.id_list(req, "ids")
        if ids is not None:
            try:
                found = self.messages.bulk_get(name, ids, project=project)
            except QueueDoesNotExist:
                found = []
            if not found:
                raise falcon.HTTPNotFound(title="Not found", description=f"No messages with these ids in {name!r}.")
            resp.media = {"messages": [formats.message(name, message) for message in found]}
            return
        limit = bodies.integer(req, "limit")
        echo = bodies.flag(req, "echo")
        include_claimed = bodies.flag(req, "include_claimed")
        try:
            page = self.messages.list(
                name,
                project=project,
                marker=req.get_param("marker"),
                limit=validation.DEFAULT_LIMIT if limit is None else limit,
                echo=echo,
                client_uuid=req.context.client_id,
                include_claimed=include_claimed,
            )
        except QueueDoesNotExist:
            resp.media = {"messages": [], "links": []}
            return
        shown = [formats.message(name, message) for message in page.items]
        links = []
        if shown:  # as in Zaqar: an empty page has no next link, so python-zaqarclient's stream() ends there
            query = {
                "limit": limit,
                "echo": req.get_param_as_bool("echo"),
                "include_claimed": req.get_param_as_bool("include_claimed"),
                "marker": page.marker,
            }
            links = formats.next_link(req.path, query)
        resp.media = {"messages": shown, "links": links}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        ids = bodies.id_list(req, "ids")
        pop = bodies.integer(req, "pop")
        if pop is not None:
            pop = validation.limit(pop, "pop")
        if ids is not None and pop is not None:
            raise InvalidInput("pop", "cannot be given together with ids")
        if ids is None and pop is None:
            raise InvalidInput("ids", 'the request needs either "ids" or "pop"')
        project = req.context.project
        if pop is not None:
            try:
                taken = self.messages.pop(name, pop, project=project)
            except QueueDoesNotExist:
                taken = []
            resp.media = {"messages": [formats.popped(message) for message in taken]}
            return
        claim_ids = bodies.id_list(req, "claim_ids")
        if claim_ids is not None and len(set(claim_ids)) > 1:
            raise InvalidInput("claim_ids", "takes one claim id: the messages of one claim are deleted at a time")
        try:
            self.messages.bulk_delete(name, ids or [], project=project, claim=claim_ids[0] if claim_ids else None)
        except ClaimDoesNotExist:
            raise falcon.HTTPBadRequest(title=errors.DELETE_TITLE, description=errors.NO_SUCH_CLAIM) from None
        resp.status = falcon.HTTP_204


class Item:
    """``GET``, ``DELETE /v2/queues/{name}/messages/{message_id}`` (``claim_id`` for a claimed message)."""

    def __init__(self, driver: DriverBase) -> None:
        self.messages = driver.message_controller
        self.claims = driver.claim_controller

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str, message_id: str) -> None:
        resp.media = formats.message(name, self.messages.get(name, message_id, project=req.context.project))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str, message_id: str) -> None:
        project, claim = req.context.project, req.get_param("claim_id")
        try:
            self.messages.delete(name, message_id, project=project, claim=claim)
        except MessageNotClaimed:
            raise  # 400: no live claim holds it
        except MessageNotClaimedBy:
            # Another live claim holds it: 403 if the id given names a live claim too, 400 if it names none.
            assert claim is not None
            if not self._claim_is_live(name, claim, project):
                raise falcon.HTTPBadRequest(title=errors.DELETE_TITLE, description=errors.NO_SUCH_CLAIM) from None
            raise
        resp.status = falcon.HTTP_204

    def _claim_is_live(self, queue: str, claim: str, project: str) -> bool:
        try:
            self.claims.get(queue, claim, project=project)
        except DoesNotExist:
            return False
        return True
