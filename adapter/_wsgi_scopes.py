"""WsgiToAsgi's small pieces around a request: other scopes, and what headers say.

``lifespan`` is answered (a WSGI app has no startup or shutdown), ``websocket`` is
refused before accepting, and the request headers tell how long the body claims to be.
"""

from __future__ import annotations

from adapter._types import Receive, Scope, Send

__all__ = ["answer_lifespan", "declared_length", "refuse_websocket"]


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """A WSGI app has no startup or shutdown: acknowledge both.

    :param receive: the ASGI ``receive`` callable of a ``lifespan`` scope.
    :param send: its ``send`` callable.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when absent or not a number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def refuse_websocket(receive: Receive, send: Send) -> None:
    """A WSGI app can not speak websocket: close before accepting.

    The ASGI spec turns a close before ``websocket.accept`` into an HTTP 403.

    :param receive: the ASGI ``receive`` callable of a ``websocket`` scope.
    :param send: its ``send`` callable.
    """
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
