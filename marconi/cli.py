"""The ``marconi`` command: list drivers, run the garbage collector, run the conformance suite.

    marconi drivers [--json]
    marconi gc URI [--interval SECONDS] [--once]      (also installed as ``marconi-gc``)
    marconi check URI [URI ...] [-- PYTEST-ARGS]

Exit codes: 0 success, 1 a failure of the work itself (a failed check, an unreachable backend), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Sequence

from marconi import __version__
from marconi import gc as collector
from marconi.storage import StorageError, installed_drivers, load
from marconi.storage.errors import DriverLoadError, DriverNotFound, InvalidInput

USAGE_ERROR = 2


def _drivers(args: argparse.Namespace) -> int:
    drivers = installed_drivers()
    if args.json:
        rows = [
            {
                "name": d.name,
                "schemes": list(d.schemes),
                "capabilities": sorted(d.capabilities),
                "entry_point": d.target,
                "error": d.error,
            }
            for d in drivers
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not drivers:
        print("no marconi storage drivers are installed")
        return 1
    table = [("DRIVER", "SCHEMES", "CAPABILITIES")]
    for d in drivers:
        detail = f"unavailable: {d.error}" if d.error else " ".join(sorted(d.capabilities))
        table.append((d.name, " ".join(d.schemes) or "-", detail))
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    for name, schemes, detail in table:
        print(f"{name:<{widths[0]}}  {schemes:<{widths[1]}}  {detail}")
    return 0


def _gc(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s marconi-gc: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    with load(args.uri) as driver, collector.stop_on_signals(stop):
        collector.run(driver, stop, interval=args.interval, once=args.once)
    return 0


def _check(args: argparse.Namespace) -> int:
    import pytest  # only this subcommand needs it

    pytest_args = ["--pyargs", "marconi.tests.conformance", "-p", "no:cacheprovider", "-q"]
    for uri in args.uris:
        pytest_args += ["--marconi-uri", uri]
    return int(pytest.main([*pytest_args, *args.pytest_args]))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", help="driver URI, e.g. sqlite:///marconi.db")
    parser.add_argument(
        "--interval", type=_positive, default=None, help="seconds between passes (default: the driver's gc_interval)"
    )
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.set_defaults(run=_gc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marconi", description="marconi storage drivers")
    parser.add_argument("--version", action="version", version=f"marconi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    drivers = commands.add_parser("drivers", help="list the installed drivers with their schemes and capabilities")
    drivers.add_argument("--json", action="store_true", help="print JSON instead of a table")
    drivers.set_defaults(run=_drivers)

    _gc_arguments(commands.add_parser("gc", help="remove expired messages and claims periodically until stopped"))

    check = commands.add_parser("check", help="run the conformance suite against driver URIs")
    check.add_argument("uris", nargs="+", metavar="URI", help="driver URIs to check")
    check.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments")
    check.set_defaults(run=_check)
    return parser


def _dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if hasattr(args, "pytest_args"):
        args.pytest_args = [*args.pytest_args, *extra]
    elif extra:
        parser.error(f"unexpected arguments after --: {' '.join(extra)}")
    try:
        return int(args.run(args))
    except (DriverNotFound, DriverLoadError, InvalidInput) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except StorageError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return _dispatch(build_parser(), argv)


def gc_main(argv: Sequence[str] | None = None) -> int:
    """``marconi-gc URI``: the collector on its own."""
    parser = argparse.ArgumentParser(prog="marconi-gc", description="remove expired messages and claims until stopped")
    _gc_arguments(parser)
    return _dispatch(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
