"""WsgiToAsgi's small pieces around a request: other scopes, and what headers say.

``lifespan`` is answered (a WSGI app has no startup or shutdown), ``websocket`` is
refused before accepting, and the request headers tell whether a body follows and how
long it claims to be.
"""

from __future__ import annotations

from adapter._types import Receive, Scope, Send

__all__ = ["answer_lifespan", "declared_length", "may_have_body", "refuse_websocket"]


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


_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


def may_have_body(scope: Scope) -> bool:
    """Whether a request declares a body (a wrong guess costs speed, not correctness).

    :param scope: an ASGI ``http`` scope.
    """
    for name, value in scope.get("headers", ()):
        name = name.lower()
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    # HTTP/2 and 3 frame a body without either header.
    return scope.get("http_version", "1.1") not in ("1.0", "1.1") and (
        scope["method"] not in _BODYLESS_METHODS
    )


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
