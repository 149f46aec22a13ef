"""AsgiToWsgi in memory: request body, response streaming, errors (issue 3 points 4, 5, 8, 9).

Every call goes through Werkzeug's ``LintMiddleware`` (warnings are errors in this
suite), and each test runs the app on asyncio and on trio (the ``backend`` fixture).
The WSGI side is synchronous, so these are plain tests driving the app as a WSGI
server would: call, iterate, close.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import EnvironBuilder

from adapter import AsgiToWsgi, ProtocolError
from adapter._runtime.mailbox import current_mailbox
from adapter._types import Message, Receive, Scope, Send
from adapter.asgi_to_wsgi.input_reader import BODY_PIECE_SIZE

Response = tuple[str, list[tuple[str, str]], bytes]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The anyio backend the shared loop runs the ASGI app on."""
    name: str = request.param
    return name


def make_environ(method: str = "GET", wsgi_input: Any = None, **extra: str) -> dict[str, Any]:
    """A PEP 3333 environ from Werkzeug's builder, with ``extra`` keys set."""
    environ: dict[str, Any] = EnvironBuilder(path="/", method=method).get_environ()
    if wsgi_input is not None:
        environ["wsgi.input"] = wsgi_input
    environ.update(extra)
    return environ


class Started:
    """A ``start_response`` that records what it was given."""

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda data: None


def open_response(app: AsgiToWsgi, environ: dict[str, Any]) -> tuple[Started, Iterator[bytes], Any]:
    """Call the app through LintMiddleware; return (start, iterator, iterable)."""
    started = Started()
    iterable: Iterable[bytes] = LintMiddleware(app)(environ, started)
    return started, iter(iterable), iterable


def call(app: AsgiToWsgi, environ: dict[str, Any] | None = None) -> Response:
    """Serve one request as a WSGI server does: iterate to the end, then close."""
    started, iterator, iterable = open_response(app, environ or make_environ())
    try:
        data = b"".join(iterator)
    finally:
        iterable.close()
    return started.status, started.headers, data


async def respond(send: Send, body: bytes, status: int = 200) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_messages(receive: Receive) -> list[Message]:
    messages = [await receive()]
    while messages[-1].get("more_body"):
        messages.append(await receive())
    return messages


def body_echo(backend: str, log: list[Message] | None = None) -> AsgiToWsgi:
    """An app answering with JSON: the request's body pieces and content-length header."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        messages = await read_messages(receive)
        if log is not None:
            log.extend(messages)
        report = {
            "sizes": [len(m.get("body", b"")) for m in messages],
            "types": sorted({m["type"] for m in messages}),
            "content_length": dict(scope["headers"]).get(b"content-length", b"-").decode(),
        }
        await respond(send, json.dumps(report).encode())

    return AsgiToWsgi(app, lifespan="off", backend=backend)


class CountingInput(io.BytesIO):
    """A ``wsgi.input`` that records every read size asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []
        self.threads: set[int] = set()

    def read(self, size: int | None = -1, /) -> bytes:
        self.asked.append(-1 if size is None else size)
        self.threads.add(threading.get_ident())
        return super().read(size)


# ---- point 4: the request body --------------------------------------------------------


def test_body_streams_in_bounded_pieces_and_honours_content_length(backend: str) -> None:
    data = b"a" * (3 * BODY_PIECE_SIZE + 123)
    stream = CountingInput(data + b"NOT PART OF THE BODY")
    environ = make_environ(method="POST", CONTENT_LENGTH=str(len(data)), wsgi_input=stream)
    status, _, body = call(body_echo(backend), environ)
    report = json.loads(body)
    assert status == "200 OK"
    assert report["sizes"] == [BODY_PIECE_SIZE] * 3 + [123]
    assert report["content_length"] == str(len(data))
    assert max(stream.asked) <= BODY_PIECE_SIZE
    assert stream.tell() == len(data)  # not a byte past CONTENT_LENGTH
    # Read by the request thread (the WSGI server's), as receive() asked for each piece.
    assert stream.threads == {threading.get_ident()}


def test_chunked_upload_without_length_arrives_whole_when_input_is_terminated(backend: str) -> None:
    data = bytes(range(256)) * 700  # 179200 bytes, more than two pieces
    environ = make_environ(method="POST", wsgi_input=CountingInput(data))
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    log: list[Message] = []
    _, _, body = call(body_echo(backend, log), environ)
    assert b"".join(m["body"] for m in log) == data
    assert json.loads(body)["content_length"] == "-"


def test_no_length_and_not_terminated_means_no_body_is_read(backend: str) -> None:
    stream = CountingInput(b"unframed bytes")
    environ = make_environ(method="POST", wsgi_input=stream)
    environ.pop("CONTENT_LENGTH", None)
    _, _, body = call(body_echo(backend), environ)
    assert json.loads(body)["sizes"] == [0]
    assert stream.asked == []  # PEP 3333: never read past an unknown length


@pytest.mark.parametrize("value", ["", "abc", "-5", "1.5"])
@pytest.mark.parametrize("terminated", [False, True])
def test_empty_or_invalid_content_length(backend: str, value: str, terminated: bool) -> None:
    environ = make_environ(method="POST", wsgi_input=io.BytesIO(b"xyz"))
    environ["CONTENT_LENGTH"] = value
    environ["wsgi.input_terminated"] = terminated
    status, _, body = call(body_echo(backend), environ)
    report = json.loads(body)
    assert status == "200 OK"
    assert report["content_length"] == "-"  # never a bad header in the scope
    assert sum(report["sizes"]) == (3 if terminated else 0)


def test_body_is_read_only_when_the_app_asks(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"did not read")

    stream = CountingInput(b"x" * (4 * BODY_PIECE_SIZE))
    environ = make_environ(method="POST", CONTENT_LENGTH=str(4 * BODY_PIECE_SIZE))
    environ["wsgi.input"] = stream
    assert call(AsgiToWsgi(app, lifespan="off", backend=backend), environ)[2] == (b"did not read")
    assert stream.asked == []


def test_body_cut_short_gives_the_app_http_disconnect(backend: str) -> None:
    log: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        log.append(await receive())
        await respond(send, b"never seen")

    environ = make_environ(method="POST", CONTENT_LENGTH="1000", wsgi_input=io.BytesIO(b"x"))
    status, _, _ = call(AsgiToWsgi(app, lifespan="off", backend=backend), environ)
    assert log == [{"type": "http.disconnect"}]
    # Its send() raised (the client is gone): not its error, a plain 400 for the server.
    assert status == "400 Bad Request"


def test_receive_after_the_body_waits_for_the_response_then_disconnects(backend: str) -> None:
    log: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await respond(send, b"done")
        log.append(await receive())

    call(AsgiToWsgi(app, lifespan="off", backend=backend))
    assert log == [{"type": "http.disconnect"}]


# ---- point 5: the response streams ------------------------------------------------------


def test_each_body_message_is_a_chunk_as_soon_as_it_is_sent(backend: str) -> None:
    gates = [threading.Event() for _ in range(3)]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        for number, gate in enumerate(gates):
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            await send(
                {"type": "http.response.body", "body": b"data: %d\n\n" % number, "more_body": True}
            )
            # The next event is produced only once the test has seen this one.
            await anyio.to_thread.run_sync(gate.wait)
        await send({"type": "http.response.body", "body": b""})

    app_wsgi = AsgiToWsgi(app, lifespan="off", backend=backend)
    started, iterator, iterable = open_response(app_wsgi, make_environ())
    try:
        assert started.status == "200 OK"
        for number, gate in enumerate(gates):
            assert next(iterator) == b"data: %d\n\n" % number
            gate.set()
        assert list(iterator) == []
    finally:
        iterable.close()


def test_backpressure_is_strict_nothing_is_buffered_ahead(backend: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        try:
            await send({"type": "http.response.body", "body": b"second", "more_body": True})
        except OSError:
            outcome.append("second refused")
        else:
            outcome.append("second buffered")

    app_wsgi = AsgiToWsgi(app, lifespan="off", backend=backend)
    _, iterator, iterable = open_response(app_wsgi, make_environ())
    assert next(iterator) == b"first"
    iterable.close()  # the server never asked for a second chunk
    # A buffering bridge would have accepted "second" without the server asking.
    assert outcome == ["second refused"]


def test_app_ending_mid_stream_ends_the_response(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    assert call(AsgiToWsgi(app, lifespan="off", backend=backend))[2] == b"partial"


def test_empty_response_and_hop_by_hop_headers(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"connection", b"close"), (b"content-length", b"0"), (b"x-kept", b"1")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body"})

    status, headers, body = call(AsgiToWsgi(app, lifespan="off", backend=backend))
    assert (status, body) == ("204 No Content", b"")
    assert headers == [("content-length", "0"), ("x-kept", "1")]  # PEP 3333: no hop-by-hop


def pathsend_app(path: str, seen: list[Scope]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": path})

    return app


def test_pathsend_goes_through_wsgi_file_wrapper(backend: str, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    (tmp_path / "data.bin").write_bytes(data)
    seen: list[Scope] = []
    app = AsgiToWsgi(
        pathsend_app(str(tmp_path / "data.bin"), seen), lifespan="off", backend=backend
    )
    status, _, body = call(app)  # LintMiddleware offers its own wsgi.file_wrapper
    assert (status, body) == ("200 OK", data)
    assert "http.response.pathsend" in seen[0]["extensions"]


def test_pathsend_of_a_missing_file_is_a_500(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = AsgiToWsgi(pathsend_app(str(tmp_path / "missing"), []), lifespan="off", backend=backend)
    with caplog.at_level(logging.ERROR, logger="adapter"):
        assert call(app)[0] == "500 Internal Server Error"
    assert "FileNotFoundError" in caplog.text


def test_pathsend_is_not_offered_without_a_file_wrapper(backend: str) -> None:
    seen: list[Scope] = []
    environ = make_environ()
    environ.pop("wsgi.file_wrapper", None)
    app = AsgiToWsgi(pathsend_app("/nonexistent", seen), lifespan="off", backend=backend)
    started = Started()
    # Called without LintMiddleware here: it always adds a wsgi.file_wrapper of its own.
    assert list(app(environ, started)) == [b"Internal Server Error"]  # a protocol error
    assert seen[0]["extensions"] == {}


# ---- point 8: errors ----------------------------------------------------------------------


def test_error_before_the_response_is_a_500_with_the_traceback_logged(
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("broken before start")

    with caplog.at_level(logging.ERROR, logger="adapter"):
        status, _, body = call(AsgiToWsgi(app, lifespan="off", backend=backend))
    assert status == "500 Internal Server Error"
    assert body == b"Internal Server Error"
    [record] = [r for r in caplog.records if r.name == "adapter"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "broken before start" in caplog.text
    assert "Traceback" in caplog.text


@pytest.mark.parametrize(
    "messages",
    [
        [],  # returned without a response
        [{"type": "http.response.body", "body": b"x"}],  # body before start
        [{"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb")]}],
        [{"type": "http.response.start", "status": 200}, {"type": "http.response.start"}],
        [{"type": "websocket.accept"}],
        [{"type": "http.response.start", "status": "200"}],
    ],
)
def test_protocol_errors_before_the_response_are_500s(
    backend: str, messages: list[Message], caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    with caplog.at_level(logging.ERROR, logger="adapter"):
        status, _, _ = call(AsgiToWsgi(app, lifespan="off", backend=backend))
    assert status == "500 Internal Server Error"
    assert "ProtocolError" in caplog.text


def test_error_after_the_response_started_reaches_the_server(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("broken mid-stream")

    _, iterator, iterable = open_response(
        AsgiToWsgi(app, lifespan="off", backend=backend), make_environ()
    )
    assert next(iterator) == b"partial"
    with pytest.raises(ValueError, match="broken mid-stream"):
        next(iterator)
    iterable.close()  # reported once, not again


def test_error_after_the_response_completed_reaches_the_server_at_close(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"sent")
        raise ValueError("broken after the response")

    _, iterator, iterable = open_response(
        AsgiToWsgi(app, lifespan="off", backend=backend), make_environ()
    )
    assert b"".join(iterator) == b"sent"
    with pytest.raises(ValueError, match="broken after the response"):
        iterable.close()


def test_body_after_the_last_one_is_a_protocol_error_at_close(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"complete")
        await send({"type": "http.response.body", "body": b"one too many"})

    _, iterator, iterable = open_response(
        AsgiToWsgi(app, lifespan="off", backend=backend), make_environ()
    )
    assert b"".join(iterator) == b"complete"
    with pytest.raises(ProtocolError, match="after the last one"):
        iterable.close()


# ---- issue 4 point 6: the request thread is the app's outer sync thread -----------------


def test_request_thread_runs_work_the_app_posts_to_its_mailbox(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        mailbox = current_mailbox.get()
        assert mailbox is not None
        where: list[int] = []

        def job() -> None:
            where.append(threading.get_ident())

        mailbox.post(job)
        with anyio.fail_after(10):
            while not where:  # the request thread runs it during its wait
                await anyio.sleep(0.001)
        await respond(send, str(where[0]).encode())

    body = call(AsgiToWsgi(app, lifespan="off", backend=backend))[2]
    assert int(body) == threading.get_ident()


def call_head(app: AsgiToWsgi, environ: dict[str, Any]) -> Response:
    """As :func:`call`, without LintMiddleware: Werkzeug's lint wants the Content-Length
    bytes even for HEAD (though Werkzeug's own responses send none for it)."""
    started = Started()
    iterable = app(environ, started)
    try:
        data = b"".join(iterable)
    finally:
        getattr(iterable, "close", lambda: None)()
    return started.status, started.headers, data


def test_head_response_has_no_body_but_the_app_runs_to_its_end(backend: str) -> None:
    sent: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"12")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in (b"abcd", b"efgh"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            sent.append(len(part))
        await send({"type": "http.response.body", "body": b"ijkl"})
        sent.append(4)

    wsgi_app = AsgiToWsgi(app, lifespan="off", backend=backend)
    status, headers, body = call_head(wsgi_app, make_environ("HEAD"))
    assert (status, body) == ("200 OK", b"")
    assert ("content-length", "12") in [(k.lower(), v) for k, v in headers]
    assert sent == [4, 4, 4]  # every body message was taken, then dropped
    assert call(wsgi_app, make_environ("GET"))[2] == b"abcdefghijkl"


def test_head_response_holds_the_app_back_as_get_does(backend: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for number in range(3):
            try:
                await send({"type": "http.response.body", "body": b"chunk", "more_body": True})
            except OSError:
                outcome.append(f"gone at {number}")
                return
        outcome.append("ran ahead to the end")
        await send({"type": "http.response.body"})

    wsgi_app = AsgiToWsgi(app, lifespan="off", backend=backend)
    iterable = wsgi_app(make_environ("HEAD"), Started())
    # The server never asks for more: the first message was taken by respond(), the
    # second send() waits for the server, and closing tells it the client is gone.
    getattr(iterable, "close", lambda: None)()
    assert outcome == ["gone at 1"]


def test_head_pathsend_opens_no_file(backend: str, tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "missing")})

    wrapped: list[object] = []

    def file_wrapper(file: object, block_size: int) -> list[bytes]:
        wrapped.append(file)
        return []

    environ = make_environ("HEAD")
    environ["wsgi.file_wrapper"] = file_wrapper
    status, _, body = call_head(AsgiToWsgi(app, lifespan="off", backend=backend), environ)
    assert (status, body, wrapped) == ("200 OK", b"", [])
