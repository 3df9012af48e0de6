"""Marconi storage: the driver contract, its errors, its clock, and ``load(uri)``.

A driver is found by the scheme of its URI through the ``marconi.storage`` entry points::

    from marconi import storage

    with storage.load("sqlite:///marconi.db") as driver:
        driver.queue_controller.upsert("orders", {})
        driver.message_controller.post("orders", [{"ttl": 300, "body": {"sku": 42}}], client_uuid=uuid4())
"""

from marconi.storage.base import (
    Capability,
    ClaimBase,
    ClaimInfo,
    ControllerBase,
    DriverBase,
    Message,
    MessageBase,
    Page,
    QueueBase,
    QueueEntry,
)
from marconi.storage.clock import Clock, ManualClock, SystemClock
from marconi.storage.errors import (
    BackendError,
    ClaimDoesNotExist,
    DoesNotExist,
    DriverLoadError,
    DriverNotFound,
    InvalidInput,
    MessageConflict,
    MessageDoesNotExist,
    MessageIsClaimed,
    MessageNotClaimed,
    MessageNotClaimedBy,
    QueueDoesNotExist,
    StorageError,
)
from marconi.storage.failures import ErrorPolicy, Failure
from marconi.storage.loading import installed_drivers, load
from marconi.storage.validation import ClaimTerms, Limits, NewMessage, Option

__all__ = [
    "BackendError",
    "Capability",
    "ClaimBase",
    "ClaimDoesNotExist",
    "ClaimInfo",
    "ClaimTerms",
    "Clock",
    "ControllerBase",
    "DoesNotExist",
    "DriverBase",
    "DriverLoadError",
    "DriverNotFound",
    "ErrorPolicy",
    "Failure",
    "InvalidInput",
    "Limits",
    "ManualClock",
    "Message",
    "MessageBase",
    "MessageConflict",
    "MessageDoesNotExist",
    "MessageIsClaimed",
    "MessageNotClaimed",
    "MessageNotClaimedBy",
    "NewMessage",
    "Option",
    "Page",
    "QueueBase",
    "QueueDoesNotExist",
    "QueueEntry",
    "StorageError",
    "SystemClock",
    "installed_drivers",
    "load",
]
