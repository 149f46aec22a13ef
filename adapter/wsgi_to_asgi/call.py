"""The worker-thread half of WsgiToAsgi: one call of a WSGI app and its response iterable.

:class:`WsgiCall` holds the PEP 3333 state of one request (``start_response``, the
iterable, ``write()``) and offers the steps the event loop hands to a worker thread:
:meth:`WsgiCall.first` runs the app up to its first non-empty chunk (and closes the
iterable there when that chunk completes the body), :meth:`WsgiCall.pump` iterates the
rest into a bounded :class:`ChunkPipe`, :meth:`WsgiCall.close` closes the iterable.  It
knows nothing of event loops: the loop side lives in
:mod:`adapter.wsgi_to_asgi.responder`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from adapter._types import Environ, OptExcInfo, WSGIApp
from adapter.exceptions import ClientDisconnected, ProtocolError
from adapter.wsgi_to_asgi.environ import encode_headers, parse_status, response_body_limit
from adapter.wsgi_to_asgi.pipes import ChunkPipe
from adapter.wsgi_to_asgi.streams import FileWrapper

__all__ = ["WsgiCall"]

logger = logging.getLogger("adapter")

WriteOut = Callable[["WsgiCall", list[bytes]], None]
"""Sends the response start (if not sent yet) and chunks, for ``write()``; blocks until
they are sent or queued behind what is being sent."""


def _as_bytes(chunk: object) -> bytes:
    """A response chunk as bytes; PEP 3333 allows only bytestrings."""
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise ProtocolError(
        f"the WSGI app gave a response chunk of type {type(chunk).__name__}; PEP 3333 "
        "requires bytes (encode str bodies before returning them)"
    )


class WsgiCall:
    """One call of a WSGI app, stepped from worker threads one hop at a time.

    :param app: the WSGI application.
    :param environ: its environ for this request.
    :param method: the request method (the scope's: the app may rewrite the environ's).
    :param write_out: how ``write()`` data reaches the client (blocks until sent).
    :param batch_limit: the most bytes one step collects (and ``write()`` buffers).
    :param pathsend: whether the server offers ``http.response.pathsend``.
    """

    __slots__ = (
        "_app",
        "_batch",
        "_batch_bytes",
        "_batch_limit",
        "_body_bytes",
        "_iterable",
        "_iterator",
        "_method",
        "_pathsend",
        "_pipe",
        "_start_called",
        "_write_out",
        "closed",
        "environ",
        "headers",
        "headers_committed",
        "pathsend_path",
        "status",
    )

    def __init__(
        self,
        app: WSGIApp,
        environ: Environ,
        write_out: WriteOut,
        *,
        method: str = "GET",
        batch_limit: int,
        pathsend: bool = False,
    ) -> None:
        self._app = app
        self._batch: list[bytes] | None = None
        self._batch_bytes = 0
        self._batch_limit = batch_limit
        # Body bytes the app produced so far (chunks and write() data).
        self._body_bytes = 0
        self._method = method
        self._pipe: ChunkPipe | None = None
        self.environ = environ
        self._write_out = write_out
        self._pathsend = pathsend
        self._start_called = False
        self._iterable: Iterable[bytes] | None = None
        self._iterator: Iterator[bytes] | None = None
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        # True once a body byte left for the client: from then on the status and
        # headers can no longer change (PEP 3333, "exc_info").
        self.headers_committed = False
        self.closed = False
        self.pathsend_path: str | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], None]:
        """PEP 3333 ``start_response``: check and keep the status and headers.

        :raises ProtocolError: on a second call without ``exc_info``, or a malformed
            status or header.
        :raises BaseException: ``exc_info``'s exception, when headers were already sent.
        """
        if exc_info is not None and exc_info[1] is not None:
            try:
                if self.headers_committed:
                    # PEP 3333: too late to change the response; re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: avoid a reference cycle through the frame
        elif self._start_called:
            raise ProtocolError(
                "start_response was called a second time without exc_info (PEP 3333)"
            )
        code = parse_status(status)
        encoded = encode_headers(headers)
        self.status = code
        self.headers = encoded
        self._start_called = True
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write()``: buffer ``data`` in order with the body, bounded.

        Written bytes join the batch the current step hands to the loop, behind the
        chunks already taken, so order is kept; once the batch holds its limit, it is
        sent before ``write()`` returns (PEP 3333: transmitted, or buffered while the
        app proceeds).

        :raises ProtocolError: before ``start_response``, or for data that is not bytes.
        :raises adapter.ClientDisconnected: when the client is gone.
        """
        if type(data) is not bytes:
            data = _as_bytes(data)
        if not self._start_called:
            raise ProtocolError("write() was called before start_response (PEP 3333)")
        if not data:
            return
        self.headers_committed = True
        self._body_bytes += len(data)
        if self._pipe is not None:
            # Streaming: in order with the chunks, held back like them.
            if not self._pipe.put(data):
                raise ClientDisconnected.during_write()
            return
        batch = self._batch
        if batch is None:
            # Outside a step (from a thread of the app's own): send it now.
            self._write_out(self, [data])
            return
        batch.append(data)
        self._batch_bytes += len(data)
        if self._batch_bytes >= self._batch_limit:
            self._batch = []
            self._batch_bytes = 0
            self._write_out(self, batch)

    def _checked(self, chunk: Any) -> bytes:
        if type(chunk) is not bytes:
            chunk = _as_bytes(chunk)
        if chunk and not self._start_called:
            raise ProtocolError("the WSGI app produced body bytes before calling start_response")
        return chunk  # type: ignore[no-any-return]

    def _add(self, chunk: bytes) -> None:
        batch = self._batch
        assert batch is not None
        batch.append(chunk)
        self._batch_bytes += len(chunk)
        self._body_bytes += len(chunk)

    def _take_batch(self) -> list[bytes]:
        batch = self._batch
        self._batch = None
        return batch or []

    def _body_complete(self) -> bool:
        """Whether the body produced so far is all the response may carry."""
        limit = response_body_limit(self._method, self.status, self.headers)
        return limit is not None and self._body_bytes >= limit

    def first(self) -> tuple[list[bytes], bool]:
        """Call the app and run it up to its first non-empty chunk.

        A list or tuple body is taken whole: it is already in memory.  When the
        iterable is exhausted, or the first chunk completes the body (it reaches the
        ``Content-Length``; any chunk does for ``HEAD``, a 204 or a 304), the call is
        closed in this same step, so a simple response costs one hop to a worker
        thread.  Otherwise nothing is read past that chunk: the body may be a stream
        whose next chunk is not ready yet (server-sent events).

        :returns: the chunks so far (``write()`` data included) and whether the
            response is complete.
        :raises ProtocolError: when the app broke PEP 3333.
        :raises Exception: whatever the app raised; the iterable is closed first.
        """
        self._batch = []
        self._batch_bytes = 0
        try:
            iterable = self._app(self.environ, self.start_response)
            self._iterable = iterable
            done = True
            if type(iterable) is list or type(iterable) is tuple:
                for chunk in iterable:
                    if chunk := self._checked(chunk):
                        self._add(chunk)
            elif (
                self._pathsend
                and isinstance(iterable, FileWrapper)
                and self._start_called
                and not self.headers_committed
                and (path := iterable.sendable_path()) is not None
            ):
                self.pathsend_path = path
                done = False  # the loop sends the file, then closes it
            else:
                iterator = self._iterator = iter(iterable)
                for chunk in iterator:
                    if chunk := self._checked(chunk):
                        self._add(chunk)
                        # The loop cuts the body at its length and never iterates on
                        # (RFC 9112 6.3), so once the length is reached the response is
                        # complete: close it here rather than in a second hop.  A
                        # chunk past the length is cut (and warned about) by the loop.
                        done = self._body_complete()
                        break
            if not self._start_called:
                raise ProtocolError("the WSGI app returned without calling start_response")
            chunks = self._take_batch()
            if chunks:
                self.headers_committed = True
            if done:
                self.close()
            return chunks, done
        except BaseException:
            self._batch = None
            self.close_quietly()
            raise

    def pump(self, pipe: ChunkPipe) -> None:
        """Iterate the rest of the body into ``pipe``, then close the iterable.

        Runs in one worker for the whole stream: the pipe's byte limit holds the app
        back while the client is slow, and once the pipe is stopped (the client left,
        the request was cancelled) the app is not iterated again.  Whatever the app
        raises is handed to the loop through :meth:`ChunkPipe.finish`.

        :param pipe: where the chunks (and ``write()`` data) go.
        """
        iterator = self._iterator
        assert iterator is not None, "pump() comes after first()"
        self._pipe = pipe
        try:
            for chunk in iterator:
                if (chunk := self._checked(chunk)) and not pipe.put(chunk):
                    # Nobody will take what close() might raise: log it.
                    self.close_quietly()
                    break
            self.close()
        except Exception as exc:
            self.close_quietly()
            pipe.finish(exc)
            return
        except BaseException:
            self.close_quietly()
            pipe.finish(None)
            raise
        pipe.finish(None)

    def close(self) -> None:
        """Close the iterable once (PEP 3333); later calls do nothing.

        :raises Exception: whatever the iterable's ``close()`` raised.
        """
        if self.closed:
            return
        self.closed = True
        close = getattr(self._iterable, "close", None)
        if close is not None:
            close()

    def close_quietly(self) -> None:
        """Close the iterable, logging (not raising) what its ``close()`` raises.

        Used while another error or a disconnect is already on its way out.
        """
        try:
            self.close()
        except Exception:
            logger.exception("the WSGI response iterable's close() raised")
