"""Key names of the Redis driver: every key of one queue in one hash slot, no name able to reach another's keys.

Guarantees:

- All keys of a queue share the hash tag ``{q:<project>:<queue>}``, so one script can touch all of them on a Redis
  Cluster; a project's queue index shares ``{p:<project>}``; the incarnation counter is ``{incarnations}``.
- The project is percent-encoded (every byte of its UTF-8 form outside ``A-Z a-z 0-9 _ . - ~`` becomes ``%XX``,
  ``%`` included), an injective encoding whose output holds no ``{``, ``}`` or ``:``; queue names are of that
  alphabet already. So two different (project, queue) pairs never share a key, and no name can close a hash tag
  early or reach into another tag. Project None is encoded as the empty string, which no caller can name.
- The prefix (option ``key_prefix``) may hold no brace or glob character, so it cannot change the hash tag and
  ``SCAN`` patterns built from it match only this driver's keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from marconi.storage.errors import InvalidInput
from marconi.storage.hooks import Project
from marconi.storage.validation import describe

DEFAULT_PREFIX = "marconi"
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: A queue's keys, in the order every queue script receives them as KEYS (see ``lib.lua``).
QUEUE_KEYS = (
    "q",  # hash: inc (incarnation), meta (metadata JSON), pos (last position), num (last number)
    "b",  # hash: number -> body JSON
    "s",  # hash: number -> packed state (created, expires, position, claim id, claim expiry, client)
    "v",  # zset: visible messages, scored by position
    "e",  # zset: visible messages no claim is known to hold, scored by position
    "c",  # zset: messages taken by a claim, scored by the claim's expiry
    "x",  # zset: every message, scored by its expiry
    "d",  # zset: delayed messages not yet given a position, scored by when they are due
    "dx",  # zset: the same delayed messages, scored by their expiry
    "h",  # hash: claim id -> packed claim (ttl, created, expires, numbers)
    "k",  # zset: claim ids, scored by the claim's expiry
)


def key_prefix(value: object, field: str = "key_prefix") -> str:
    """The ``key_prefix`` option: 1-64 characters of ``A-Z a-z 0-9 _ . : -``."""
    if not isinstance(value, str) or _PREFIX.fullmatch(value) is None:
        raise InvalidInput(field, f"must be 1-64 characters of A-Z a-z 0-9 _ . : -, got {describe(value)}")
    return value


def encode_project(project: Project) -> str:
    return "" if project is None else quote(project, safe="_-")


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def queue_base(self, project: Project, name: str) -> str:
        return f"{self.prefix}:{{q:{encode_project(project)}:{name}}}"

    def queue(self, project: Project, name: str) -> list[str]:
        """The queue's keys, in ``QUEUE_KEYS`` order."""
        return self.from_base(self.queue_base(project, name))

    @staticmethod
    def from_base(base: str) -> list[str]:
        return [f"{base}:{suffix}" for suffix in QUEUE_KEYS]

    def queue_pattern(self) -> str:
        """A ``SCAN`` pattern matching the metadata hash (``q``) of every queue under this prefix."""
        return f"{self.prefix}:{{q:*}}:q"

    @staticmethod
    def base_of(queue_hash: str) -> str:
        """The base of a queue's keys, from the name of its ``q`` hash."""
        return queue_hash.removesuffix(":q")

    def index(self, project: Project) -> list[str]:
        """The project's queue index: names (a zset scored 0, ordered by name) and their incarnations (a hash)."""
        base = f"{self.prefix}:{{p:{encode_project(project)}}}"
        return [f"{base}:names", f"{base}:incs"]

    def incarnations(self) -> str:
        """The counter every queue's incarnation is drawn from (a key of its own slot)."""
        return f"{self.prefix}:{{incarnations}}"
