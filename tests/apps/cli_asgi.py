"""A plain ASGI 3 app for the command-line tests: a function, an object, and a factory."""

from __future__ import annotations

from adapter._types import ASGIApp, Receive, Scope, Send
from tests.apps.cli_common import answer


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
    body = answer("asgi", scope["path"], scope["query_string"].decode("latin-1"), False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Application:
    """An app object whose ``__call__`` is ``async def``, as Starlette's and Django's are."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)


application = Application()


def create_app() -> ASGIApp:
    """A factory, for ``--factory``."""
    return application
