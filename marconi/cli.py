"""The ``marconi`` command: list drivers, run the garbage collector, run the conformance suite.

    marconi drivers [--json]
    marconi gc URI [--interval SECONDS] [--once]      (also installed as ``marconi-gc``)
    marconi check URI [URI ...] [-- PYTEST-ARGS]
    marconi serve URI [--host 127.0.0.1 --port 8888] [--option NAME=VALUE ...]   (the Zaqar v2 HTTP API)
    marconi bench [URI ...] [OPTIONS]                (see marconi bench --help)
    marconi verify URI [OPTIONS] | --check FILE      (a Jepsen-style run with faults; see marconi verify --help)

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
from marconi.storage import StorageError, installed_drivers, load, validation
from marconi.storage.base import MAX_GC_INTERVAL
from marconi.storage.errors import DriverLoadError, DriverNotFound, InvalidInput
from marconi.transport import command as serve_command

USAGE_ERROR = 2


class _OneLine(logging.Formatter):
    """Log records as one line each: a library's traceback (a pool that failed to reset a killed connection, say)
    becomes its last line, so an operator's terminal shows what happened, not a stack."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}".replace("\n", " ")
            record.args = None
        return super().format(record)


def _logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in ("stevedore", "sqlalchemy"):  # their INFO is not an operator's business
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


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
    _logging(args.verbose)
    with load(args.uri) as driver:
        if args.once:
            collector.once(driver)  # a failed pass raises: the command fails
            return 0
        stop = threading.Event()
        with collector.stop_on_signals(stop):
            collector.run(driver, stop, interval=args.interval)
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        import pytest  # only this subcommand needs it
    except ImportError:
        raise DriverLoadError("marconi check runs the suite with pytest: pip install 'marconi[testing]'") from None
    for uri in args.uris:  # one clear line for a URI that cannot work, before a thousand tests fail on it
        with load(uri):
            pass
    pytest_args = ["-p", "marconi.tests.plugin", "--pyargs", "marconi.tests.conformance", "-p", "no:cacheprovider"]
    for uri in args.uris:
        pytest_args += ["--marconi-uri", uri]
    return int(pytest.main([*pytest_args, "-q", *args.pytest_args]))


def _serve(args: argparse.Namespace) -> int:
    _logging(args.verbose)
    return serve_command.run(args)


def _bench(args: argparse.Namespace) -> int:
    try:
        from marconi_benchmarks import cli as benchmarks  # only this subcommand needs it
    except ImportError:
        raise DriverLoadError("marconi bench needs the benchmarks: pip install 'marconi[bench]'") from None
    return int(benchmarks.main(args.bench_args))


def _verify(args: argparse.Namespace) -> int:
    from marconi.tests.verify import command as verify  # the suite's module: loaded only for this subcommand

    return verify.main(args, args.parser)


def _interval(text: str) -> float:
    try:
        return validation.positive_seconds(float(text), "--interval", MAX_GC_INTERVAL)
    except (ValueError, OverflowError) as error:  # InvalidInput is a ValueError
        problem = error.problem if isinstance(error, InvalidInput) else f"must be a number of seconds, got {text!r}"
        raise argparse.ArgumentTypeError(problem) from None


def _gc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", help="driver URI, e.g. sqlite:///marconi.db")
    parser.add_argument(
        "--interval", type=_interval, default=None, help="seconds between passes (default: the driver's gc_interval)"
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
    check.set_defaults(run=_check, pytest_args=[])  # extra pytest arguments follow a --

    serve = commands.add_parser("serve", help="serve a driver over HTTP with OpenStack Zaqar's v2 API")
    serve_command.add_arguments(serve)
    serve.set_defaults(run=_serve)

    bench = commands.add_parser("bench", help="benchmark drivers against raw floors and peers", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="see marconi bench --help")
    bench.set_defaults(run=_bench)

    verify = commands.add_parser(
        "verify", help="run producers, observers and consumers with faults against a URI and check the history"
    )
    from marconi.tests.verify.command import add_arguments

    add_arguments(verify)
    verify.set_defaults(run=_verify, parser=verify)
    return parser


def _dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if hasattr(args, "pytest_args"):
        args.pytest_args = extra
    elif hasattr(args, "bench_args"):
        args.bench_args = extra
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # every argument after it, options and "--" included, is the benchmark's own
        return _dispatch(build_parser(), ["bench", "--", *argv[1:]])
    return _dispatch(build_parser(), argv)


def gc_main(argv: Sequence[str] | None = None) -> int:
    """``marconi-gc URI``: the collector on its own."""
    parser = argparse.ArgumentParser(prog="marconi-gc", description="remove expired messages and claims until stopped")
    _gc_arguments(parser)
    return _dispatch(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
