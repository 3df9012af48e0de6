"""``marconi serve URI``: its arguments and its run, importable without the ``http`` extra.

    marconi serve URI [--host 127.0.0.1] [--port 8888] [--option NAME=VALUE ...] [--threads N] [--no-gc]

``--option`` passes a driver option (repeatable): ``--option table_prefix=http_`` or
``--option conflict_timeout=2``. VALUE is read as JSON when it parses as JSON (numbers, ``true``, ``false``,
``null``) and as text otherwise.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from marconi.storage.errors import DriverLoadError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
DEFAULT_THREADS = 8


def option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` as ``(name, value)``: the value as JSON when it parses, else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 1 to 65535, got {text!r}")
    return int(text)


def _threads(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 256:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 256, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("uri", help="driver URI, e.g. sqlite:///marconi.db or memory://")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--option",
        dest="options",
        type=option,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a driver option, e.g. table_prefix=http_ (repeatable; VALUE is JSON when it parses as JSON)",
    )
    parser.add_argument(
        "--threads", type=_threads, default=DEFAULT_THREADS, help=f"requests served at once ({DEFAULT_THREADS})"
    )
    parser.add_argument(
        "--no-gc", dest="gc", action="store_false", help="do not collect expired messages in this process"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from marconi.transport import server  # Falcon and waitress: the http extra
    except ImportError as error:
        raise DriverLoadError(f"marconi serve needs the http extra: pip install 'marconi[http]' ({error})") from None
    return server.serve(args.uri, args.host, args.port, dict(args.options), threads=args.threads, gc=args.gc)
