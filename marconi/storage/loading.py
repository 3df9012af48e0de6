"""Finding drivers: stevedore entry points in the ``marconi.storage`` namespace, one per URI scheme.

The core never imports a driver. ``load(uri)`` takes the URI's scheme (the part before ``://``), finds the entry
point of that name and instantiates the driver class it names with the URI and the options. A scheme with a
``+suffix`` is looked up whole first (``mongodb+srv`` is a scheme of its own) and otherwise without the suffix,
which then names a dialect (``postgresql+psycopg://`` loads ``postgresql``).
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from typing import Any

from stevedore import DriverManager
from stevedore.exception import NoMatches

from marconi.storage import validation
from marconi.storage.base import DriverBase
from marconi.storage.errors import DriverLoadError, DriverNotFound, InvalidInput

NAMESPACE = "marconi.storage"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9.-]*)(\+[A-Za-z0-9_.-]+)?://")


def scheme_of(uri: object, registered: frozenset[str] | None = None) -> str:
    """The entry-point name a URI selects: its scheme lower-cased, the whole of it when ``registered`` (default:
    the installed entry-point names) has it, else without its ``+dialect`` suffix."""
    text = validation.uri(uri)
    match = _SCHEME.match(text)
    if match is None:
        raise InvalidInput("uri", f"has no scheme (expected 'scheme://...'): {validation.describe(text)}")
    base, suffix = match.group(1).lower(), (match.group(2) or "").lower()
    if suffix:
        names = frozenset(installed_names()) if registered is None else registered
        if base + suffix in names:
            return base + suffix
    return base


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=NAMESPACE))


def installed_names() -> list[str]:
    """Every entry-point name in the namespace, sorted, without importing any driver."""
    return sorted({entry_point.name for entry_point in _entry_points()})


def driver_class(name: str) -> type[DriverBase]:
    """The driver class registered under ``name``. DriverNotFound or DriverLoadError otherwise."""
    installed = installed_names()
    if name not in installed:
        raise DriverNotFound(name, installed)
    try:
        manager: DriverManager[Any] = DriverManager(NAMESPACE, name)
    except NoMatches:  # uninstalled between the two looks
        raise DriverNotFound(name, installed_names()) from None
    except Exception as error:  # an import error, or an entry point naming something that is not there
        raise DriverLoadError(
            f"the marconi storage driver {name!r} is installed but cannot be imported: {error} "
            f"(is its extra installed? e.g. pip install 'marconi[{name}]')"
        ) from error
    cls = manager.driver
    if not (isinstance(cls, type) and issubclass(cls, DriverBase)):
        raise DriverLoadError(f"entry point {name!r} of {NAMESPACE!r} names {cls!r}, which is not a DriverBase")
    return cls


def load(uri: str, **options: Any) -> DriverBase:
    """The driver for ``uri``, instantiated with ``options`` (e.g. ``clock=``, ``limits=``)."""
    return driver_class(scheme_of(uri))(uri, **options)


@dataclass(frozen=True)
class InstalledDriver:
    """What ``marconi drivers`` reports of one driver class."""

    name: str
    schemes: tuple[str, ...]
    capabilities: frozenset[str]
    target: str
    error: str | None = None


def installed_drivers() -> list[InstalledDriver]:
    """One entry per driver class, with every name it is registered under; broken ones carry their error."""
    by_target: dict[str, list[str]] = {}
    for entry_point in _entry_points():
        by_target.setdefault(entry_point.value, []).append(entry_point.name)
    drivers = []
    for target, names in sorted(by_target.items()):
        try:
            cls = driver_class(names[0])
        except (DriverLoadError, DriverNotFound) as error:
            drivers.append(InstalledDriver(names[0], tuple(sorted(names)), frozenset(), target, str(error)))
            continue
        canonical = cls.name or names[0]
        schemes = tuple(sorted(name for name in names if name != canonical or name in cls.schemes))
        drivers.append(InstalledDriver(canonical, schemes, cls.CAPABILITIES, target))
    return sorted(drivers, key=lambda driver: driver.name)
