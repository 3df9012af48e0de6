"""The Redis driver's URIs, checked part by part before any connection is made.

Forms::

    redis://[[user]:password@]host[:port][/db][?option=value&...]
    rediss://...                                   the same over TLS
    unix://[[user]:password@]/path/to/redis.sock[?db=N&...]

Guarantees: a URI whose scheme is not one of these, whose port is not a number from 1 to 65535, whose database
is not a whole number (named twice, differently), whose socket path is missing, or whose query string holds an
option this driver does not pass on (or a value that option cannot take) is ``InvalidInput`` naming the part.
Retries are the driver's business, so redis-py's retry options are refused, never silently obeyed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from marconi.storage.errors import InvalidInput
from marconi.storage.validation import describe

SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PORT = 6379
MAX_DB = 2**31 - 1

Parse = Callable[[str], Any]


def _number(kind: type[int] | type[float], low: float) -> Parse:
    def parse(text: str) -> Any:
        pattern = r"[0-9]{1,9}" if kind is int else r"[0-9]{1,9}(\.[0-9]{1,6})?"
        if re.fullmatch(pattern, text) is None or kind(text) < low:
            raise ValueError(text)
        return kind(text)

    return parse


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _one_of(*choices: str) -> Parse:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return parse


def _text(text: str) -> str:
    if not text:
        raise ValueError(text)
    return text


#: Query options every scheme takes, with their parsers (redis-py keyword arguments of the same names).
_COMMON: Mapping[str, Parse] = {
    "db": _number(int, 0),
    "socket_timeout": _number(float, 0.001),
    "socket_connect_timeout": _number(float, 0.001),
    "socket_keepalive": _boolean,
    "max_connections": _number(int, 1),
    "client_name": _text,
    "username": _text,
    "password": _text,
}
#: Query options of ``rediss://`` only.
_TLS: Mapping[str, Parse] = {
    "ssl_cert_reqs": _one_of("none", "optional", "required"),
    "ssl_ca_certs": _text,
    "ssl_certfile": _text,
    "ssl_keyfile": _text,
    "ssl_check_hostname": _boolean,
}


@dataclass(frozen=True)
class Target:
    """Where a URI points, and the redis-py keyword arguments it asks for (``options``)."""

    scheme: str
    host: str | None  # None for unix sockets
    port: int | None
    path: str | None  # the socket of a unix:// URI
    db: int
    db_named: bool  # the URI names a database (a cluster has only database 0)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """Host and port, or the socket path, for messages (never the password)."""
        return self.path if self.path is not None else f"{self.host}:{self.port}"


def parse(uri: str) -> Target:
    """The target of ``uri``; InvalidInput("uri", ...) naming the part that is wrong."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in SCHEMES:
        raise InvalidInput("uri", f"has scheme {describe(scheme)}; the Redis driver serves {', '.join(SCHEMES)}")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise InvalidInput("uri", "has a port that is not a number from 1 to 65535") from None
    if parts.fragment:
        raise InvalidInput("uri", f"has a fragment ({describe(parts.fragment)}), which a Redis URI cannot have")
    allowed = {**_COMMON, **(_TLS if scheme == "rediss" else {})}
    options: dict[str, Any] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True, strict_parsing=False).items():
        if key not in allowed:
            raise InvalidInput(
                "uri",
                f"has query option {describe(key)}, which {scheme} URIs do not take (known: {', '.join(allowed)})",
            )
        if len(values) != 1:
            raise InvalidInput("uri", f"has query option {key} more than once")
        try:
            options[key] = allowed[key](values[0])
        except ValueError:
            raise InvalidInput("uri", f"has {key}={describe(values[0])}, which is not a value {key} can take") from None
    if parts.username:
        options.setdefault("username", unquote(parts.username))
    if parts.password:
        options.setdefault("password", unquote(parts.password))
    db = options.pop("db", None)
    db_named = db is not None
    if scheme == "unix":
        path = unquote(parts.path)
        if parts.hostname or not path:
            raise InvalidInput("uri", "must name a socket path, as in unix:///run/redis/redis.sock")
        return Target(scheme, None, None, path, db or 0, db_named, options)
    if port is not None and not 1 <= port <= 65535:
        raise InvalidInput("uri", f"has port {port}; a port is a number from 1 to 65535")
    path = unquote(parts.path).strip("/")
    if path:
        if re.fullmatch(r"[0-9]{1,10}", path) is None or int(path) > MAX_DB:
            raise InvalidInput("uri", f"has database {describe(path)}; a database is a whole number, as in /2")
        if db is not None and db != int(path):
            raise InvalidInput("uri", f"names database {path} in its path and {db} in its query")
        db, db_named = int(path), True
    if db is not None and db > MAX_DB:
        raise InvalidInput("uri", f"has database {db}; a database is a whole number below 2**31")
    host = unquote(parts.hostname) if parts.hostname else "localhost"
    if scheme == "rediss":
        options["ssl"] = True
    return Target(scheme, host, port or DEFAULT_PORT, None, db or 0, db_named, options)
