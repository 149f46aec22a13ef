"""AsgiToWsgi: an ASGI application served by a WSGI server.  (Being written: issue 3.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter._types import ASGIApp, Environ, StartResponse


class AsgiToWsgi:
    """Placeholder until issue 3 lands."""

    def __init__(
        self, asgi_app: ASGIApp, *, backend: str = "asyncio", lifespan: str = "auto", **_: Any
    ) -> None:
        self.asgi_app = asgi_app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise NotImplementedError("AsgiToWsgi is being written (issue 3)")

    def close(self) -> None:
        """Run lifespan shutdown."""
