"""What the base classes and a driver's hooks hand each other: requests in, backend facts out.

A hook never sees raw caller input and never mints a token or reads the clock. The base validates every
argument, computes every absolute time (expiry, visibility, lease end) from its one reading of the clock, and
mints claim ids; a hook stores and finds, and reports what it found as numbers, positions and rows. The base
turns those into the contract's answers: ids and markers, ``ttl`` and ``age``, the ``claim_id`` of live claims
only, the next marker of a page, and the errors of a delete.

Names used throughout:

incarnation
    A queue's identity, a positive integer never reused for the same store: a queue deleted and created again
    gets a new one, so ids and markers of the old queue never reach the new one's messages.
number
    A message's identity within its incarnation (the id is ``incarnation.number``). Never reused.
position
    A message's place in marker order within its incarnation, given when it becomes visible (a delayed message
    has none until it is due). Positions only grow, and visibility is prefix-closed in position order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

Project = str | None
MessageRef = tuple[int, int]  # (incarnation, number): where a message id points


@dataclass(slots=True)  # not frozen: one is made per message read, and a frozen one costs five times as much
class Row:
    """One stored message, as a hook reads it (treated as read-only: the base makes a new one to change it).

    ``claim_id`` and ``claim_expires`` are the last claim that took the message, live or not: the base shows the
    claim only while ``claim_expires > now``. ``position`` is needed from list hooks only.
    """

    number: int
    body: str  # JSON text, as the base handed it over
    created: float
    expires: float
    claim_id: str | None = None
    claim_expires: float | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class Rows:
    """Messages of one incarnation of a queue."""

    incarnation: int
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Listed:
    """A page as a list hook read it.

    ``last_position``: every message with a position up to this one had been made visible (committed) when the
    page was read, e.g. the queue's position counter read before the page or atomically with it. A short page
    moves the marker to it, so filtered messages never stall an observer.
    """

    incarnation: int
    rows: list[Row]
    last_position: int


class Outgoing(NamedTuple):  # immutable, and made five times faster than a frozen dataclass: one per message
    """One message of a post: ``body`` JSON text, dead from ``expires``, visible from ``visible_at``."""

    body: str
    expires: float
    visible_at: float
    delayed: bool  # visible_at is later than the post: it takes no position until it is due


@dataclass(frozen=True, slots=True)
class PostRequest:
    queue: str
    project: Project
    client: str  # the poster's client UUID, canonical text (what ``echo`` filters on)
    messages: list[Outgoing]
    now: float

    @property
    def visible(self) -> int:
        """How many of the batch take a position at once."""
        return sum(1 for message in self.messages if not message.delayed)

    @property
    def first_due(self) -> float | None:
        """When the earliest delayed message of the batch becomes due, if any."""
        return min((m.visible_at for m in self.messages if m.delayed), default=None)


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a post put its batch: the queue's incarnation and each message's number, in input order."""

    incarnation: int
    numbers: list[int]


@dataclass(frozen=True, slots=True)
class ListRequest:
    queue: str
    project: Project
    after: int  # a position: list strictly after it (0: from the head)
    limit: int
    hide_client: str | None  # leave out this client's messages (None: hide nothing)
    include_claimed: bool
    now: float


@dataclass(frozen=True, slots=True)
class MessageDelete:
    """Delete one message: unclaimed if ``claim_id`` is None, else only while that live claim holds it."""

    queue: str
    project: Project
    ref: MessageRef
    claim_id: str | None
    now: float


@dataclass(frozen=True, slots=True)
class Holder:
    """Why a delete hook left a message in place: the claim stored on it as it is now."""

    claim_id: str | None
    claim_expires: float | None


@dataclass(frozen=True, slots=True)
class BulkDelete:
    """Delete those of ``refs`` not held by a live claim, or, given ``claim_id``, those that live claim holds."""

    queue: str
    project: Project
    refs: list[MessageRef]
    claim_id: str | None
    now: float


@dataclass(frozen=True, slots=True)
class BulkDeleted:
    """How many messages a bulk delete removed; with a claim, whether that claim is live (may be True unchecked
    when any message was removed, since only a live claim can have held them)."""

    deleted: int
    claim_live: bool = True


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Take up to ``limit`` of the oldest eligible messages for a new claim.

    The claim's lease ends at ``expires``; each message taken must live at least until ``message_floor``
    (lease end plus grace).
    """

    queue: str
    project: Project
    claim_id: str
    ttl: int
    expires: float
    message_floor: float
    limit: int
    now: float


@dataclass(frozen=True, slots=True)
class Renewal:
    """Renew a live claim: its lease becomes ``ttl`` ending at ``expires``; its messages live until at least
    ``message_floor``."""

    queue: str
    project: Project
    claim_id: str
    ttl: int
    expires: float
    message_floor: float
    now: float


@dataclass(frozen=True, slots=True)
class StoredClaim:
    ttl: int
    created: float
    expires: float


@dataclass(frozen=True, slots=True)
class ClaimRead:
    """A claim as found in its queue: ``claim`` None when it is not there (or no longer live)."""

    incarnation: int
    claim: StoredClaim | None
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """What ``stats`` needs: counts of unexpired messages, and the ends in position order among visible ones."""

    incarnation: int
    claimed: int  # under a live claim
    free: int  # visible and not under a live claim
    total: int  # every unexpired message, delayed ones too
    oldest: Row | None
    newest: Row | None
