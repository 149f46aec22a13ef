"""The applications the benchmark serves, and one factory per contender.

Every contender serves the *same* WSGI app (or the same Starlette app), so a difference in
the figures is the adapter's (or the server's). Each factory imports its adapter only
when called, so a missing or broken adapter fails that contender alone: the server exits
or answers 500 and the runner records the row as unavailable.

Routes of :func:`wsgi_app`:

- ``/``: ``Hello, world!`` with a ``Content-Length``;
- ``/stream?size=N``: ``N`` bytes in 64 KiB chunks from a generator, with a
  ``Content-Length`` (so no chunked framing costs the client anything);
- ``/upload``: reads ``wsgi.input`` in 64 KiB pieces and answers the byte count;
- ``/io``: waits :data:`IO_WAIT` seconds in ``time.sleep`` (as a view waits on a
  database), then answers ``Hello, world!``;
- ``/sse?events=N&gap=S``: server-sent events from a generator that sleeps ``S`` seconds
  before each of its ``N`` events, each ``data: <time.monotonic() when yielded>``.

The framework sections serve a Flask or a Django app instead
(:mod:`benchmarks.framework_apps`): every WSGI factory below serves the app that the
``ADAPTER_BENCH_APP`` environment variable names (:data:`WSGI_APPS`; default ``plain``,
:func:`wsgi_app`), so one set of factories serves every section.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

if TYPE_CHECKING:
    # Annotations only: a server of ``run.py --baseline`` imports an older adapter,
    # whose private modules need not be these.
    from adapter._types import (
        ASGIApp,
        Environ,
        Message,
        Receive,
        Scope,
        Send,
        StartResponse,
        WSGIApp,
    )

HELLO = b"Hello, world!"
IO_WAIT = 0.02
APP_VARIABLE = "ADAPTER_BENCH_APP"
#: set by ``run.py --baseline``: the directory the ``adapter`` served must come from
ADAPTER_DIR_VARIABLE = "ADAPTER_BENCH_ADAPTER_DIR"
CHUNK_SIZE = 64 * 1024
READ_PIECE = 64 * 1024
# One chunk object, yielded again and again: the app itself holds no more than this.
_CHUNK = b"x" * CHUNK_SIZE


def _stream(total: int) -> Iterator[bytes]:
    full, rest = divmod(total, CHUNK_SIZE)
    for _ in range(full):
        yield _CHUNK
    if rest:
        yield _CHUNK[:rest]


def _count_upload(environ: Environ) -> int:
    body = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH", "")
    # PEP 3333: an app must not read past CONTENT_LENGTH; without one, read to EOF only
    # where the server promises wsgi.input_terminated.
    remaining = int(declared) if declared.isdigit() else None
    if remaining is None and not environ.get("wsgi.input_terminated"):
        return 0
    received = 0
    while remaining is None or remaining > 0:
        piece = body.read(READ_PIECE if remaining is None else min(READ_PIECE, remaining))
        if not piece:
            break
        received += len(piece)
        if remaining is not None:
            remaining -= len(piece)
    return received


def _events(count: int, gap: float) -> Iterator[bytes]:
    for _ in range(count):
        time.sleep(gap)
        yield f"data: {time.monotonic():.6f}\n\n".encode("ascii")


def wsgi_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The plain PEP 3333 app every WSGI contender serves (routes in the module docstring)."""
    path = environ.get("PATH_INFO", "")
    if path == "/sse":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        count = int(query.get("events", ["10"])[0])
        gap = float(query.get("gap", ["0.05"])[0])
        start_response("200 OK", [("Content-Type", "text/event-stream"),
                                  ("Cache-Control", "no-cache")])  # fmt: skip
        return _events(count, gap)
    if path == "/io":
        time.sleep(IO_WAIT)
    if path == "/stream":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        total = int(query.get("size", ["0"])[0])
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))],
        )
        return _stream(total)
    answer = str(_count_upload(environ)).encode("ascii") if path == "/upload" else HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


def _plain_app() -> WSGIApp:
    return wsgi_app


def _flask_app() -> WSGIApp:
    from benchmarks.framework_apps import flask_app

    return flask_app()


def _django_app() -> WSGIApp:
    from benchmarks.framework_apps import django_app

    return django_app()


WSGI_APPS: dict[str, Callable[[], WSGIApp]] = {
    "plain": _plain_app,
    "flask": _flask_app,
    "django": _django_app,
}


def selected_wsgi_app() -> WSGIApp:
    """The WSGI app named by ``ADAPTER_BENCH_APP`` (default ``plain``: :func:`wsgi_app`).

    :raises KeyError: for a name not in :data:`WSGI_APPS`.
    """
    name = os.environ.get(APP_VARIABLE, "plain")
    if name not in WSGI_APPS:
        raise KeyError(f"{APP_VARIABLE}={name!r}: choose one of {sorted(WSGI_APPS)}")
    return WSGI_APPS[name]()


def _check_adapter_source() -> None:
    """Refuse to serve another ``adapter`` than the one the runner asked for.

    :raises RuntimeError: when :data:`ADAPTER_DIR_VARIABLE` names a directory and
        ``adapter`` was imported from elsewhere (the row then shows as unavailable).
    """
    expected = os.environ.get(ADAPTER_DIR_VARIABLE)
    if not expected:
        return
    import adapter

    found = Path(adapter.__file__ or "?").resolve().parent.parent
    if found != Path(expected).resolve():
        raise RuntimeError(
            f"{ADAPTER_DIR_VARIABLE}={expected} but adapter was imported from {found}: "
            "start the server with that directory first on sys.path (as its working "
            "directory: uvicorn and gunicorn put theirs before PYTHONPATH)"
        )


# WSGI app behind an ASGI server (uvicorn --factory).


def ours_wsgi_to_asgi() -> ASGIApp:
    """``adapter.WsgiToAsgi`` around :func:`selected_wsgi_app`, with its defaults."""
    from adapter import WsgiToAsgi

    _check_adapter_source()
    return WsgiToAsgi(selected_wsgi_app())


def a2wsgi_wsgi_middleware() -> ASGIApp:
    """a2wsgi's ``WSGIMiddleware`` around :func:`selected_wsgi_app`, with its defaults."""
    from a2wsgi import WSGIMiddleware

    return cast("ASGIApp", WSGIMiddleware(selected_wsgi_app()))  # type: ignore[arg-type, unused-ignore]


def asgiref_wsgi_to_asgi() -> ASGIApp:
    """asgiref's ``WsgiToAsgi`` around :func:`selected_wsgi_app`, with its defaults."""
    from asgiref.wsgi import WsgiToAsgi

    app: ASGIApp = WsgiToAsgi(selected_wsgi_app())  # type: ignore[no-untyped-call]
    return app


async def _raw_stream(total: int, send: Send) -> None:
    length = str(total).encode("ascii")
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for chunk in _stream(total):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _raw_count(receive: Receive) -> bytes:
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionError("the client went away during the upload")
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return str(received).encode("ascii")


def raw_asgi_app() -> ASGIApp:
    """The routes of :func:`wsgi_app` as a bare ASGI app: the server's ceiling, no adapter."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("this benchmark app serves http only")
        if scope["path"] == "/stream":
            query = parse_qs(scope["query_string"].decode("latin-1"))
            await _raw_stream(int(query.get("size", ["0"])[0]), send)
            return
        # The native ASGI upload: the body read with receive(), message by message.
        answer = await _raw_count(receive) if scope["path"] == "/upload" else HELLO
        length = str(len(answer)).encode("ascii")
        headers = [(b"content-type", b"text/plain"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def _call_bare(environ: Environ) -> tuple[int, list[tuple[str, str]], bytes]:
    """:func:`wsgi_app` called as a server would, bare: status, headers and body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [int(status[:3]), headers]

    body = b"".join(wsgi_app(environ, start_response))
    return started[0], started[1], body


def thread_hop_asgi_app() -> ASGIApp:
    """:func:`wsgi_app` called in a worker thread per request, bare: the floor of the
    WSGI-on-ASGI rows.

    No adapter: the request goes to one of 40 threads through one shared queue, which
    call the WSGI app with the least of an environ and hand status, headers and body
    back with ``call_soon_threadsafe``.  Every design that runs the WSGI app off the
    event loop makes this round trip; what such a bridge costs beyond it is its own.
    """
    import asyncio
    import queue
    import threading

    jobs: queue.SimpleQueue[tuple[Any, Any, Any]] = queue.SimpleQueue()

    def work() -> None:
        while True:
            loop, future, environ = jobs.get()
            loop.call_soon_threadsafe(future.set_result, _call_bare(environ))

    for _ in range(40):
        threading.Thread(target=work, name="thread-hop", daemon=True).start()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("this benchmark app serves http only")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, list[tuple[str, str]], bytes]] = loop.create_future()
        environ = {"REQUEST_METHOD": scope["method"], "PATH_INFO": scope["path"]}
        jobs.put((loop, future, environ))
        status, headers, body = await future
        encoded = [(name.lower().encode(), value.encode()) for name, value in headers]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": body})

    return app


# ASGI app behind a WSGI server (gunicorn 'module:factory()').


def starlette_hello() -> ASGIApp:
    """A Starlette hello world answering the same bytes and headers as :func:`wsgi_app`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(HELLO)

    app: ASGIApp = Starlette(routes=[Route("/", hello)])
    return app


def ours_asgi_to_wsgi() -> WSGIApp:
    """``adapter.AsgiToWsgi`` around :func:`starlette_hello`, with its defaults."""
    from adapter import AsgiToWsgi

    _check_adapter_source()
    app: WSGIApp = AsgiToWsgi(starlette_hello())
    return app


def ours_asgi_to_wsgi_bare() -> WSGIApp:
    """``adapter.AsgiToWsgi`` around :func:`raw_asgi_app`: its cost without Starlette's."""
    from adapter import AsgiToWsgi

    _check_adapter_source()
    app: WSGIApp = AsgiToWsgi(raw_asgi_app())
    return app


def a2wsgi_asgi_middleware() -> WSGIApp:
    """a2wsgi's ``ASGIMiddleware`` around :func:`starlette_hello`, with its defaults."""
    from a2wsgi import ASGIMiddleware

    return cast("WSGIApp", ASGIMiddleware(starlette_hello()))  # type: ignore[arg-type, unused-ignore]


class LeastBridge:
    """:func:`starlette_hello` through the least bridge we could write: a measuring stick.

    Not an adapter (no checks, no disconnect handling, no request body, no errors
    handled, no cancellation, no lifespan): per request, only the work that any bridge
    running the ASGI app on one shared loop thread must do.  It builds the scope with
    ``adapter``'s :func:`~adapter.asgi_to_wsgi.scope.build_scope`, makes the app's task
    on the loop thread through ``call_soon_threadsafe``, collects the two messages in a
    list, and rings the request thread back with one byte on a socket pair (the floor
    row's round trip) as the task ends.  What ``AsgiToWsgi`` costs beyond this row is
    the price of doing the job right; what this row costs beyond the floor row is
    Starlette's and the task's, which no bridge avoids.

    A server runs it until the process ends; :meth:`close` stops its loop thread.
    """

    def __init__(self) -> None:
        import asyncio
        import socket
        import threading

        self._app = starlette_hello()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="least-bridge", daemon=True
        )
        self._thread.start()
        self._ears = threading.local()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _run(self, scope: Scope, sent: list[Any], bell: Any) -> None:
        import asyncio

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        try:
            await self._app(scope, receive, send)
        finally:
            self._tasks.discard(asyncio.current_task())
            bell.send(b"\0")

    def _start(self, scope: Scope, sent: list[Any], bell: Any) -> None:
        # asyncio keeps only a weak reference to a task (a done callback to drop it
        # would cost a loop pass: the task drops itself as it ends).
        self._tasks.add(self._loop.create_task(self._run(scope, sent, bell)))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (PEP 3333), with no checks at all."""
        import socket

        from adapter.asgi_to_wsgi.scope import build_scope

        pair = getattr(self._ears, "pair", None)
        if pair is None:
            pair = self._ears.pair = socket.socketpair()
            self._pairs.append(pair)
        ear, bell = pair
        sent: list[Any] = []
        self._loop.call_soon_threadsafe(self._start, build_scope(environ), sent, bell)
        ear.recv(1)
        head, body = sent
        headers = [(name.decode("latin-1"), value.decode("latin-1"))
                   for name, value in head["headers"]]  # fmt: skip
        start_response(f"{head['status']} OK", headers)
        return [body["body"]]

    def close(self) -> None:
        """Stop the loop thread and close the sockets (tests; a server never does)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        for ear, bell in self._pairs:
            ear.close()
            bell.close()


def least_asgi_to_wsgi() -> WSGIApp:
    """:class:`LeastBridge`: Starlette through the least bridge, for gunicorn's factory."""
    return LeastBridge()


def wsgi_app_with_loop_hop() -> WSGIApp:
    """:func:`wsgi_app` plus one bare round trip to an event loop thread per request.

    No ASGI app, no adapter: only the two thread hand-offs that any design running the
    ASGI app as a task on a background loop must make per request, done the cheapest way
    we know (``call_soon_threadsafe`` to the loop, one byte on a socket pair back, which
    on one idle CPU is cheaper than a future or a queue).  Its requests/s bound
    ``AsgiToWsgi`` (and a2wsgi) from above on this machine.
    """
    import asyncio
    import socket
    import threading

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="loop-hop", daemon=True).start()
    ears = threading.local()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not hasattr(ears, "pair"):
            ears.pair = socket.socketpair()
        ear, bell = ears.pair
        loop.call_soon_threadsafe(bell.send, b"\0")
        ear.recv(1)
        return wsgi_app(environ, start_response)

    return app
