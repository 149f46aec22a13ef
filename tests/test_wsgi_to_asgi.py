"""WsgiToAsgi in memory, with a hand-written ASGI server side: threads, body, response.

The lifecycle cases (close(), disconnects, cancellation, leaks) are in
``test_wsgi_to_asgi_lifecycle.py``; both use the :class:`Server` defined here.
"""

from __future__ import annotations

import contextvars
import io
import math
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from adapter import ClientDisconnected, WsgiToAsgi, async_to_sync
from adapter._types import Environ, Message, Scope, StartResponse
from adapter.streams import READ_AHEAD_BYTES, FileWrapper, RequestBodyTooLarge
from adapter.wsgi_to_asgi import PULL_BYTES


def http_scope(path: str = "/", method: str = "GET", **fields: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(fields)
    return scope


class Server:
    """The server side of one ASGI request: feeds ``receive()``, records ``send()``.

    :param body: body messages to queue; the last one ends the body when ``complete``.
    :param on_send: awaited with each message after it is recorded (a slow client).
    """

    def __init__(
        self,
        body: Sequence[bytes] = (),
        *,
        complete: bool = True,
        on_send: Callable[[Message], Awaitable[None]] | None = None,
    ) -> None:
        self._inbox_in, self._inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.sent: list[Message] = []
        self.on_send = on_send
        for index, piece in enumerate(body):
            self.push(piece, more_body=not complete or index < len(body) - 1)
        if complete and not body:
            self.push(b"", more_body=False)

    def push(self, body: bytes, *, more_body: bool) -> None:
        self._inbox_in.send_nowait({"type": "http.request", "body": body, "more_body": more_body})

    def disconnect(self) -> None:
        """From now on (after what is queued) ``receive()`` says ``http.disconnect``."""
        self._inbox_in.close()

    def pending(self) -> int:
        """How many queued messages the app has not received yet."""
        return self._inbox.statistics().current_buffer_used

    async def receive(self) -> Message:
        try:
            return await self._inbox.receive()
        except anyio.EndOfStream:
            return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if self.on_send is not None:
            await self.on_send(message)

    def close(self) -> None:
        self._inbox_in.close()
        self._inbox.close()

    @property
    def status(self) -> int:
        assert self.sent[0]["type"] == "http.response.start"
        status: int = self.sent[0]["status"]
        return status

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self.sent if m["type"] == "http.response.body")

    @property
    def complete(self) -> bool:
        last = self.sent[-1]
        return last["type"] == "http.response.body" and not last.get("more_body", False)


async def serve(
    app: Any, server: Server | None = None, scope: Scope | None = None, **options: Any
) -> Server:
    """Serve one request through ``WsgiToAsgi(app)``, within a time bound."""
    server = server or Server()
    adapter = app if isinstance(app, WsgiToAsgi) else WsgiToAsgi(app, **options)
    try:
        with anyio.fail_after(10):
            await adapter(scope or http_scope(), server.receive, server.send)
    finally:
        server.close()
    return server


BODY_KINDS = ["undeclared", "content-length", "chunked"]
"""How a request announces its body.  WsgiToAsgi reads an announced body through a
receiver task and a pipe, and an unannounced one by hopping to the loop per read:
body tests run both ways."""


def body_scope(kind: str, body: Sequence[bytes], **fields: Any) -> Scope:
    """A POST scope whose headers announce ``body`` as ``kind`` says."""
    headers = {
        "undeclared": [],
        "content-length": [(b"content-length", str(sum(map(len, body))).encode())],
        "chunked": [(b"transfer-encoding", b"chunked")],
    }[kind]
    return http_scope(method="POST", headers=headers, **fields)


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


# 1. Threads ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_hello_world() -> None:
    server = await serve(hello)
    assert server.status == 200
    assert server.headers == {b"content-type": b"text/plain"}
    assert server.body == b"Hello, world!"
    assert server.complete
    # Status, headers and the whole list body: one start and one body message.
    assert len(server.sent) == 2


@pytest.mark.anyio
async def test_the_app_runs_in_a_worker_thread_that_reaches_the_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # What adapter.async_to_sync relies on: from_thread reaches the serving loop.
        seen.append((threading.get_ident(), anyio.from_thread.run_sync(threading.get_ident)))
        start_response("200 OK", [])
        return [b""]

    await serve(app)
    assert seen[0][0] != loop_thread
    assert seen[0][1] == loop_thread


@pytest.mark.anyio
async def test_async_to_sync_in_the_app_runs_on_the_serving_loop() -> None:
    loop_thread = threading.get_ident()

    async def where() -> int:
        return threading.get_ident()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [str(async_to_sync(where)()).encode()]

    assert (await serve(app)).body == str(loop_thread).encode()


@pytest.mark.anyio
async def test_wsgi_input_read_from_a_thread_of_the_apps_own() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(environ["wsgi.input"].read()))
        reader.start()
        reader.join(10)
        start_response("200 OK", [])
        return result

    assert (await serve(app, Server([b"from ", b"elsewhere"]))).body == b"from elsewhere"


@pytest.mark.anyio
async def test_at_most_max_workers_at_once_and_the_loop_stays_responsive() -> None:
    gate = threading.Event()
    lock = threading.Lock()
    running = peak = 0

    def blocking(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            assert gate.wait(10)
        finally:
            with lock:
                running -= 1
        start_response("200 OK", [])
        return [b"done"]

    adapter = WsgiToAsgi(blocking, max_workers=2)
    servers = [Server() for _ in range(5)]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            for server in servers:
                task_group.start_soon(adapter, http_scope(), server.receive, server.send)
            limiter = adapter.limiter()
            while limiter.statistics().tasks_waiting < 3:
                await anyio.sleep(0.005)
            # Both workers are blocked in the app, three requests wait, and the loop
            # still runs other work at once.
            assert limiter.borrowed_tokens == 2
            pong = anyio.Event()
            task_group.start_soon(_set, pong)
            await pong.wait()
            gate.set()
    assert peak == 2
    assert [server.body for server in servers] == [b"done"] * 5
    for server in servers:
        server.close()


async def _set(event: anyio.Event) -> None:
    event.set()


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        WsgiToAsgi(hello, max_workers=0)


# 2. The environ, as the app sees it ---------------------------------------------------


@pytest.mark.anyio
async def test_the_environ_the_app_sees() -> None:
    environs: list[Environ] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environs.append(environ)
        start_response("200 OK", [])
        return []

    scope = http_scope(
        "/mount/p\u00e9",
        root_path="/mount",
        query_string=b"q=\xff",
        headers=[(b"x_real_ip", b"6.6.6.6"), (b"x-real-ip", b"1.1.1.1"), (b"cookie", b"a=1")],
    )
    await serve(app, scope=scope)
    environ = environs[0]
    assert environ["asgi.scope"] is scope
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/mount", "/p\u00c3\u00a9")
    assert environ["QUERY_STRING"] == "q=\u00ff"
    assert environ["HTTP_X_REAL_IP"] == "1.1.1.1"
    assert environ["SERVER_PORT"] == "8000"
    assert environ["wsgi.file_wrapper"] is FileWrapper


# 3. wsgi.input streams from receive() -------------------------------------------------


@pytest.mark.anyio
async def test_wsgi_input_pulls_from_receive_only_as_the_app_reads() -> None:
    server = Server([bytes([65 + i]) * 1000 for i in range(20)])
    pending: list[int] = []
    whole = b"".join(bytes([65 + i]) * 1000 for i in range(20))

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        pending.append(server.pending())
        head = stream.read(10)
        pending.append(server.pending())
        rest = stream.read()
        start_response("200 OK", [])
        return [head, rest]

    await serve(app, server)
    assert pending == [20, 19]  # nothing before the first read; one message for 10 bytes
    assert server.body == whole


@pytest.mark.anyio
async def test_an_announced_body_is_read_ahead_by_a_bounded_number_of_bytes() -> None:
    piece = 64 * 1024
    pieces = [bytes([65 + i]) * piece for i in range(40)]
    server = Server(pieces)
    received_when_read: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        head = environ["wsgi.input"].read(10)
        # Whatever the timing, the receiver holds at most READ_AHEAD_BYTES and one
        # message more than the app has read.
        received_when_read.append((40 - server.pending()) * piece)
        rest = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [head, rest]

    await serve(app, server, body_scope("content-length", pieces))
    assert received_when_read[0] <= READ_AHEAD_BYTES + 2 * piece
    assert server.body == b"".join(pieces)


MIXES: list[list[tuple[str, int | None]]] = [
    [("readline", None), ("read", 3), ("readlines", 5), ("read", None)],
    [("read", 1), ("readline", 4), ("readline", -1), ("read", -1)],
    [("readlines", -1)],
    [("read", 0), ("readline", 0), ("read", 7), ("readlines", 1), ("read", 2)],
]


@pytest.mark.anyio
@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("piece", [1, 3, 64])
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_wsgi_input_any_mix_over_small_messages(
    mix: list[tuple[str, int | None]], piece: int, kind: str
) -> None:
    data = b"first line\nsecond\n\nthird line is longer\nno newline at the end"
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    server = Server(pieces)
    results: list[tuple[object, object]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        oracle = io.BytesIO(data)
        for name, size in mix:
            results.append(
                (getattr(environ["wsgi.input"], name)(size), getattr(oracle, name)(size))
            )
        results.append((list(environ["wsgi.input"]), list(oracle)))
        start_response("200 OK", [])
        return []

    await serve(app, server, body_scope(kind, pieces))
    assert results
    for ours, expected in results:
        assert ours == expected


# 4. Disconnect mid-body, max_request_body --------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_disconnect_mid_body_raises_client_disconnected_in_the_app(kind: str) -> None:
    server = Server([b"part of", b" the body"], complete=False)
    server.disconnect()
    caught: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as exc:
            caught.append(exc)
            raise
        raise AssertionError("a cut-off body must not read as a short body")

    # The request ends quietly: nobody is left to answer.
    await serve(app, server, body_scope(kind, [b"part of the body and more"]))
    assert isinstance(caught[0], OSError)
    assert server.sent == []


@pytest.mark.anyio
async def test_declared_length_over_the_limit_answers_413_without_the_app() -> None:
    called: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        called.append(True)
        return hello(environ, start_response)

    scope = http_scope(method="POST", headers=[(b"content-length", b"11")])
    server = await serve(app, Server([b"x" * 11]), scope, max_request_body=10)
    assert (server.status, called) == (413, [])
    assert server.complete


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["undeclared", "chunked"])
async def test_body_without_length_past_the_limit_raises_in_the_read(kind: str) -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
        except RequestBodyTooLarge as exc:
            raised.append(exc)
            raise
        return hello(environ, start_response)

    scope = body_scope(kind, [])
    server = await serve(app, Server([b"x" * 6] * 3), scope, max_request_body=10)
    assert len(raised) == 1
    assert server.status == 413
    ok = await serve(app, Server([b"x" * 5] * 2), body_scope(kind, []), max_request_body=10)
    assert ok.status == 200


# 5. PEP 3333 response semantics -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fail_at", ["call", "first-iteration", "after-empty-chunks"])
async def test_an_error_before_the_first_chunk_is_a_complete_500_then_raised(fail_at: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-Never", "sent")])
        if fail_at == "call":
            raise LookupError("boom")

        def body() -> Iterable[bytes]:
            if fail_at == "after-empty-chunks":
                yield b""
                yield b""
            raise LookupError("boom")

        return body()

    server = Server()
    with pytest.raises(LookupError, match="boom"):
        await serve(app, server)
    assert server.status == 500
    assert b"x-never" not in server.headers
    assert server.body == b"Internal Server Error"
    assert server.complete


@pytest.mark.anyio
async def test_exc_info_replaces_headers_before_they_are_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("late")
        except ValueError:
            start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    server = await serve(app)
    assert (server.status, server.headers, server.body) == (503, {b"x-second": b"2"}, b"sorry")


@pytest.mark.anyio
async def test_exc_info_after_headers_were_sent_re_raises_and_aborts() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])

        def body() -> Iterable[bytes]:
            yield b"started"
            try:
                raise ValueError("too late")
            except ValueError:
                start_response("500 Oops", [], sys.exc_info())
            yield b"never"

        return body()

    server = Server()
    with pytest.raises(ValueError, match="too late"):
        await serve(app, server)
    assert server.status == 200
    assert server.body == b"started"
    assert not server.complete  # aborted: the server cuts the connection


@pytest.mark.anyio
async def test_a_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return []

    server = Server()
    with pytest.raises(RuntimeError, match="second time without exc_info"):
        await serve(app, server)
    assert server.status == 500


@pytest.mark.anyio
async def test_write_buffers_a_little_then_sends_before_it_returns() -> None:
    sent_when_write_returned: list[int] = []
    server = Server()
    big = b"b" * PULL_BYTES

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("X-A", "1")])
        write(b"one ")
        # PEP 3333 lets write() buffer while the app goes on: small writes wait for
        # the step to end, in order with the body.
        sent_when_write_returned.append(len(server.sent))
        write(big)
        # A full buffer is sent before write() returns: the start and one chunk each.
        sent_when_write_returned.append(len(server.sent))
        write(b" two ")
        return [b"three"]

    await serve(app, server)
    assert sent_when_write_returned == [0, 3]
    assert (server.status, server.body) == (200, b"one " + big + b" two three")
    assert server.headers == {b"x-a": b"1"}
    assert server.complete


@pytest.mark.anyio
async def test_write_while_streaming_keeps_the_order() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])

        def body() -> Iterable[bytes]:
            for number in range(200):
                yield b"<%d" % number + b"." * 4000
                write(b"|%d>" % number)

        return body()

    server = await serve(app)
    expected = b"".join(b"<%d" % n + b"." * 4000 + b"|%d>" % n for n in range(200))
    assert server.body == expected
    assert server.complete


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")]),
        ("200 OK", [("X-Evil", "a\nb")]),
        ("200 OK", [("X-Evil", "a\0b")]),
        ("200 OK", [("X-Snow", "\u2603")]),
        ("200 OK\r\nX-Evil: 1", []),
        ("OK", []),
    ],
)
async def test_bad_status_or_headers_are_refused_never_sent(
    status: str, headers: list[tuple[str, str]]
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"body"]

    server = Server()
    with pytest.raises(RuntimeError, match="start_response"):
        await serve(app, server)
    assert server.status == 500
    assert list(server.headers) == [b"content-type", b"content-length"]


@pytest.mark.anyio
async def test_latin1_header_values_and_empty_body() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("204 No Content", [("X-Caf", "caf\u00e9")])
        return iter([b"", b""])

    server = await serve(app)
    assert server.status == 204
    assert server.headers == {b"x-caf": b"caf\xe9"}
    assert server.sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.anyio
async def test_str_body_is_refused() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return ["text"]  # type: ignore[list-item]

    server = Server()
    with pytest.raises(RuntimeError, match="requires bytes"):
        await serve(app, server)
    assert server.status == 500


# 8. wsgi.file_wrapper ---------------------------------------------------------------


def file_app(path: Path, *, skip: int = 0) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        file = path.open("rb")
        file.read(skip)
        result: Iterable[bytes] = environ["wsgi.file_wrapper"](file, 4096)
        return result

    return app


@pytest.mark.anyio
async def test_file_wrapper_goes_out_by_pathsend_when_offered(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"z" * 10_000)
    scope = http_scope(extensions={"http.response.pathsend": {}})
    server = await serve(file_app(path), scope=scope)
    assert server.sent[1] == {"type": "http.response.pathsend", "path": str(path)}


@pytest.mark.anyio
@pytest.mark.parametrize(("pathsend", "skip"), [(False, 0), (True, 100)])
async def test_file_wrapper_streams_in_blocks_otherwise(
    tmp_path: Path, pathsend: bool, skip: int
) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 40)
    scope = http_scope(extensions={"http.response.pathsend": {}} if pathsend else {})
    server = await serve(file_app(path, skip=skip), scope=scope)
    assert server.body == path.read_bytes()[skip:]
    assert all(m["type"] != "http.response.pathsend" for m in server.sent)
    assert server.complete


# 9. Other scopes, contextvars -------------------------------------------------------


@pytest.mark.anyio
async def test_lifespan_is_answered() -> None:
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await WsgiToAsgi(hello)({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.anyio
async def test_websocket_is_refused_before_accept() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await WsgiToAsgi(hello)({"type": "websocket", "path": "/"}, receive, send)
    assert [m["type"] for m in sent] == ["websocket.close"]


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
set_by_app: contextvars.ContextVar[str] = contextvars.ContextVar("set_by_app")


@pytest.mark.anyio
async def test_contextvars_flow_into_the_app_and_through_its_iterable() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        set_by_app.set("from the app")
        start_response("200 OK", [])

        def body() -> Iterable[bytes]:
            yield request_id.get().encode()
            yield b" " + set_by_app.get().encode()

        return body()

    request_id.set("id-42")
    server = await serve(app)
    assert server.body == b"id-42 from the app"
