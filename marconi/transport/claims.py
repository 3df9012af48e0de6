"""Claim routes: ``/v2/queues/{name}/claims`` and ``/v2/queues/{name}/claims/{claim_id}``."""

from __future__ import annotations

from typing import Any

import falcon

from marconi.storage import DriverBase, QueueDoesNotExist
from marconi.transport import bodies, formats

#: Zaqar's defaults for a claim's terms the request leaves out.
DEFAULT_CLAIM_TTL = 300
DEFAULT_CLAIM_GRACE = 60


def terms(document: Any) -> dict[str, Any]:
    """A claim's ``{"ttl", "grace"}`` with Zaqar's defaults for what is absent.

    ``null`` counts as absent: python-zaqarclient sends ``"grace": null`` when its caller gives no grace (Zaqar
    answers that with 400). Other keys are left in for the contract to refuse, naming them.
    """
    given = {} if document is None else bodies.json_object(document, "Claim metadata")
    return {
        **given,
        "ttl": DEFAULT_CLAIM_TTL if given.get("ttl") is None else given["ttl"],
        "grace": DEFAULT_CLAIM_GRACE if given.get("grace") is None else given["grace"],
    }


class Collection:
    """``POST /v2/queues/{name}/claims?limit=N``: 201 with the messages claimed, 204 when none is eligible."""

    def __init__(self, driver: DriverBase) -> None:
        self.claims = driver.claim_controller

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        metadata = terms(bodies.read_json(req, bodies.MAX_CLAIM_BODY, required=False))
        limit = bodies.integer(req, "limit")
        options = {} if limit is None else {"limit": limit}
        try:
            claim_id, messages = self.claims.create(name, metadata, project=req.context.project, **options)
        except QueueDoesNotExist:
            claim_id, messages = None, []  # a lazy queue that was never created has nothing to claim
        if claim_id is None or not messages:
            resp.status = falcon.HTTP_204
            return
        resp.status = falcon.HTTP_201
        resp.location = f"{req.path}/{claim_id}"
        resp.media = {"messages": [formats.message(name, message, claim_id) for message in messages]}


class Item:
    """``GET``, ``PATCH`` (renew), ``DELETE`` (release) ``/v2/queues/{name}/claims/{claim_id}``."""

    def __init__(self, driver: DriverBase) -> None:
        self.claims = driver.claim_controller

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str, claim_id: str) -> None:
        info, messages = self.claims.get(name, claim_id, project=req.context.project)
        resp.media = {
            "age": info["age"],
            "ttl": info["ttl"],
            "href": req.path,
            "messages": [formats.message(name, message, claim_id) for message in messages],
        }

    def on_patch(self, req: falcon.Request, resp: falcon.Response, name: str, claim_id: str) -> None:
        metadata = terms(bodies.read_json(req, bodies.MAX_CLAIM_BODY))
        self.claims.update(name, claim_id, metadata, project=req.context.project)
        resp.status = falcon.HTTP_204

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str, claim_id: str) -> None:
        self.claims.delete(name, claim_id, project=req.context.project)
        resp.status = falcon.HTTP_204
