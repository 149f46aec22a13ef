"""What AsgiToWsgi hands the WSGI server: the response iterable, or a plain 500.

PEP 3333's side of :mod:`adapter.asgi_to_wsgi.responder`, which feeds the iterable one ASGI
body message at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from adapter._http import plain_text

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

    from adapter.asgi_to_wsgi.responder import AsgiToWsgiResponder

__all__ = ["ResponseBody", "internal_server_error", "plain_response"]


def plain_response(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    """Start a complete plain-text response of our own and return its body.

    :param start_response: the server's PEP 3333 ``start_response``.
    :param status: the PEP 3333 status line, e.g. ``"400 Bad Request"``.
    :param text: the body, a short ASCII sentence for the client.
    """
    body, headers = plain_text(text)
    start_response(status, headers)
    return [body]


def internal_server_error(start_response: StartResponse) -> list[bytes]:
    """Start a complete, plain 500 response and return its body.

    :param start_response: the server's PEP 3333 ``start_response``.
    """
    return plain_response(start_response, "500 Internal Server Error", "Internal Server Error")


class ResponseBody:
    """The PEP 3333 response iterable: each ASGI body message becomes one chunk."""

    def __init__(self, responder: AsgiToWsgiResponder, first: bytes, more: bool) -> None:
        self._responder = responder
        self._pending = first
        self._more = more

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while not self._pending:
            if not self._more:
                raise StopIteration
            self._pending, self._more = self._responder.next_chunk()
        chunk, self._pending = self._pending, b""
        return chunk

    def close(self) -> None:
        """PEP 3333: the server calls this however the response ends; early means gone."""
        self._responder.finish(complete=not self._more and not self._pending)
