"""What a request carries, read with bounds: JSON bodies, query parameters, the two identity headers.

Everything here turns a malformed request into a Falcon HTTP error (400, 413) with a JSON title and
description; nothing reads more than its bound, and nothing is passed on that the storage contract would not
validate again itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

import falcon

from marconi.storage import validation
from marconi.storage.errors import InvalidInput

#: Bound of a body that carries a claim's terms (a few small numbers).
MAX_CLAIM_BODY = 4 * 1024

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


class BadBody(falcon.HTTPBadRequest):
    """A body that is not the JSON document the route takes."""

    def __init__(self, description: str) -> None:
        super().__init__(title="Invalid request body", description=description)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(req: falcon.Request, limit: int, *, required: bool = True) -> Any:
    """The request body as JSON, at most ``limit`` bytes (413 beyond); ``None`` when empty and not required."""
    if req.content_length is not None and req.content_length > limit:
        raise falcon.HTTPContentTooLarge(
            title="Request body too large", description=f"this route takes at most {limit} bytes of body"
        )
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise falcon.HTTPContentTooLarge(
            title="Request body too large", description=f"this route takes at most {limit} bytes of body"
        )
    if not data.strip():
        if required:
            raise BadBody("Request body can not be empty.")
        return None
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # bad UTF-8, bad JSON, NaN, an integer of thousands of digits, deep nesting
        raise BadBody("Request body could not be parsed.") from None


def json_object(document: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise BadBody(f"{what} must be a JSON object.")
    return document


def integer(req: falcon.Request, name: str) -> int | None:
    """A whole-number query parameter, or None when absent; its range is the contract's to check."""
    text = req.get_param(name)
    if text is None:
        return None
    if _INTEGER.fullmatch(text) is None:
        raise InvalidInput(name, f"must be a whole number, got {validation.describe(text)}")
    return int(text)


def flag(req: falcon.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter ("true"/"false", as Falcon reads them)."""
    value = req.get_param_as_bool(name)
    return default if value is None else bool(value)


def id_list(req: falcon.Request, name: str) -> list[str] | None:
    """A comma-separated list parameter (repeating the parameter also works); None when absent."""
    values = req.get_param_as_list(name)
    if values is None:
        return None
    items = [item for value in values for item in value.split(",") if item]
    return items or None
