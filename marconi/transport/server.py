"""Serving the application with waitress, with the garbage collector beside it, until SIGTERM or SIGINT."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import waitress

from marconi import gc as collector
from marconi.storage import DriverBase, load, validation
from marconi.transport.app import make_app

log = logging.getLogger("marconi.transport")


def body_bound(driver: DriverBase) -> int:
    """The most a request body may hold at the socket: twice the largest route's bound, so a body just over a
    route's bound still gets that route's JSON 413, and waitress refuses anything far beyond before reading it."""
    return 2 * max(driver.limits.max_post_size, validation.MAX_METADATA_SIZE)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends waitress's loop as SIGINT does: it then lets the requests being served finish."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(uri: str, host: str, port: int, options: dict[str, Any], *, threads: int = 8, gc: bool = True) -> int:
    """Serve ``uri``'s driver on ``host:port`` until stopped; 0 when stopped by a signal, 1 if it cannot listen."""
    with load(uri, **options) as driver:
        try:
            server = waitress.create_server(
                make_app(driver),
                host=host,
                port=port,
                threads=threads,
                max_request_body_size=body_bound(driver),
                ident="marconi",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as error:
            print(f"marconi serve: cannot listen on {host}:{port}: {error.strerror or error}", file=sys.stderr)
            return 1
        if not loopback(host):
            log.warning(
                "listening on %s, beyond this machine: X-Project-ID is trusted as sent, so put authentication "
                "(keystonemiddleware or a proxy) in front of this server",
                host,
            )
        stop = threading.Event()
        collecting = threading.Thread(target=collector.run, args=(driver, stop), name="marconi-gc", daemon=True)
        if gc:
            collecting.start()
        log.info("serving the %s driver (Zaqar v2 API) on http://%s:%d/v2", driver.name, host, port)
        try:
            with _stop_on_sigterm():
                server.run()  # returns on SIGINT or SIGTERM, once its worker threads are done
        finally:
            stop.set()
            server.close()
            if gc:
                collecting.join(5)
        log.info("stopped")
    return 0
