"""The MongoDB driver's URIs, checked part by part before any connection is made.

Guarantees: a URI that is not ``mongodb://`` or ``mongodb+srv://``, whose host list or port is malformed, whose
path names something that is not a database, whose query string holds an option pymongo does not know (or a
value it cannot take), or which asks for unacknowledged writes (``w=0``: the driver must know whether its
writes happened) is ``InvalidInput`` naming the part. pymongo's ``InvalidURI`` and ``ConfigurationError`` never
escape. A ``mongodb+srv://`` host is resolved when the client is made; a failure to resolve it is reported the
same way (see :func:`unusable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pymongo import common, uri_parser
from pymongo.errors import ConfigurationError

from marconi.storage.errors import InvalidInput
from marconi.storage.validation import describe

SCHEMES = ("mongodb", "mongodb+srv")
DEFAULT_DATABASE = "marconi"
_BAD_DATABASE_CHARACTERS = frozenset('/\\. "$*<>:|?')
_MAX_DATABASE_BYTES = 63


@dataclass(frozen=True)
class Target:
    """What a checked URI names: the database the driver keeps its collections in."""

    database: str


def unusable(part: str, detail: str) -> InvalidInput:
    return InvalidInput("uri", f"{part} {detail}")


def _known_option(name: str) -> bool:
    lowered = name.lower()
    aliases = {alias for names in common.URI_OPTIONS_ALIAS_MAP.values() for alias in names}
    return (
        lowered in common.URI_OPTIONS_VALIDATOR_MAP
        or lowered in aliases
        or lowered in common.URI_OPTIONS_DEPRECATION_MAP
    )


def _query_keys(uri: str) -> list[str]:
    _, _, rest = uri.partition("://")
    _, _, query = rest.partition("?")
    keys = []
    for pair in query.replace(";", "&").split("&"):
        if pair:
            keys.append(unquote_plus(pair.partition("=")[0]))
    return keys


def _check_database(name: str | None, collection: str | None) -> str:
    if collection is not None:
        raise unusable("database", f"{describe(f'{name}.{collection}')} contains '.'; name a database only")
    if not name:
        return DEFAULT_DATABASE
    if any(character in _BAD_DATABASE_CHARACTERS for character in name) or "\x00" in name:
        raise unusable("database", f"{describe(name)} contains a character MongoDB does not allow in a name")
    if len(name.encode()) > _MAX_DATABASE_BYTES:
        raise unusable("database", f"{describe(name)} is longer than {_MAX_DATABASE_BYTES} bytes")
    return name


def check(uri: str) -> Target:
    """The database a MongoDB URI names, every part checked (no network is used, also for ``mongodb+srv``)."""
    scheme, separator, rest = uri.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        raise unusable("scheme", f"must be one of {', '.join(s + '://' for s in SCHEMES)}, got {describe(scheme)}")
    for key in _query_keys(uri):
        if not _known_option(key):
            raise unusable("option", f"{describe(key)} is not a MongoDB connection option")
    srv = scheme.lower() == "mongodb+srv"
    hosts = rest.partition("/")[0].partition("?")[0].rpartition("@")[2]
    if srv and ("," in hosts or ":" in hosts.rpartition("]")[2]):
        raise unusable("host", "of a mongodb+srv:// URI is one name without a port")
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":") if ":" in host.rpartition("]")[2] else (host, "", "")
        if not name:
            raise unusable("host", "is missing (or the host list has an empty entry)")
        if colon and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise unusable("port", f"{describe(port)} of host {describe(name)} is not a number from 1 to 65535")
    # An SRV URI is parsed as a plain one here, so that checking it needs no DNS; its SRV-only options go too.
    plain = uri if not srv else "mongodb://" + rest
    try:
        parsed = _parse_srv(plain) if srv else uri_parser.parse_uri(plain, warn=False)
    except (ConfigurationError, ValueError, TypeError) as error:
        detail = first_line(error)
        part = next(
            (name for name in ("database", "port", "host", "user", "password") if name in detail.lower()), "option"
        )
        raise unusable(part, f"is not valid: {detail}") from None
    options = parsed["options"]
    if options.get("w") == 0:
        raise unusable(
            "option", "w=0 (unacknowledged writes) is refused: the driver must know whether a write happened"
        )
    return Target(_check_database(parsed["database"], parsed["collection"]))


_SRV_ONLY = ("srvservicename", "srvmaxhosts")


def _parse_srv(plain: str) -> dict[str, Any]:
    base, _, query = plain.partition("?")
    kept = [
        pair for pair in query.replace(";", "&").split("&") if pair and pair.partition("=")[0].lower() not in _SRV_ONLY
    ]
    return uri_parser.parse_uri(base + ("?" + "&".join(kept) if kept else ""), warn=False)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
