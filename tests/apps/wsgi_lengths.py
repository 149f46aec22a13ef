"""A WSGI app whose /too-long response is longer than its Content-Length (a bug in the
app), beside a correct /ok; served through WsgiToAsgi."""

from __future__ import annotations

from collections.abc import Iterable

from adapter import WsgiToAsgi
from adapter._types import Environ, StartResponse


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/too-long":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"12345", b"and more"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


asgi = WsgiToAsgi(app)
