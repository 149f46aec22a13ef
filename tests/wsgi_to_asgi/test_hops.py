"""WsgiToAsgi hands a complete response to a worker once, and streams the rest at once.

Flask's ``ClosingIterator`` and Django's ``HttpResponse`` are neither lists nor tuples,
but they carry a ``Content-Length``: once the first chunk reaches it, the body is
complete, and the worker closes the iterable in the same step.  A body that does not
say where it ends is never read ahead: its first chunk goes out before the app is
asked for the second (server-sent events).

The steps handed to worker threads are counted through :class:`WorkerHop`.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pytest

from adapter import WsgiToAsgi
from adapter._types import Environ, Message, StartResponse
from adapter.wsgi_to_asgi.workers import WorkerHop
from tests.wsgi_to_asgi.test_app import Server, http_scope, serve

T = TypeVar("T")


@pytest.fixture
def worker_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the steps WsgiToAsgi hands to worker threads, in order."""
    steps: list[str] = []
    run = WorkerHop.run

    async def counting(self: WorkerHop, func: Callable[[], T], context: contextvars.Context) -> T:
        steps.append(getattr(func, "__name__", None) or func.func.__name__)  # type: ignore[attr-defined]
        return await run(self, func, context)

    monkeypatch.setattr(WorkerHop, "run", counting)
    return steps


class Closing:
    """A response iterable that is not a list (as Flask's and Django's are not)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.closed = threading.Event()
        self.made = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.made += 1
            yield chunk

    def close(self) -> None:
        self.closed.set()


def app_of(
    body: Closing, status: str = "200 OK", content_length: int | None = None
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers = [("Content-Type", "text/plain")]
        if content_length is not None:
            headers.append(("Content-Length", str(content_length)))
        start_response(status, headers)
        return body

    return app


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# (name, method, status, content_length, chunks, body sent)
COMPLETE = [
    ("length reached", "GET", "200 OK", 5, [b"hello", b"never"], b"hello"),
    ("length reached after empty chunks", "GET", "200 OK", 5, [b"", b"hello", b"x"], b"hello"),
    ("zero length, no chunks", "GET", "200 OK", 0, [], b""),
    ("HEAD", "HEAD", "200 OK", 10, [b"hello", b"never"], b""),
    ("HEAD without a length", "HEAD", "200 OK", None, [b"hello", b"never"], b""),
    ("204", "GET", "204 No Content", None, [], b""),
    ("304 with empty chunks", "GET", "304 Not Modified", None, [b"", b""], b""),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "status", "content_length", "chunks", "sent"),
    [case[1:] for case in COMPLETE],
    ids=[case[0] for case in COMPLETE],
)
async def test_a_body_complete_at_its_first_chunk_takes_one_step(
    method: str,
    status: str,
    content_length: int | None,
    chunks: list[bytes],
    sent: bytes,
    worker_steps: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Closing(chunks)
    server = await serve(app_of(body, status, content_length), scope=http_scope(method=method))
    assert worker_steps == ["first"]
    assert server.status == int(status[:3])
    assert server.body == sent
    assert server.complete
    assert body.closed.is_set()
    # Nothing is read past the chunk that completed the body.
    assert body.made <= len([c for c in chunks if not c]) + 1
    assert not warnings_of(caplog)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "content_length", "expected"),
    [("200 OK", 3, b"hel"), ("200 OK", 0, b""), ("204 No Content", None, b"")],
    ids=["longer than its length", "content-length 0", "a body on a 204"],
)
async def test_a_first_chunk_past_the_length_is_cut_in_one_step_with_a_warning(
    status: str,
    content_length: int | None,
    expected: bytes,
    worker_steps: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = Closing([b"hello", b"never"])
    server = await serve(app_of(body, status, content_length))
    assert worker_steps == ["first"]
    assert server.body == expected
    assert server.complete
    assert body.closed.is_set()
    assert body.made == 1
    [warning] = warnings_of(caplog)
    assert ("Content-Length" if content_length is not None else "204") in warning


@pytest.mark.anyio
@pytest.mark.parametrize("content_length", [None, 10], ids=["no length", "length not reached"])
async def test_a_stream_sends_its_first_chunk_before_the_app_makes_the_second(
    content_length: int | None, worker_steps: list[str]
) -> None:
    first_received = threading.Event()
    second_asked = threading.Event()

    def events() -> Iterator[bytes]:
        yield b"data:"
        second_asked.set()
        # Only a client that already received the first chunk lets the app go on: a
        # worker that read ahead to learn whether the body ended would hang here.
        assert first_received.wait(10), "the first chunk was held back"
        yield b" 12\n\n"

    async def client(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"] == b"data:":
            assert not second_asked.is_set() or first_received.is_set()
            first_received.set()

    body = Closing(events())
    server = await serve(app_of(body, content_length=content_length), Server(on_send=client))
    assert server.body == b"data: 12\n\n"
    assert server.complete
    assert body.closed.is_set()
    assert worker_steps == ["first", "pump"]


@pytest.mark.anyio
async def test_a_flask_response_takes_one_step(worker_steps: list[str]) -> None:
    from tests.apps import flask_app

    server = await serve(WsgiToAsgi(flask_app.app), scope=http_scope("/json"))
    assert server.status == 200
    assert b"hello" in server.body
    assert server.complete
    assert worker_steps == ["first"]


@pytest.mark.anyio
async def test_a_django_response_takes_one_step(worker_steps: list[str]) -> None:
    # django-admin startproject's CommonMiddleware sets the Content-Length.
    from django.core.wsgi import get_wsgi_application
    from django.test.utils import override_settings

    from tests.apps import django_app

    with override_settings(
        ROOT_URLCONF=django_app.__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    ):
        handler: Any = get_wsgi_application()
        server = await serve(WsgiToAsgi(handler), scope=http_scope("/hello"))
    assert server.status == 200
    assert b"django" in server.body
    assert server.complete
    assert worker_steps == ["first"]
