"""The request body of an AsgiToWsgi request: ``wsgi.input`` read in bounded pieces.

Used by :mod:`adapter.asgi_to_wsgi.responder` in the WSGI server's request thread only (the
thread ``wsgi.input`` belongs to), one piece per ``http.request`` message the app's
``receive()`` asks for: memory stays bounded by :data:`BODY_PIECE_SIZE` whatever the
upload's size.
"""

from __future__ import annotations

import sys

from adapter._types import Environ
from adapter.asgi_to_wsgi.scope import content_length

__all__ = ["BODY_PIECE_SIZE", "LARGEST_CONTENT_LENGTH", "Chunk", "InputReader"]

LARGEST_CONTENT_LENGTH = sys.maxsize
"""The largest ``CONTENT_LENGTH`` served (2**63 - 1 on 64-bit builds): no file, socket
or ``read()`` size can go past it, so a larger one is refused with a 413 at once."""

BODY_PIECE_SIZE = 64 * 1024
"""Bytes read from ``wsgi.input`` per ``http.request`` message (the memory bound)."""

Chunk = tuple[bytes, bool]
"""A body message as (body, more_body)."""


class InputReader:
    """``wsgi.input`` read in bounded pieces, in the request thread only.

    :param environ: the request's PEP 3333 environ.
    """

    def __init__(self, environ: Environ) -> None:
        self._input = environ.get("wsgi.input")
        length = content_length(environ)
        if length is None:
            # PEP 3333: without CONTENT_LENGTH the app must not read past it, unless the
            # server says the stream ends at the body's end (wsgi.input_terminated,
            # e.g. chunked uploads, which must arrive whole).
            self.left: int | None = None if environ.get("wsgi.input_terminated") else 0
        else:
            self.left = length

    def read_piece(self) -> Chunk:
        """The next piece and whether more follows.

        :raises OSError: if the body is cut short (the client went away).
        :raises Exception: whatever ``wsgi.input`` raises; not always an
            :class:`OSError` (gunicorn raises its parser's errors for a malformed
            chunked body).
        """
        if self.left == 0 or self._input is None:
            return b"", False
        wanted = BODY_PIECE_SIZE if self.left is None else min(BODY_PIECE_SIZE, self.left)
        parts: list[bytes] = []
        got = 0
        while got < wanted:  # a file's read(n) may return less than n before the end
            data = self._input.read(wanted - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        piece = b"".join(parts)
        if self.left is None:
            return piece, got == wanted
        if got < wanted:
            raise OSError("the client sent less than CONTENT_LENGTH bytes")
        self.left -= got
        return piece, self.left > 0
