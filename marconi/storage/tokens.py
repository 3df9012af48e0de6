"""Opaque tokens: message ids and markers made of a few non-negative integers.

A token names the queue incarnation it belongs to, so an id or marker kept from a deleted queue never reaches
the messages of a queue created later under the same name. Parsing never raises and never lets a value that a
64-bit signed column cannot hold through: anything malformed comes back as ``None``.
"""

from __future__ import annotations

import re
import uuid

MAX_PART = 2**63 - 1

_PART = r"(0|[1-9][0-9]{0,18})"
_PAIR = re.compile(rf"{_PART}\.{_PART}")
_CLAIM = re.compile(r"[0-9a-f]{32}")


def encode_pair(first: int, second: int) -> str:
    return f"{first}.{second}"


def decode_pair(token: str) -> tuple[int, int] | None:
    """``(first, second)`` for a well-formed token, else ``None``."""
    match = _PAIR.fullmatch(token)
    if match is None:
        return None
    first, second = int(match.group(1)), int(match.group(2))
    if first > MAX_PART or second > MAX_PART:
        return None
    return first, second


def new_claim_id() -> str:
    """A fresh, unguessable claim id; never reused."""
    return uuid.uuid4().hex


def is_claim_id(token: str) -> bool:
    return _CLAIM.fullmatch(token) is not None
