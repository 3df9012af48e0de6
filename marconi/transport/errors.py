"""The storage contract's errors as Zaqar answers them, and the one handler for what nobody expected.

Routes catch the errors whose meaning depends on the route (a missing queue reads as an empty one in most of
them); everything else reaches the handlers here:

=========================  ======  ==========================================================================
error                      status  note
=========================  ======  ==========================================================================
InvalidInput               400     ``description`` says what is wrong, ``field`` names the offending value
DoesNotExist               404     a missing message or claim (routes map a missing queue themselves)
MessageIsClaimed           403     deleting a claimed message without its claim id
MessageNotClaimed          400     a claim id was given, but no live claim holds the message
MessageNotClaimedBy        403     another live claim holds the message (the route checks which case it is)
MessageConflict            503     a post gave up under contention; nothing was posted: ``Retry-After``
BackendError               503     the backend failed or could not be reached
anything else              500     logged with its traceback; the answer says nothing about the internals
=========================  ======  ==========================================================================
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from marconi.storage.errors import (
    BackendError,
    DoesNotExist,
    InvalidInput,
    MessageConflict,
    MessageIsClaimed,
    MessageNotClaimed,
    MessageNotClaimedBy,
    StorageError,
)

log = logging.getLogger("marconi.transport")

#: Seconds a client is asked to wait before it posts again after a conflict.
RETRY_AFTER = 1

DELETE_TITLE = "Unable to delete"
CLAIMED = "This message is claimed; it cannot be deleted without a valid claim ID."
NO_SUCH_CLAIM = "The specified claim does not exist or has expired."
NOT_CLAIMED = "A claim was specified, but the message is not currently claimed."


def unavailable(description: str, retry_after: int | None = None) -> falcon.HTTPServiceUnavailable:
    return falcon.HTTPServiceUnavailable(
        title="Service temporarily unavailable",
        description=f"{description} Please try again in a few seconds.",
        retry_after=retry_after,
    )


def http_error(error: StorageError) -> falcon.HTTPError:
    """The HTTP answer to a storage error no route handled itself."""
    if isinstance(error, InvalidInput):
        bad = falcon.HTTPBadRequest(title="Invalid API request", description=str(error))
        bad.field = error.field  # type: ignore[attr-defined]
        return bad
    if isinstance(error, DoesNotExist):
        return falcon.HTTPNotFound(title="Not found", description=str(error))
    if isinstance(error, MessageIsClaimed):
        return falcon.HTTPForbidden(title=DELETE_TITLE, description=CLAIMED)
    if isinstance(error, MessageNotClaimed):
        return falcon.HTTPBadRequest(title=DELETE_TITLE, description=NOT_CLAIMED)
    if isinstance(error, MessageNotClaimedBy):
        return falcon.HTTPForbidden(title=DELETE_TITLE, description=CLAIMED)
    if isinstance(error, MessageConflict):
        log.warning("%s", error)
        return unavailable("No messages could be enqueued: the queue is busy; nothing was posted.", RETRY_AFTER)
    if isinstance(error, BackendError):
        log.error("%s", error)
        return unavailable("The storage backend failed or could not be reached.")
    log.error("unexpected storage error: %s", error)
    return unavailable("The storage driver failed.")


def on_storage_error(req: falcon.Request, resp: falcon.Response, error: StorageError, params: dict[str, Any]) -> None:
    raise http_error(error)


def on_unexpected(req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]) -> None:
    if isinstance(error, falcon.HTTPError):
        raise error
    log.exception("%s %s failed", req.method, req.path)
    raise falcon.HTTPInternalServerError(
        title="Internal server error", description="The request failed on the server; its log says why."
    )


def serialize(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Every error as JSON ``{"title", "description"[, "field"]}``, whatever the client accepts."""
    body = error.to_dict()
    field = getattr(error, "field", None)
    if field is not None:
        body["field"] = field
    resp.media = body
    resp.content_type = falcon.MEDIA_JSON
