"""WsgiToAsgi in memory, with a hand-written ASGI server side: threads, environ, scopes.

The :class:`Server` and helpers defined here serve the other WsgiToAsgi tests too:
``test_wsgi_to_asgi_body.py`` (wsgi.input), ``test_wsgi_to_asgi_response.py`` (PEP 3333
responses, file_wrapper) and ``test_wsgi_to_asgi_lifecycle.py`` (backpressure, close(),
disconnects, cancellation, leaks).
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from adapter import WsgiToAsgi, async_to_sync
from adapter._types import Environ, Message, Scope, StartResponse
from adapter.wsgi_to_asgi.streams import FileWrapper


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
    token = anyio.lowlevel.current_token()
    seen: list[tuple[int, int]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # WsgiToAsgi's own hops back to the loop (write(), an unannounced body) go this
        # way.  The app's thread is a worker of adapter's pool, not an anyio worker
        # thread, so anyio.from_thread needs the token; async_to_sync needs nothing
        # (the test below).
        seen.append(
            (threading.get_ident(), anyio.from_thread.run_sync(threading.get_ident, token=token))
        )
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

    adapter = WsgiToAsgi(blocking, max_workers=2, min_workers=2)
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
