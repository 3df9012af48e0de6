"""Validation and normalisation of every caller-supplied value, in one place.

The base controllers call these before any driver hook runs, so a driver only ever sees values that meet the
contract: names of the right alphabet, whole-second TTLs in range, JSON already serialised. Each failure raises
:class:`~marconi.storage.errors.InvalidInput` naming the field, and nothing has been written.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from marconi.storage import tokens
from marconi.storage.clock import Clock, SystemClock
from marconi.storage.errors import InvalidInput

# Upper bounds from the contract; the ones marked "configurable" may be changed per driver through Limits.
DEFAULT_MAX_MESSAGE_TTL = 1_209_600  # 14 days (configurable)
DEFAULT_MAX_POST_SIZE = 256 * 1024  # serialized bytes per posted batch (configurable)
MAX_METADATA_SIZE = 64 * 1024  # serialized bytes of queue metadata
MAX_CLAIM_TTL = 43_200  # 12 hours
MAX_CLAIM_GRACE = 43_200
MAX_DELAY = 900  # 15 minutes
MAX_LIMIT = 100  # messages or queues per page, messages per claim or pop
DEFAULT_LIMIT = 10
MAX_IDS = 100  # ids per bulk_get or bulk_delete
MAX_PROJECT_LENGTH = 256
MAX_JSON_DEPTH = 64  # nesting of bodies and metadata; deeper input would exhaust the parser's stack

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Limits:
    """The configurable bounds of one driver instance."""

    max_message_ttl: int = DEFAULT_MAX_MESSAGE_TTL
    max_post_size: int = DEFAULT_MAX_POST_SIZE

    def __post_init__(self) -> None:
        for name in ("max_message_ttl", "max_post_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidInput(name, f"must be a positive whole number, got {describe(value)}")


class NewMessage(NamedTuple):  # immutable, and made five times faster than a frozen dataclass: one per message
    """One message of a post, validated: ``body`` is its JSON text."""

    ttl: int
    delay: int
    body: str


@dataclass(frozen=True)
class ClaimTerms:
    """A claim's lease: ``ttl`` seconds, and ``grace`` seconds more of message life."""

    ttl: int
    grace: int


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def describe(value: object) -> str:
    """A short, safe description of any value for an error message: never raises, never huge."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__} that cannot be shown"
    if not isinstance(text, str):
        return f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def whole_number(value: object, field: str, low: int, high: int) -> int:
    if not _is_int(value):
        raise InvalidInput(field, f"must be a whole number of seconds or items, got {describe(value)}")
    assert isinstance(value, int)
    number = int(value)
    if not low <= number <= high:
        raise InvalidInput(field, f"must be between {low} and {high}, got {describe(number)}")
    return number


def project(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("project", f"must be None or a string, got {describe(value)}")
    if not 1 <= len(value) <= MAX_PROJECT_LENGTH:
        raise InvalidInput("project", f"must be 1 to {MAX_PROJECT_LENGTH} characters long")
    if not value.isprintable():
        raise InvalidInput("project", "must contain printable characters only")
    return value


def queue_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str) or _QUEUE_NAME.fullmatch(value) is None:
        raise InvalidInput(field, f"must be 1 to 64 characters of A-Z a-z 0-9 _ -, got {describe(value)}")
    return value


def optional_queue_name(value: object, field: str) -> str | None:
    return None if value is None else queue_name(value, field)


def limit(value: object, field: str = "limit") -> int:
    return whole_number(value, field, 1, MAX_LIMIT)


def flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, f"must be True or False, got {describe(value)}")
    return value


def _check_json(value: object, field: str) -> None:
    """Accept exactly what JSON round-trips unchanged; iterative, so hostile nesting cannot crash it."""
    if type(value) is dict:  # the usual body, an object of strings and integers, is accepted in one pass
        for key, child in value.items():
            kind = type(child)
            if type(key) is not str or (kind is not str and kind is not int and kind is not bool and child is not None):
                break
        else:
            return
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(field, f"is nested deeper than {MAX_JSON_DEPTH} levels")
        if item is None or isinstance(item, (bool, int, str)):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(field, "is not JSON: NaN and infinities have no JSON form")
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise InvalidInput(field, f"is not JSON: object keys must be strings, got {describe(key)}")
                stack.append((child, depth + 1))
        else:
            raise InvalidInput(field, f"is not JSON: {type(item).__name__} values have no JSON form")


_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
# ``JSONEncoder.encode`` makes a new C encoder on every call, half the cost of a short body: this one is made once.
# It skips the cycle check: ``_check_json`` has refused anything nested past MAX_JSON_DEPTH, and so every cycle.
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_encode: Callable[[object], str] = _JSON.encode  # where Python has no C encoder
if _C_ENCODER is not None:
    _CHUNKS = _C_ENCODER(None, _JSON.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False)

    def _encode(value: object) -> str:
        return "".join(_CHUNKS(value, 0))


def to_json(value: object, field: str) -> str:
    """Serialise a JSON value to compact ASCII text, or raise naming ``field``."""
    _check_json(value, field)
    try:
        return _encode(value)
    except ValueError:  # an integer with more digits than Python converts to text (sys.get_int_max_str_digits)
        raise InvalidInput(field, "holds an integer too long to write as JSON text") from None


_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in its __init__, not declared


def from_json(text: str | bytes) -> Any:
    """The value of stored JSON text, as ``json.loads`` gives it.

    Text this module wrote (compact, nothing around the value) is scanned directly, which skips ``json.loads``'s
    whitespace handling: a third of the cost of a short body. Anything else takes ``json.loads``, errors included.
    """
    if type(text) is str:
        try:
            value, end = _SCAN(text, 0)
        except (StopIteration, ValueError):  # not a value where it starts: json.loads says why
            end = -1
        if end == len(text):
            return value
    return json.loads(text)


def queue_metadata(value: object, field: str = "metadata") -> str:
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be a JSON object (a dict), got {describe(value)}")
    text = to_json(value, field)
    if len(text) > MAX_METADATA_SIZE:
        raise InvalidInput(field, f"is {len(text)} bytes serialized; at most {MAX_METADATA_SIZE} are allowed")
    return text


#: Canonical forms of the UUID texts seen last: a process serves few clients, each calling again and again.
_CANONICAL_UUIDS: dict[str, str] = {}
_CANONICAL_UUIDS_KEPT = 1024


def client_uuid(value: object, field: str = "client_uuid") -> str:
    """A UUID, given as ``uuid.UUID`` or text; returned in canonical text form."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and len(value) <= 64:
        known = _CANONICAL_UUIDS.get(value)
        if known is not None:
            return known
        try:
            canonical = str(uuid.UUID(value))
        except ValueError:
            pass
        else:
            if len(_CANONICAL_UUIDS) >= _CANONICAL_UUIDS_KEPT:
                _CANONICAL_UUIDS.clear()
            _CANONICAL_UUIDS[value] = canonical
            return canonical
    raise InvalidInput(field, f"must be a UUID, got {describe(value)}")


def optional_client_uuid(value: object, field: str = "client_uuid") -> str | None:
    return None if value is None else client_uuid(value, field)


_MESSAGE_KEYS = frozenset({"ttl", "body", "delay"})
_MESSAGE_REQUIRED = frozenset({"ttl", "body"})
#: What a message adds to its serialized batch besides its body and numbers: ``{"ttl":,"delay":,"body":},``.
_MESSAGE_FRAME = len('{"ttl":,"delay":,"body":},')


def _refuse_message_keys(message: Mapping[Any, Any], field: str) -> None:
    missing = {"ttl", "body"} - message.keys()
    if missing:
        raise InvalidInput(field, f"lacks {', '.join(sorted(missing))}")
    unknown = set(message.keys()) - _MESSAGE_KEYS
    raise InvalidInput(field, f"has unknown keys {', '.join(sorted(map(describe, unknown)))}")


def messages(value: object, limits: Limits) -> list[NewMessage]:
    """A non-empty batch of ``{'ttl', 'body'[, 'delay']}``; one bad message refuses the whole batch."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidInput("messages", "must be a list of {'ttl': ..., 'body': ...} objects")
    batch: list[NewMessage] = []
    size = 2  # the brackets of the serialized batch
    max_ttl, max_size = limits.max_message_ttl, limits.max_post_size
    for index, message in enumerate(value):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise InvalidInput(f"messages[{index}]", f"must be a dict with 'ttl' and 'body', got {describe(message)}")
        keys = message.keys()
        if not _MESSAGE_REQUIRED <= keys <= _MESSAGE_KEYS:
            _refuse_message_keys(message, f"messages[{index}]")
        ttl = message["ttl"]
        if type(ttl) is not int or not 1 <= ttl <= max_ttl:  # exactly an int in range: the common case, at once
            ttl = whole_number(ttl, f"messages[{index}].ttl", 1, max_ttl)
        delay = message.get("delay", 0)
        if type(delay) is not int or not 0 <= delay <= MAX_DELAY:
            delay = whole_number(delay, f"messages[{index}].delay", 0, MAX_DELAY)
        body = to_json(message["body"], f"messages[{index}].body")
        size += len(body) + len(str(ttl)) + len(str(delay)) + _MESSAGE_FRAME
        if size > max_size:
            raise InvalidInput("messages", f"the batch exceeds {max_size} bytes serialized")
        batch.append(NewMessage(ttl, delay, body))
    if not batch:
        raise InvalidInput("messages", "must hold at least one message")
    return batch


def claim_terms(value: object, field: str = "metadata") -> ClaimTerms:
    """``{'ttl': s, 'grace': s}``; grace may be omitted (0)."""
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be a dict with 'ttl' and optionally 'grace', got {describe(value)}")
    if "ttl" not in value:
        raise InvalidInput(field, "lacks ttl")
    unknown = set(value.keys()) - {"ttl", "grace"}
    if unknown:
        raise InvalidInput(field, f"has unknown keys {', '.join(sorted(map(describe, unknown)))}")
    ttl = whole_number(value["ttl"], f"{field}.ttl", 1, MAX_CLAIM_TTL)
    grace = whole_number(value.get("grace", 0), f"{field}.grace", 0, MAX_CLAIM_GRACE)
    return ClaimTerms(ttl=ttl, grace=grace)


def text(value: object, field: str) -> str:
    """An opaque token's type check; its form is the driver's business (malformed means "not found")."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {describe(value)}")
    return value


def message_ref(value: object, field: str = "message_id") -> tuple[int, int] | None:
    """A message id as ``(queue incarnation, number)``; ``None`` when malformed (it names no message)."""
    return tokens.decode_pair(text(value, field))


def message_refs(value: object, field: str = "message_ids") -> list[tuple[int, int]]:
    """Distinct well-formed ids, in the order given; malformed ones name no message and are dropped."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidInput(field, "must be a list of message ids")
    refs: list[tuple[int, int]] = []
    for index, item in enumerate(value):
        if index >= MAX_IDS:
            raise InvalidInput(field, f"holds more than {MAX_IDS} ids")
        ref = message_ref(item, f"{field}[{index}]")
        if ref is not None and ref not in refs:
            refs.append(ref)
    return refs


def message_marker(value: object, field: str = "marker") -> tuple[int, int] | None:
    """A message-list marker as ``(queue incarnation, position)``; ``None`` starts at the head."""
    if value is None:
        return None
    ref = tokens.decode_pair(text(value, field))
    if ref is None:
        raise InvalidInput(field, f"is not a marker this driver issued: {describe(value)}")
    return ref


def claim_id(value: object, field: str = "claim_id") -> str | None:
    """A claim id; ``None`` when malformed (it names no claim)."""
    token = text(value, field)
    return token if tokens.is_claim_id(token) else None


# --- driver options and URIs ------------------------------------------------------------------------------------

MAX_URI_LENGTH = 4096


def positive_seconds(value: object, field: str, maximum: float = 86_400.0) -> float:
    """A finite number of seconds, more than 0 and at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(field, f"must be a number of seconds, got {describe(value)}")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not (math.isfinite(seconds) and 0 < seconds <= maximum):
        raise InvalidInput(field, f"must be more than 0 and at most {maximum:g} seconds, got {describe(value)}")
    return seconds


def clock(value: object, field: str = "clock") -> Clock:
    """Anything with a ``now()`` method returning seconds since the epoch; None means the system clock."""
    if value is None:
        return SystemClock()
    if isinstance(value, type) or not callable(getattr(value, "now", None)):
        raise InvalidInput(
            field, f"must have a now() method (e.g. marconi.storage.ManualClock()), got {describe(value)}"
        )
    try:
        now = value.now()  # type: ignore[attr-defined]
    except Exception as error:
        raise InvalidInput(field, f"now() raised {type(error).__name__}: {describe(str(error))}") from None
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise InvalidInput(field, f"now() must return seconds since the epoch as a number, got {describe(now)}")
    assert isinstance(value, Clock)
    return value


def limits(value: object, field: str = "limits") -> Limits:
    """A :class:`Limits`; None means the contract's defaults."""
    if value is None:
        return Limits()
    if not isinstance(value, Limits):
        raise InvalidInput(field, f"must be a marconi.storage.Limits, got {describe(value)}")
    return value


def whole(low: int, high: int) -> Callable[[object, str], int]:
    """An option check: a whole number from ``low`` to ``high``."""

    def check(value: object, field: str) -> int:
        if not _is_int(value):
            raise InvalidInput(field, f"must be a whole number, got {describe(value)}")
        assert isinstance(value, int)
        if not low <= value <= high:
            raise InvalidInput(field, f"must be between {low} and {high}, got {describe(value)}")
        return int(value)

    return check


def boolean(value: object, field: str) -> bool:
    """An option check: True or False."""
    return flag(value, field)


@dataclass(frozen=True)
class Option:
    """One option a driver takes: ``check(value, name)`` validates and normalises it (raising InvalidInput)."""

    check: Callable[[object, str], Any]
    default: Any
    help: str


def options(given: Mapping[str, object], accepted: Mapping[str, Option], owner: str) -> dict[str, Any]:
    """Every accepted option: checked when given, else its default. An unknown option is InvalidInput naming it."""
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise InvalidInput(unknown[0], f"is not an option of {owner}; it takes: {', '.join(sorted(accepted))}")
    return {
        name: option.check(given[name], name) if name in given else option.default for name, option in accepted.items()
    }


def uri(value: object, field: str = "uri") -> str:
    """A URI as text: a string of printable characters, at most 4096 of them. Its parts are the driver's."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string like 'sqlite:///marconi.db', got {describe(value)}")
    if len(value) > MAX_URI_LENGTH:
        raise InvalidInput(field, f"is longer than {MAX_URI_LENGTH} characters")
    if not value.isprintable():
        raise InvalidInput(field, "contains a control character (a NUL byte, a newline, ...)")
    return value


_CREDENTIALS = re.compile(r"(?P<scheme>^[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


def redacted(uri: str) -> str:
    """``uri`` safe to log or show: a password in it becomes ``***``."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)
