"""Script replies as the hooks report them: a row is ``[number, body, created, expires, claim id ('' for none),
claim expiry, position (0 for none)]``, times as %.17g text (exact doubles)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marconi.storage.hooks import Row, Rows


def row(fields: Sequence[Any]) -> Row:
    number, body, created, expires, claim_id, claim_expires, position = fields
    return Row(
        int(number),
        str(body),
        float(created),
        float(expires),
        claim_id or None,
        float(claim_expires) if claim_id else None,
        int(position) or None,
    )


def rows(reply: Sequence[Any], skip: int = 1) -> Rows:
    """``{incarnation, ..., row...}``: the incarnation first, the rows after ``skip`` fields."""
    return Rows(int(reply[0]), [row(fields) for fields in reply[skip:]])
