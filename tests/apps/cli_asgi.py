"""A plain ASGI 3 app for the command-line tests: a function, an object, and a factory."""

from __future__ import annotations

import anyio

from adapter._types import ASGIApp, Receive, Scope, Send
from tests.apps.cli_common import HOLD_LIMIT, answer


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer JSON saying it is ASGI and its pid; complete the lifespan protocol."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/events"):
        await _events(send)
        return
    body = answer(
        "asgi",
        scope["path"],
        scope["query_string"].decode("latin-1"),
        False,
        root_path=scope.get("root_path", ""),
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _events(send: Send) -> None:
    """Server-sent events, one tick at a time, until the client goes (or a limit passes)."""
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for tick in range(int(HOLD_LIMIT / 0.05)):
        try:
            await send(
                {"type": "http.response.body", "body": b"data: %d\n\n" % tick, "more_body": True}
            )
        except OSError:  # AsgiToWsgi: the client went away
            return
        await anyio.sleep(0.05)
    await send({"type": "http.response.body", "body": b""})


class Application:
    """An app object whose ``__call__`` is ``async def``, as Starlette's and Django's are."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)


application = Application()


def create_app() -> ASGIApp:
    """A factory, for ``--factory``."""
    return application
