"""AsgiToWsgi and requests that end badly (issue 12 points 2, 3 and 5).

A client that leaves early, a ``Content-Length`` no body can have, a ``wsgi.input``
that raises something other than :class:`OSError` (gunicorn's chunked parser does):
each request ends with an answer and nothing is left behind, and none of them is
logged as the app's error.  In memory on asyncio and trio, then on gunicorn (sync and
gthread) with raw bytes on a socket.
"""

from __future__ import annotations

import io
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from adapter import AsgiToWsgi
from adapter._types import Message, Receive, Scope, Send
from tests.asgi_to_wsgi.test_app import backend, call, make_environ, respond
from tests.asgi_to_wsgi.test_lifecycle import loop_task_count
from tests.servers import running_server

__all__ = ["backend"]  # the fixture, re-used


class MalformedInput(io.BytesIO):
    """A ``wsgi.input`` whose reads raise what gunicorn raises for a bad chunk size."""

    def read(self, size: int | None = -1, /) -> bytes:
        raise ValueError("Invalid chunk size: 'zz'")


class ShortInput(io.BytesIO):
    """A ``wsgi.input`` that gives a few bytes, then ends: the client went away."""


def reading_app(seen: list[Message]) -> Any:
    """Reads its body with receive(); on http.disconnect returns without answering."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await respond(send, body)

    return app


def raising_app(seen: list[Message]) -> Any:
    """As a framework does: http.disconnect while reading the body raises."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        seen.append(message)
        if message["type"] == "http.disconnect":
            raise RuntimeError("the client disconnected")  # Starlette's ClientDisconnect
        await respond(send, b"read")

    return app


@pytest.mark.parametrize("shape", [reading_app, raising_app])
def test_app_that_returns_after_a_cut_body_is_not_an_error(
    backend: str, shape: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Message] = []
    app = AsgiToWsgi(shape(seen), lifespan="off", backend=backend)
    baseline = loop_task_count(backend)
    environ = make_environ("POST", ShortInput(b"abc"), CONTENT_LENGTH="10")
    with caplog.at_level(logging.DEBUG, logger="adapter"):
        status, _, _ = call(app, environ)
    assert seen == [{"type": "http.disconnect"}]
    assert status == "400 Bad Request"
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    assert loop_task_count(backend) == baseline  # nothing left behind


@pytest.mark.parametrize("shape", [reading_app, raising_app])
def test_non_oserror_from_wsgi_input_is_a_400_not_a_hang(
    backend: str, shape: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Message] = []
    app = AsgiToWsgi(shape(seen), lifespan="off", backend=backend)
    baseline = loop_task_count(backend)
    environ = make_environ("POST", MalformedInput())
    environ["wsgi.input_terminated"] = True  # chunked: no CONTENT_LENGTH
    environ.pop("CONTENT_LENGTH", None)
    with caplog.at_level(logging.DEBUG, logger="adapter"):
        status, _, body = call(app, environ)  # before the fix: waited forever
    assert seen == [{"type": "http.disconnect"}]
    assert status == "400 Bad Request"
    assert b"malformed" in body
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    assert loop_task_count(backend) == baseline


def test_app_may_still_answer_a_malformed_body_itself(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        await respond(send, message["type"].encode(), status=422)

    wsgi_app = AsgiToWsgi(app, lifespan="off", backend=backend)
    environ = make_environ("POST", MalformedInput(b""), CONTENT_LENGTH="5")
    assert call(wsgi_app, environ)[::2] == ("422 Unprocessable Entity", b"http.disconnect")


@pytest.mark.parametrize("length", ["99999999999999999999", str(2**63)])
def test_content_length_too_large_to_read_is_a_413_without_calling_the_app(
    backend: str, length: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Message] = []
    app = AsgiToWsgi(reading_app(seen), lifespan="off", backend=backend)
    environ = make_environ("POST", io.BytesIO(b"abc"), CONTENT_LENGTH=length)
    with caplog.at_level(logging.DEBUG, logger="adapter"):
        status, _, _ = call(app, environ)
    assert status == "413 Content Too Large"
    assert seen == []
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_largest_readable_content_length_still_reaches_the_app(backend: str) -> None:
    seen: list[Message] = []
    app = AsgiToWsgi(reading_app(seen), lifespan="off", backend=backend)
    environ = make_environ("POST", io.BytesIO(b"abc"), CONTENT_LENGTH=str(2**63 - 1))
    assert call(app, environ)[0].startswith("400 ")  # cut short: the client left
    assert seen == [{"type": "http.disconnect"}]


# ---- gunicorn, for real ------------------------------------------------------------------

GUNICORN = {
    "sync": ["-k", "sync"],
    "gthread": ["-k", "gthread", "--threads", "4"],
}

BAD_CHUNKS = [
    b"zz\r\nhello\r\n0\r\n\r\n",
    b"-1\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloEXTRA\r\n0\r\n\r\n",
]


def exchange(url: str, request: bytes, *, close_early: bool = False) -> bytes:
    """Send raw bytes, read the answer to EOF (bounded by a socket timeout)."""
    host, port = url.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(request)
        if close_early:
            return b""
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


@pytest.mark.server
@pytest.mark.parametrize("worker", sorted(GUNICORN))
def test_bad_requests_on_gunicorn(worker: str, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    command = [
        *["gunicorn", "-w", "1", *GUNICORN[worker], "--timeout", "60"],
        *["--error-logfile", str(log), "--capture-output", "-b", "127.0.0.1:{port}"],
        "tests.apps.asgi_body_reader:application",
    ]
    with running_server(command) as url:
        for chunks in BAD_CHUNKS:
            request = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            answer = exchange(url, request + chunks)
            assert answer.startswith(b"HTTP/1.1 400 "), answer
        for length in [b"99999999999999999999", str(2**63).encode()]:
            request = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + length
            answer = exchange(url, request + b"\r\n\r\nabc")
            assert answer.startswith(b"HTTP/1.1 413 "), answer
        # A body shorter than its Content-Length, then the client closes.
        short = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
        for _ in range(3):
            exchange(url, short)
        # Served on: the worker is not stuck, and the good request is echoed.
        good = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        assert exchange(url, good).endswith(b"\r\n\r\nhello")
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "WORKER TIMEOUT" not in text, text
