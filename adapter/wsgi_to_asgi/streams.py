"""The byte streams a WSGI app sees: ``wsgi.input``, ``wsgi.errors``, ``wsgi.file_wrapper``.

:class:`WsgiInput` is ``wsgi.input``: a read-only file over the request body that
pulls more of it only when a read needs it, through a ``fetch`` callable.
:class:`adapter.WsgiToAsgi` passes a ``fetch`` that hops to the event loop and awaits
``receive()``; the class itself knows nothing of threads or loops, so its file
semantics are tested against :class:`io.BytesIO` directly.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from adapter.exceptions import ClientDisconnected, RequestBodyTooLarge

__all__ = [
    "READ_AHEAD_BYTES",
    "FileWrapper",
    "LoggerStream",
    "RequestBodyTooLarge",
    "WsgiInput",
]

logger = logging.getLogger("adapter")

READ_AHEAD_BYTES = 1024 * 1024
"""The most body bytes one ``fetch`` is asked for: the bound on read-ahead.

Measured on uvicorn (a 512 MiB upload read 64 KiB at a time; its messages are about
256 KiB), with reads waiting for a full pipe: 256 KiB and 512 KiB cost about a quarter
more CPU per GiB than 1 MiB (1.04-1.20 and 1.06 s against 0.84-0.96), mostly in the
server's own page faults, which a larger read-ahead spares by keeping its memory in
use."""

Fetch = Callable[[int], tuple[bytes, bool]]
"""``fetch(wanted)`` returns ``(body bytes, more_body)``; it may return fewer or more
bytes than ``wanted`` (whole ASGI messages) and raises :class:`ClientDisconnected`."""


class WsgiInput:
    """``wsgi.input``: the request body as a read-only binary file, streamed on demand.

    Every read method behaves as :class:`io.BytesIO`'s does over the whole body
    (``read(n)`` returns exactly ``n`` bytes until the body ends), however the body
    was split into messages.  Bytes are fetched only when a read needs them, at most
    :data:`READ_AHEAD_BYTES` (or one message) past what it needs.

    What was fetched is kept as it came (one piece and a position in it), not copied
    into a buffer: a read that a piece covers is one slice of it, or the piece itself
    when the read wants it whole, and a read across pieces joins them once.

    :param fetch: pulls the next piece of body; see :data:`Fetch`.
    :param max_body: raise :class:`RequestBodyTooLarge` once more bytes than this
        arrived; ``None`` for no limit.
    """

    __slots__ = ("_disconnected", "_eof", "_fetch", "_max_body", "_piece", "_pos", "_received")

    def __init__(self, fetch: Fetch, max_body: int | None = None) -> None:
        self._fetch = fetch
        self._max_body = max_body
        # The body fetched and not read yet: _piece[_pos:].
        self._piece = b""
        self._pos = 0
        self._eof = False
        self._disconnected = False
        self._received = 0

    def _next_piece(self, wanted: int) -> bytes:
        """Fetch more body (at least a byte); b"" once the body has ended.

        The current piece must be read out: this one replaces it.
        """
        while not self._eof:
            if self._disconnected:
                raise ClientDisconnected.during_body()
            try:
                data, more_body = self._fetch(min(max(wanted, 1), READ_AHEAD_BYTES))
            except ClientDisconnected:
                self._disconnected = True
                raise
            self._received += len(data)
            if not more_body:
                self._eof = True
            if self._max_body is not None and self._received > self._max_body:
                self._eof = True
                raise RequestBodyTooLarge(
                    f"the request body is larger than max_request_body ({self._max_body} bytes)"
                )
            if data:
                return data
        return b""

    def _take_rest(self) -> tuple[list[bytes | memoryview], int]:
        """What is left of the current piece, taken out of it, and its length."""
        piece, pos = self._piece, self._pos
        self._piece = b""
        self._pos = 0
        return ([memoryview(piece)[pos:]] if pos < len(piece) else []), len(piece) - pos

    def _keep(self, pieces: list[bytes | memoryview]) -> None:
        """A read that fails (the client left) leaves what it gathered to later reads."""
        self._piece = b"".join(pieces)
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes, or to the end of the body when ``size`` is negative or None.

        :param size: how many bytes; fewer only at the end of the body.
        :raises ClientDisconnected: the client went away before the body was complete.
        :raises RequestBodyTooLarge: the body grew past ``max_request_body``.
        """
        piece = self._piece
        pos = self._pos
        if size is not None and size >= 0:
            end = pos + size
            if end <= len(piece):
                # The common case: the piece covers the read.
                self._pos = end
                return piece[pos:end]  # the piece itself when it is read whole
            wanted = size
        else:
            wanted = -1
        pieces, have = self._take_rest()
        try:
            while wanted < 0 or have < wanted:
                piece = self._next_piece(READ_AHEAD_BYTES if wanted < 0 else wanted - have)
                if not piece:
                    break
                pieces.append(piece)
                have += len(piece)
        except ClientDisconnected:
            self._keep(pieces)
            raise
        if 0 <= wanted < have:
            # The last piece has more than the read wants: keep the rest for later.
            kept = len(piece) - (have - wanted)
            self._piece = piece
            self._pos = kept
            pieces[-1] = memoryview(piece)[:kept]
        return b"".join(pieces)  # one bytes piece is returned as it is

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, ending with ``b"\\n"``, of at most ``size`` bytes when given.

        :param size: the most bytes to return; negative or None for no limit.
        :raises ClientDisconnected: the client went away before the body was complete.
        :raises RequestBodyTooLarge: the body grew past ``max_request_body``.
        """
        limit = None if size is None or size < 0 else size
        piece = self._piece
        pos = self._pos
        stop = len(piece) if limit is None else min(len(piece), pos + limit)
        newline = piece.find(b"\n", pos, stop)
        if newline >= 0 or stop - pos == limit:
            # The common case: the line (or the size) ends in this piece.
            end = stop if newline < 0 else newline + 1
            self._pos = end
            return piece[pos:end]
        pieces, have = self._take_rest()
        try:
            while piece := self._next_piece(1):
                stop = len(piece) if limit is None else min(len(piece), limit - have)
                newline = piece.find(b"\n", 0, stop)
                if newline >= 0 or stop < len(piece):
                    end = stop if newline < 0 else newline + 1
                    self._piece = piece
                    self._pos = end
                    pieces.append(memoryview(piece)[:end])
                    break
                pieces.append(piece)
                have += len(piece)
                if have == limit:
                    break
        except ClientDisconnected:
            self._keep(pieces)
            raise
        return b"".join(pieces)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the body ends or, with a positive ``hint``, ``hint`` bytes are read.

        :param hint: stop once the lines so far total at least this many bytes.
        :raises ClientDisconnected: the client went away before the body was complete.
        :raises RequestBodyTooLarge: the body grew past ``max_request_body``.
        """
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        """Always true: ``wsgi.input`` is a readable stream."""
        return True

    def close(self) -> None:
        """Do nothing: the server owns the body (PEP 3333 forbids the app closing it)."""


class LoggerStream:
    """``wsgi.errors``: text written here goes to the ``adapter`` logger, one record a line.

    PEP 3333 asks for a text file the server logs; partial lines are held until their
    newline or :meth:`flush`.
    """

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        """Log each complete line of ``text`` at ERROR level; keep the rest.

        :param text: what the app writes.
        """
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            logger.error("%s", line)
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each of ``lines``.

        :param lines: an iterable of str.
        """
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log a pending partial line."""
        if self._partial:
            partial, self._partial = self._partial, ""
            logger.error("%s", partial)


class FileWrapper:
    """``wsgi.file_wrapper``: a file returned as the response body.

    Iterating reads ``block_size`` bytes at a time; :meth:`close` closes the file.
    :class:`adapter.WsgiToAsgi` sends the file through the ASGI
    ``http.response.pathsend`` extension instead when the server offers it and
    :meth:`sendable_path` finds the file on disk.

    :param filelike: a binary file object (``read(n)``; ``close()`` optional).
    :param block_size: how many bytes each iteration reads.
    """

    __slots__ = ("block_size", "filelike")

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        block_size = self.block_size
        while data := read(block_size):
            yield data

    def close(self) -> None:
        """Close the file, if it can be closed (PEP 3333)."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def sendable_path(self) -> str | None:
        """The absolute path to send the whole file by, or None when it can not be.

        Only a regular file at its start qualifies: a file the app already read from
        (or a pipe or an in-memory buffer) streams in blocks instead.  This stats the
        file, so it runs in the worker thread.
        """
        name = getattr(self.filelike, "name", None)
        if not isinstance(name, str):
            return None
        try:
            if self.filelike.tell() != 0 or not os.path.isfile(name):
                return None
        except (OSError, ValueError, AttributeError):
            return None
        return os.path.abspath(name)
