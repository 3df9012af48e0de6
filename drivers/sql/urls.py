"""The SQL driver's URIs: SQLAlchemy URLs of SQLite, PostgreSQL and MariaDB/MySQL, checked part by part.

Guarantees: a URI that is not one of these, whose port is not a number from 1 to 65535, or whose query string
holds an option this driver does not pass on (or a value that option cannot take) is ``InvalidInput`` naming
the part, before any connection is made. A URI naming no DBAPI gets an installed one; none installed is
``DriverLoadError`` naming the extra to install.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL

from marconi.storage.errors import DriverLoadError, InvalidInput
from marconi.storage.validation import describe

BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")

#: The DBAPI to use when a URI names none, by backend: SQLAlchemy's default first, then the one our extras install.
_DBAPIS: dict[str, tuple[tuple[str, str], ...]] = {
    "postgresql": (("psycopg2", "psycopg2"), ("psycopg", "psycopg")),
    "mysql": (("mysqldb", "MySQLdb"), ("pymysql", "pymysql")),
    "mariadb": (("mysqldb", "MySQLdb"), ("pymysql", "pymysql")),
}
_EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb", "sqlite": "sqlite"}

Check = Callable[[str], bool]


def _number(text: str) -> bool:
    return re.fullmatch(r"[0-9]{1,6}", text) is not None


def _one_of(*choices: str) -> Check:
    return lambda text: text in choices


def _anything(text: str) -> bool:
    return True


#: Query options passed on to libpq (psycopg 3 or psycopg2), with what each may be.
_POSTGRESQL: Mapping[str, Check] = {
    "sslmode": _one_of("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "sslrootcert": _anything,
    "sslcert": _anything,
    "sslkey": _anything,
    "sslcrl": _anything,
    "connect_timeout": _number,
    "application_name": _anything,
    "options": _anything,
    "target_session_attrs": _one_of("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "keepalives": _one_of("0", "1"),
    "keepalives_idle": _number,
    "keepalives_interval": _number,
    "keepalives_count": _number,
    "host": _anything,  # a socket directory
}
#: Query options passed on to PyMySQL / mysqlclient. The character set must be utf8mb4: names are Unicode.
_MYSQL: Mapping[str, Check] = {
    "charset": _one_of("utf8mb4"),
    "connect_timeout": _number,
    "read_timeout": _number,
    "write_timeout": _number,
    "unix_socket": _anything,
    "ssl_ca": _anything,
    "ssl_cert": _anything,
    "ssl_key": _anything,
    "ssl_verify_cert": _one_of("true", "false"),
    "ssl_verify_identity": _one_of("true", "false"),
}
_QUERY: Mapping[str, Mapping[str, Check]] = {
    "postgresql": _POSTGRESQL,
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "sqlite": {},
}


def missing_dbapi(backend: str, detail: str) -> DriverLoadError:
    extra = _EXTRAS.get(backend, "all")
    return DriverLoadError(
        f"no usable DBAPI for {backend!r} URIs ({detail}); install one with: pip install 'marconi[{extra}]'"
    )


def resolve(uri: str) -> URL:
    """The SQLAlchemy URL for ``uri``, every part checked, naming an installed DBAPI when the URI names none."""
    try:
        url = sa.make_url(uri)
    except exc.ArgumentError as error:
        raise InvalidInput("uri", f"is not a SQLAlchemy database URL: {error}") from None
    except ValueError:  # the port: SQLAlchemy's int() of it
        raise InvalidInput("uri", "has a port that is not a number from 1 to 65535") from None
    backend = url.get_backend_name()
    if backend not in BACKENDS:
        raise InvalidInput("uri", f"names {backend!r}; the SQL driver serves {', '.join(BACKENDS)}")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise InvalidInput("uri", f"has port {url.port}; a port is a number from 1 to 65535")
    allowed = _QUERY[backend]
    for key, value in url.query.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        if key not in allowed:
            known = ", ".join(sorted(allowed)) if allowed else "none"
            raise InvalidInput(
                "uri", f"has query option {describe(key)}, which {backend} URIs do not take (known: {known})"
            )
        for one in values:
            if not allowed[key](one):
                raise InvalidInput("uri", f"has {key}={describe(one)}, which is not a value {key} can take")
    if "+" not in url.drivername and backend in _DBAPIS:
        for driver, module in _DBAPIS[backend]:
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=f"{backend}+{driver}")
        raise missing_dbapi(backend, f"none of {', '.join(m for _, m in _DBAPIS[backend])} is installed")
    return url


def kind_of(backend: str) -> str:
    """``sqlite``, ``postgresql``, or ``mysql`` for MySQL and MariaDB alike."""
    return "mysql" if backend in ("mysql", "mariadb") else backend


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
