"""AsgiToWsgi lifespan edge cases: apps that never answer it, slow startups (issue 12 point 6).

An app that ignores ``scope["type"]`` must not keep the first request waiting: calling
``receive()`` again before answering ``lifespan.startup``, or sending a message that is
not a lifespan one, means "not supported" at once.  A slow startup is waited for up to
``lifespan_timeout``.  Each case on asyncio and trio (the ``backend`` fixture), with
``"auto"`` and ``"on"``; the requests run in a thread bounded by a join timeout.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from adapter import AsgiToWsgi, LifespanFailed
from adapter._types import ASGIApp, Receive, Scope, Send
from tests.asgi_to_wsgi.test_app import backend, call, respond
from tests.asgi_to_wsgi.test_lifecycle import loop_task_count

__all__ = ["backend"]  # the fixture, re-used

BOUND = 20.0  # seconds: far below the 60 s default timeout these cases must not wait for


def bounded(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a thread; fail if it takes longer than BOUND (a hang)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("value", func()))
        except BaseException as exc:
            outcome.append(("error", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert outcome, f"no answer within {BOUND} s"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def scope_blind_task_pair(ended: threading.Event) -> ASGIApp:
    """One task waits on receive() for http.disconnect, another sends the response."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch_disconnect)
                await respond(send, b"answered")
                tasks.cancel_scope.cancel()
        finally:
            if scope["type"] == "lifespan":
                ended.set()

    return app


def body_loop(ended: threading.Event) -> ASGIApp:
    """Loops on receive() until it sees an http.request, then answers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive())["type"] != "http.request":
                pass
            await respond(send, b"answered")
        finally:
            if scope["type"] == "lifespan":
                ended.set()

    return app


def sends_http_in_lifespan(ended: threading.Event) -> ASGIApp:
    """Ignores the scope: answers at once, as if it were a request."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await respond(send, b"answered")
            if scope["type"] == "lifespan":
                await anyio.sleep_forever()  # as if it waited on something more
        finally:
            if scope["type"] == "lifespan":
                ended.set()

    return app


SCOPE_BLIND = [scope_blind_task_pair, body_loop, sends_http_in_lifespan]


@pytest.mark.parametrize("shape", SCOPE_BLIND)
def test_auto_serves_an_app_that_ignores_the_lifespan_scope(
    backend: str, shape: Callable[[threading.Event], ASGIApp]
) -> None:
    ended = threading.Event()
    baseline = loop_task_count(backend)
    wsgi_app = AsgiToWsgi(shape(ended), lifespan="auto", backend=backend)
    assert bounded(lambda: call(wsgi_app))[::2] == ("200 OK", b"answered")
    assert bounded(lambda: call(wsgi_app))[2] == b"answered"
    assert ended.wait(BOUND), "its lifespan call was not ended"
    wsgi_app.close()
    assert loop_task_count(backend) == baseline  # no lifespan task left behind


@pytest.mark.parametrize("shape", SCOPE_BLIND)
def test_on_fails_at_once_for_an_app_that_ignores_the_lifespan_scope(
    backend: str, shape: Callable[[threading.Event], ASGIApp]
) -> None:
    ended = threading.Event()
    wsgi_app = AsgiToWsgi(shape(ended), lifespan="on", backend=backend)
    with pytest.raises(LifespanFailed, match=r"receive\(\) again|in the lifespan scope"):
        bounded(lambda: call(wsgi_app))
    assert ended.wait(BOUND)


def slow_startup(
    seconds: float, events: list[str], cancelled: threading.Event | None = None
) -> ASGIApp:
    """Startup takes ``seconds`` (cancellable), then completes; records what happens
    (and sets ``cancelled`` once its startup was cancelled)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            try:
                await anyio.sleep(seconds)
            except anyio.get_cancelled_exc_class():
                events.append("startup cancelled")
                if cancelled is not None:
                    cancelled.set()
                raise
            scope["state"]["ready"] = True
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, json.dumps(sorted(scope["state"])).encode())

    return app


def test_slow_startup_within_the_timeout_is_waited_for(backend: str) -> None:
    events: list[str] = []
    wsgi_app = AsgiToWsgi(slow_startup(0.2, events), lifespan="on", backend=backend)
    assert bounded(lambda: call(wsgi_app))[2] == b'["ready"]'
    wsgi_app.close()
    assert events == []


def test_startup_past_the_timeout_auto_warns_and_serves_without_lifespan(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    cancelled = threading.Event()
    baseline = loop_task_count(backend)
    app = slow_startup(3600, events, cancelled)
    wsgi_app = AsgiToWsgi(app, lifespan="auto", lifespan_timeout=0.1, backend=backend)
    with caplog.at_level(logging.WARNING, logger="adapter"):
        assert bounded(lambda: call(wsgi_app))[2] == b"[]"
    assert any("lifespan_timeout" in r.getMessage() for r in caplog.records)
    assert bounded(lambda: call(wsgi_app))[2] == b"[]"  # no second startup
    wsgi_app.close()
    assert cancelled.wait(BOUND), "the startup was not cancelled"
    assert events == ["startup cancelled"]
    assert loop_task_count(backend) == baseline


def test_startup_past_the_timeout_is_an_error_with_on(backend: str) -> None:
    events: list[str] = []
    cancelled = threading.Event()
    app = slow_startup(3600, events, cancelled)
    wsgi_app = AsgiToWsgi(app, lifespan="on", lifespan_timeout=0.1, backend=backend)
    for _ in range(2):  # every request, not only the first
        with pytest.raises(LifespanFailed, match="did not complete within lifespan_timeout"):
            bounded(lambda: call(wsgi_app))
    # The cancellation reaches the app's task on the loop thread, maybe after the
    # request thread was told: wait for it (bounded), then check it came once.
    assert cancelled.wait(BOUND), "the startup was not cancelled"
    assert events == ["startup cancelled"]


def test_shutdown_past_the_timeout_is_cancelled(backend: str) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            try:
                await anyio.sleep_forever()
            finally:
                cancelled.set()
        await respond(send, b"fine")

    wsgi_app = AsgiToWsgi(app, lifespan="on", lifespan_timeout=0.2, backend=backend)
    assert call(wsgi_app)[2] == b"fine"
    with pytest.raises(LifespanFailed, match="shutdown did not complete within"):
        bounded(wsgi_app.close)
    assert cancelled.wait(BOUND), "the shutdown was not cancelled"


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_lifespan_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="lifespan_timeout"):
        AsgiToWsgi(body_loop(threading.Event()), lifespan_timeout=timeout)
