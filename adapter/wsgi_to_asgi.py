"""WsgiToAsgi: a WSGI application served by an ASGI server.  (Being written: issue 2.)"""

from __future__ import annotations

from typing import Any

from adapter._types import Receive, Scope, Send, WSGIApp


class WsgiToAsgi:
    """Placeholder until issue 2 lands."""

    def __init__(
        self,
        wsgi_app: WSGIApp,
        *,
        max_workers: int = 40,
        max_request_body: int | None = None,
        **_: Any,
    ) -> None:
        self.wsgi_app = wsgi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError("WsgiToAsgi is being written (issue 2)")
