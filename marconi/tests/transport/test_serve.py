"""``marconi serve``: its command line, its lifecycle, and the server's bounds on what a client may send."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from marconi.tests.servers import Server, free_port, wait_until
from marconi.tests.transport.conftest import BIN, answers_ping, serve
from marconi.tests.transport.rest import Api
from marconi.transport.command import option
from marconi.transport.server import loopback

TIMEOUT = 60  # seconds; only a bound against hangs


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "marconi"), *args], capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("table_prefix=http_", ("table_prefix", "http_")),
        ("conflict_timeout=0.5", ("conflict_timeout", 0.5)),
        ("pool_size=5", ("pool_size", 5)),
        ("echo=true", ("echo", True)),
        ("name=a=b", ("name", "a=b")),
        ("empty=", ("empty", "")),
    ],
)
def test_options_are_json_when_they_parse_and_text_otherwise(text, expected):
    assert option(text) == expected


@pytest.mark.parametrize("text", ["no-equals", "=value", " =x"])
def test_an_option_needs_a_name_and_a_value(text):
    with pytest.raises(argparse.ArgumentTypeError):
        option(text)


def test_loopback_addresses():
    assert loopback("127.0.0.1") and loopback("::1") and loopback("localhost") and loopback("127.3.2.1")
    assert not loopback("0.0.0.0") and not loopback("192.0.2.1") and not loopback("example.com")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch://x"], "no marconi storage driver for scheme 'nosuch'"),
        (["memory://", "--option", "bogus=1"], "invalid bogus: is not an option of the memory driver"),
        (["memory://", "--option", "conflict_timeout=-1"], "invalid conflict_timeout"),
        (["memory://", "--port", "0"], "argument --port"),
        (["memory://", "--port", "http"], "argument --port"),
        (["memory://", "--threads", "0"], "argument --threads"),
        (["memory://", "--option", "novalue"], "argument --option"),
    ],
)
def test_bad_usage_exits_2_with_one_clear_line(args, message):
    result = run("serve", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_exits_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run("serve", "memory://", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr


def test_serve_collects_by_default_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(BIN / "marconi"), "serve", "memory://", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: process.poll() is None and answers_ping(port), TIMEOUT, "marconi serve")
            process.send_signal(signal.SIGTERM)
            assert process.wait(TIMEOUT) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert "marconi.gc: collecting memory://" in text  # the collector runs beside the server unless --no-gc
    assert f"on http://127.0.0.1:{port}/v2" in text and text.rstrip().endswith("marconi.transport: stopped")


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = serve("memory://", tmp_path_factory.mktemp("serve"))
    try:
        yield server
    finally:
        server.stop()


def raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    """Send ``head`` (with the identity headers added) and ``body`` on a fresh socket; the whole answer."""
    identity = f"X-Project-ID: serve-{uuid.uuid4().hex[:8]}\r\nClient-ID: {uuid.uuid4()}\r\nConnection: close\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        connection.sendall(head.replace("\r\n\r\n", "\r\n" + identity + "\r\n", 1).encode() + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_body_far_over_any_bound_is_refused_before_it_is_read(memory_server):
    head = "POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    answer = raw_request(memory_server.port, head + "Content-Length: 100000000\r\n\r\n")  # no body follows
    assert answer.startswith(b"HTTP/1.1 413")


def chunked(data: bytes, size: int = 8192) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_a_chunked_body_is_bounded_like_any_other(memory_server):
    head = "POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n"
    small = b'{"messages": [{"ttl": 60, "body": "chunked"}]}'
    assert raw_request(memory_server.port, head, chunked(small)).startswith(b"HTTP/1.1 201")
    large = b'{"messages": [{"ttl": 60, "body": "' + b"x" * 300_000 + b'"}]}'
    answer = raw_request(memory_server.port, head, chunked(large))
    assert answer.startswith(b"HTTP/1.1 413") and b"Request body too large" in answer


def test_a_client_that_stalls_mid_body_does_not_hold_up_others(memory_server):
    api = Api(f"http://127.0.0.1:{memory_server.port}")
    with socket.create_connection(("127.0.0.1", memory_server.port), timeout=TIMEOUT) as stalled:
        stalled.sendall(
            b"POST /v2/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Project-ID: p\r\nClient-ID: %s\r\nContent-Length: 1000\r\n\r\n{" % str(uuid.uuid4()).encode()
        )  # 999 bytes of its body never come
        for _ in range(20):  # more requests than the server has threads
            assert api.post_messages("q", ["meanwhile"])
        assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 20
