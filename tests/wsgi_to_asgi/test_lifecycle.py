"""WsgiToAsgi: backpressure, close() however a request ends, and no leaks.

Every failure mode is followed by a request on the same ``max_workers=1`` instance: it
can only be served if the one worker thread was given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from adapter import ClientDisconnected, WsgiToAsgi, async_to_sync
from adapter._types import Environ, Message, StartResponse
from adapter.wsgi_to_asgi.responder import PULL_BYTES
from tests.wsgi_to_asgi.test_app import BODY_KINDS, Server, body_scope, hello, http_scope, serve

CHUNK = 64 * 1024


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Here also on uvloop: the stream wakes the loop with its call_soon_threadsafe."""
    backend: tuple[str, dict[str, object]] = request.param
    return backend


class Body:
    """A response iterable that counts what it produced and records ``close()``.

    :param count: how many chunks (None: without end).
    :param fail_at: raise at this chunk.
    :param gate: each chunk after the first waits for this event.
    """

    def __init__(
        self,
        count: int | None = None,
        *,
        fail_at: int | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.count = count
        self.fail_at = fail_at
        self.gate = gate
        self.produced = 0
        self.made = 0
        self.closed = threading.Event()
        self.entered_gate = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.count is not None and self.made >= self.count:
            raise StopIteration
        if self.made == self.fail_at:
            raise LookupError("the app failed mid-stream")
        if self.gate is not None and self.made >= 1:
            self.entered_gate.set()
            assert self.gate.wait(10)
        self.made += 1
        self.produced += CHUNK
        return b"x" * CHUNK

    def close(self) -> None:
        self.closed.set()


def app_of(body: Body) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/hello":
            return hello(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return body

    return app


async def assert_worker_free(adapter: WsgiToAsgi) -> None:
    """The next request is served: with ``max_workers=1``, the worker was given back."""
    server = await serve(adapter, scope=http_scope("/hello"))
    assert (server.status, server.body) == (200, b"Hello, world!")


# 6. Backpressure by bytes --------------------------------------------------------------


@pytest.mark.anyio
async def test_a_slow_client_holds_the_app_back_by_bytes() -> None:
    body = Body(count=160)  # 10 MiB: far more than the app may ever be ahead by
    accepted = 0
    lead = 0

    async def slow_client(message: Message) -> None:
        nonlocal accepted, lead
        if message["type"] == "http.response.body":
            # While send() waits, no worker runs the app: what it produced beyond what
            # the client accepted is all that is held in memory.
            lead = max(lead, body.produced - accepted)
            await anyio.lowlevel.checkpoint()
            accepted += len(message["body"])

    server = await serve(app_of(body), Server(on_send=slow_client))
    assert accepted == 160 * CHUNK
    assert server.complete
    # One batch being sent, one pulled ahead and waiting: each at most PULL_BYTES + a chunk.
    assert lead <= 2 * (PULL_BYTES + CHUNK) < 1024 * 1024
    assert body.closed.is_set()


@pytest.mark.anyio
async def test_a_slow_stream_goes_out_chunk_by_chunk() -> None:
    """Server-sent events: each chunk reaches the client before the app makes the next."""
    delivered = {n: threading.Event() for n in range(5)}

    def events(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        for number in range(5):
            yield b"data: %d\n\n" % number
            # The app waits until the client got this event: batching would deadlock.
            assert delivered[number].wait(10), f"event {number} was held back"

    async def client(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            delivered[int(message["body"].split()[1])].set()

    server = await serve(events, Server(on_send=client))
    assert server.body == b"".join(b"data: %d\n\n" % n for n in range(5))
    assert server.complete


# 7. close() however the request ends ------------------------------------------------------


async def stop_after(server: Server, messages: int, action: Callable[[], None]) -> None:
    """Make ``server`` run ``action`` once it has received ``messages`` messages."""

    async def on_send(message: Message) -> None:
        if len(server.sent) == messages:
            action()

    server.on_send = on_send


def client_disconnects(server: Server) -> Callable[[Message], Awaitable[None]]:
    async def on_send(message: Message) -> None:
        if len(server.sent) == 3:
            server.disconnect()  # http.disconnect from receive(), as a server says it
        if len(server.sent) > 50:
            raise AssertionError("the app streamed on after the client left")

    return on_send


def send_fails(
    server: Server, error: Exception | None = None
) -> Callable[[Message], Awaitable[None]]:
    async def on_send(message: Message) -> None:
        if len(server.sent) >= 3:
            raise error or ConnectionResetError("the client is gone")

    return on_send


UVLOOP_CLOSED = (
    "unable to perform operation on <TCPTransport closed=True reading=False 0x7f>; "
    "the handler is closed"
)
"""What uvloop's transport raises on a write after the connection closed, and uvicorn's
send() hands on."""


@pytest.mark.anyio
@pytest.mark.parametrize(
    "how", ["http.disconnect", "send raises OSError", "send raises uvloop's RuntimeError"]
)
async def test_close_runs_when_the_client_goes_while_streaming(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = Body()  # without end: only the disconnect can stop it
    adapter = WsgiToAsgi(app_of(body), max_workers=1)
    server = Server()
    if how == "http.disconnect":
        server.on_send = client_disconnects(server)
    elif how == "send raises OSError":
        server.on_send = send_fails(server)
    else:
        server.on_send = send_fails(server, RuntimeError(UVLOOP_CLOSED))
    with caplog.at_level("DEBUG", logger="adapter"):
        await serve(adapter, server)  # raises nothing: a client that leaves is no error
    assert not [record for record in caplog.records if record.levelno > logging.DEBUG]
    assert body.closed.is_set()
    assert body.made < 50
    await assert_worker_free(adapter)  # hello on the same single worker


@pytest.mark.anyio
@pytest.mark.parametrize("error", [BrokenPipeError("gone"), RuntimeError(UVLOOP_CLOSED)])
@pytest.mark.parametrize("failing", ["http.response.start", "http.response.body"])
async def test_a_send_that_fails_for_a_gone_client_is_no_error(
    error: Exception, failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The wrk reproduction: a hello world whose client left between two send() calls.
    closed = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingList([b"Hello, world!"], closed)

    async def on_send(message: Message) -> None:
        if message["type"] == failing:
            raise error

    adapter = WsgiToAsgi(app, max_workers=1)
    with caplog.at_level("DEBUG", logger="adapter"):
        await serve(adapter, Server(on_send=on_send))
    assert closed.is_set()
    assert [record.levelname for record in caplog.records] == ["DEBUG"]
    assert "the client is gone" in caplog.records[0].getMessage()
    await assert_worker_free(adapter)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("Response content longer than Content-Length"),
        RuntimeError("Invalid HTTP header value."),
        ValueError("the handler is closed"),  # the words alone are not enough
    ],
)
async def test_a_send_that_fails_otherwise_reaches_the_server(error: Exception) -> None:
    async def on_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise error

    with pytest.raises(type(error), match=str(error)):
        await serve(hello, Server(on_send=on_send))


class ClosingList(list[bytes]):
    """A list body with a ``close()``, which sets ``closed``."""

    def __init__(self, chunks: list[bytes], closed: threading.Event) -> None:
        super().__init__(chunks)
        self.closed = closed

    def close(self) -> None:
        self.closed.set()


@pytest.mark.anyio
@pytest.mark.parametrize("count", [0, 1, 5])
async def test_close_runs_on_success(count: int) -> None:
    body = Body(count=count)
    server = await serve(app_of(body))
    assert server.complete
    assert len(server.body) == count * CHUNK
    assert body.closed.is_set()


@pytest.mark.anyio
@pytest.mark.parametrize("fail_at", [0, 1, 4])
async def test_close_runs_on_error(fail_at: int) -> None:
    body = Body(count=10, fail_at=fail_at)
    adapter = WsgiToAsgi(app_of(body), max_workers=1)
    server = Server()
    with pytest.raises(LookupError):
        await serve(adapter, server)
    assert body.closed.is_set()
    assert server.status == (500 if fail_at == 0 else 200)
    await assert_worker_free(adapter)


async def serve_cancelled(
    adapter: WsgiToAsgi,
    server: Server,
    reached: threading.Event,
    then: Callable[[], object] | None = None,
) -> None:
    """Serve one request and cancel it once the app set ``reached``; then call ``then``."""
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(adapter, http_scope(), server.receive, server.send)
            await anyio.to_thread.run_sync(reached.wait, 10)
            task_group.cancel_scope.cancel()
            if then is not None:
                then()


@pytest.mark.anyio
async def test_close_runs_on_cancellation_while_the_app_blocks() -> None:
    gate = threading.Event()
    body = Body(gate=gate)
    adapter = WsgiToAsgi(app_of(body), max_workers=1)
    server = Server()
    # The worker can not be interrupted mid-chunk; once the chunk is done the request
    # ends and the iterable is closed, shielded from the cancellation.
    await serve_cancelled(adapter, server, body.entered_gate, then=gate.set)
    assert body.closed.is_set()
    await assert_worker_free(adapter)
    server.close()


@pytest.mark.anyio
async def test_cancellation_reaches_a_coroutine_the_app_waits_for() -> None:
    # The WSGI app waits in async_to_sync for a coroutine on the server's loop: the
    # request's cancellation (a server shutting down) cancels that coroutine too, as
    # asgiref's WsgiToAsgi does, instead of waiting for it to end by itself.
    started = threading.Event()
    seen: list[str] = []

    async def query() -> bytes:
        started.set()
        try:
            await anyio.sleep(5)
        except anyio.get_cancelled_exc_class():
            seen.append("coroutine cancelled")
            raise
        seen.append("coroutine slept to the end")
        return b"late"

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/hello":
            return hello(environ, start_response)
        try:
            body = async_to_sync(query)()
        except BaseException as exc:
            seen.append(f"the app got {type(exc).__name__}")
            raise
        start_response("200 OK", [])
        return [body]

    adapter = WsgiToAsgi(app, max_workers=1)
    server = Server()
    await serve_cancelled(adapter, server, started)
    cancelled = anyio.get_cancelled_exc_class().__name__
    assert seen == ["coroutine cancelled", f"the app got {cancelled}"]
    assert server.sent == []
    await assert_worker_free(adapter)
    server.close()


@pytest.mark.anyio
async def test_close_runs_on_cancellation_before_the_first_chunk() -> None:
    gate = threading.Event()
    entered = threading.Event()
    body = Body(count=3)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/hello":
            return hello(environ, start_response)
        start_response("200 OK", [])
        entered.set()
        assert gate.wait(10)
        return body

    adapter = WsgiToAsgi(app, max_workers=1)
    server = Server()
    await serve_cancelled(adapter, server, entered, then=gate.set)
    assert body.closed.is_set()
    assert server.sent == []  # cancelled before anything was sent
    await assert_worker_free(adapter)
    server.close()


@pytest.mark.anyio
async def test_cancellation_frees_an_app_waiting_for_an_announced_body() -> None:
    reading = threading.Event()
    outcome: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/hello":
            return hello(environ, start_response)
        reading.set()
        try:
            environ["wsgi.input"].read()  # the rest of the body never comes
        except ClientDisconnected as exc:
            outcome.append(exc)
            raise
        raise AssertionError("a body cut short must not read as complete")

    adapter = WsgiToAsgi(app, max_workers=1)
    server = Server([b"first part"], complete=False)
    scope = body_scope("content-length", [b"first part, and a second never sent"])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(adapter, scope, server.receive, server.send)
            await anyio.to_thread.run_sync(reading.wait, 10)
            task_group.cancel_scope.cancel()
    assert len(outcome) == 1
    await assert_worker_free(adapter)
    server.close()


@pytest.mark.anyio
async def test_close_runs_on_cancellation_while_the_client_is_slow() -> None:
    body = Body()
    adapter = WsgiToAsgi(app_of(body), max_workers=1)
    stalled = anyio.Event()
    server = Server()

    async def stalls(message: Message) -> None:
        if len(server.sent) == 3:
            stalled.set()
            await anyio.sleep_forever()

    server.on_send = stalls
    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(adapter, http_scope(), server.receive, server.send)
            await stalled.wait()
            task_group.cancel_scope.cancel()
    assert body.closed.is_set()
    await assert_worker_free(adapter)
    server.close()


# No leaks -------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def tasks_now() -> int:
    # On trio every task lives in a nursery that waits for it, so a returned request
    # can leave none behind; asyncio tasks can outlive their creator, so count them.
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


@pytest.mark.anyio
async def test_no_thread_task_or_file_leaks_however_requests_end(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * (4 * PULL_BYTES))

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        mode = environ["PATH_INFO"]
        if mode == "/hello":
            return hello(environ, start_response)
        if mode == "/boom":
            raise LookupError("before the response")
        start_response("200 OK", [])
        if mode == "/file":
            result: Iterable[bytes] = environ["wsgi.file_wrapper"](path.open("rb"), CHUNK)
            return result
        if mode == "/read":
            environ["wsgi.input"].read()
        return Body(count=None if mode == "/forever" else 8, fail_at=3 if mode == "/late" else None)

    adapter = WsgiToAsgi(app, max_workers=1)
    await assert_worker_free(adapter)  # warm the worker pool
    threads, fds, tasks = threading.active_count(), open_fds(), tasks_now()
    for _ in range(3):
        for mode in ["/ok", "/file", "/boom", "/late"]:
            with contextlib.suppress(LookupError):
                await serve(adapter, scope=http_scope(mode))
        for mode in ["/forever", "/file"]:
            server = Server()
            server.on_send = client_disconnects(server)
            await serve(adapter, server, http_scope(mode))
            server = Server()
            server.on_send = send_fails(server)
            await serve(adapter, server, http_scope(mode))
        for kind in BODY_KINDS:
            cut = Server([b"partial"], complete=False)
            cut.disconnect()
            await serve(adapter, cut, body_scope(kind, [b"partial and more"], path="/read"))
    await assert_worker_free(adapter)
    assert threading.active_count() <= threads + 1
    assert open_fds() == fds
    assert tasks_now() == tasks
