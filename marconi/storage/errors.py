"""The errors every storage driver raises.

Callers catch these classes, never a backend's own exceptions: a driver translates what its backend raises into
one of them before it leaves the driver.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error a marconi storage driver raises on purpose."""


class InvalidInput(StorageError, ValueError):
    """A caller-supplied value broke the contract's rules; nothing was written.

    ``field`` names the offending parameter (``"messages[2].ttl"``, ``"marker"``, ...).
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid {field}: {problem}")


class DoesNotExist(StorageError, LookupError):
    """Base class of the "not found" errors."""


class QueueDoesNotExist(DoesNotExist):
    def __init__(self, name: str, project: str | None) -> None:
        self.name = name
        self.project = project
        super().__init__(f"queue {name!r} does not exist in project {project!r}")


class MessageDoesNotExist(DoesNotExist):
    def __init__(self, message_id: str, queue: str, project: str | None) -> None:
        self.message_id = message_id
        self.queue = queue
        self.project = project
        super().__init__(f"message {message_id!r} does not exist in queue {queue!r} of project {project!r}")


class ClaimDoesNotExist(DoesNotExist):
    def __init__(self, claim_id: str, queue: str, project: str | None) -> None:
        self.claim_id = claim_id
        self.queue = queue
        self.project = project
        super().__init__(f"claim {claim_id!r} does not exist in queue {queue!r} of project {project!r}")


class MessageIsClaimed(StorageError):
    """The message is held by a live claim; only that claim's id may delete it."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        super().__init__(f"message {message_id!r} is claimed; delete it with its claim id")


class MessageNotClaimedBy(StorageError):
    """The claim id given does not hold the message."""

    def __init__(self, message_id: str, claim_id: str) -> None:
        self.message_id = message_id
        self.claim_id = claim_id
        super().__init__(f"message {message_id!r} is not held by claim {claim_id!r}")


class MessageNotClaimed(MessageNotClaimedBy):
    """A claim id was given, but no live claim holds the message (its claim expired, was released, or never
    held it): whoever deletes it now may race another consumer."""

    def __init__(self, message_id: str, claim_id: str) -> None:
        super().__init__(message_id, claim_id)
        self.args = (f"message {message_id!r} is held by no live claim; claim {claim_id!r} does not hold it",)


class MessageConflict(StorageError):
    """A post could not get its turn in time; nothing was posted. Safe to retry (a service answers 503)."""

    def __init__(self, queue: str, project: str | None, detail: str = "") -> None:
        self.queue = queue
        self.project = project
        message = f"post to queue {queue!r} of project {project!r} gave up under contention; nothing was posted"
        super().__init__(f"{message} ({detail})" if detail else message)


class BackendError(StorageError):
    """The backend failed or could not be reached; the call may or may not have taken effect."""


class DriverNotFound(StorageError, LookupError):
    """No installed driver serves the URI's scheme."""

    def __init__(self, scheme: str, installed: list[str]) -> None:
        self.scheme = scheme
        self.installed = installed
        names = ", ".join(installed) if installed else "none"
        super().__init__(f"no marconi storage driver for scheme {scheme!r}; installed: {names}")


class DriverLoadError(StorageError, ImportError):
    """A driver is registered but could not be imported (usually a missing extra)."""
