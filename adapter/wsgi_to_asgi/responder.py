"""One HTTP request of :class:`~adapter.wsgi_to_asgi.app.WsgiToAsgi`, on the loop side.

The event loop drives each request; the WSGI app runs only in worker threads of
``adapter.sync``'s pool, at most ``max_workers`` at once per instance (a
:class:`anyio.CapacityLimiter`), handed over as ``sync_to_async`` hands its calls
(:class:`~adapter.wsgi_to_asgi.workers.WorkerHop`), so :func:`adapter.async_to_sync` in the app
runs on the serving loop.  Every step of one request runs in one
:class:`contextvars.Context`, copied from the caller once.

Thread hand-offs per request (the cost that matters; a hop to a worker costs about 40%
less CPU than through ``anyio.to_thread``, see :mod:`adapter.wsgi_to_asgi.workers`):

- a response whose body is complete after the first step: **one** hop to a worker,
  which calls the app, takes the body (and any ``write()`` data) and closes the
  iterable; status, headers and body go out afterwards, with no task group and no
  task.  The body is complete when it is a list or tuple (taken whole), when the
  iterable ends with no non-empty chunk, or when its first non-empty chunk reaches the
  response's length (its ``Content-Length``; any chunk for ``HEAD``, a 204 or a 304):
  Flask's and Django's ordinary responses (a ``ClosingIterator``, an ``HttpResponse``,
  with a ``Content-Length``) take this path.  Nothing is read past the first chunk to
  learn whether the body ended: that would hold back a stream's first chunk;
- any other body (streamed): one hop for the first chunk; then one worker iterates the rest
  into a :class:`~adapter.wsgi_to_asgi.pipes.ChunkPipe` of :data:`PULL_BYTES`, blocking while
  it is full (the backpressure), and wakes the loop only when the loop is waiting for
  it: a fast app costs one wake-up per batch, a slow one (server-sent events) one per
  chunk, sent at once.  A task watches ``receive()`` for ``http.disconnect``;
- ``wsgi.input``, when the request announces a body (``Content-Length``,
  ``Transfer-Encoding``, or HTTP/2 and 3): none.  A task receives the body into a
  :class:`~adapter.wsgi_to_asgi.pipes.BodyPipe` while the app reads it, at most
  :data:`adapter.wsgi_to_asgi.streams.READ_AHEAD_BYTES` and a message ahead, then watches for
  ``http.disconnect``;
- ``wsgi.input`` otherwise (a body nobody announced): one hop back to the loop per read
  that needs more, which awaits ``receive()`` until it has what the read asked for;
- ``write()`` before the first chunk: none while its data fits in the batch (it goes
  out with the body, in order), one hop back to the loop each time the batch fills;
  while streaming it goes into the pipe like a chunk;
- ``close()``: in the worker's last step; one more hop only for ``pathsend``, or when
  a cancellation or a disconnect comes before the body streams.

When the client goes, the app is not iterated again and is closed in its worker.
"""

from __future__ import annotations

import contextvars
import logging
from functools import partial
from typing import TYPE_CHECKING

import anyio
import anyio.from_thread
import anyio.lowlevel

from adapter._http import plain_text
from adapter._types import Receive, Scope, Send
from adapter.exceptions import ClientDisconnected
from adapter.wsgi_to_asgi.call import WsgiCall
from adapter.wsgi_to_asgi.channel import Channel
from adapter.wsgi_to_asgi.environ import build_environ, response_body_limit
from adapter.wsgi_to_asgi.pipes import BodyPipe, ChunkPipe
from adapter.wsgi_to_asgi.scopes import (
    declared_length,
    may_have_body,
)
from adapter.wsgi_to_asgi.streams import (
    READ_AHEAD_BYTES,
    FileWrapper,
    LoggerStream,
    RequestBodyTooLarge,
    WsgiInput,
)

if TYPE_CHECKING:
    from adapter.wsgi_to_asgi.app import WsgiToAsgi

__all__ = ["PULL_BYTES", "WsgiToAsgiResponder"]

logger = logging.getLogger("adapter")

PULL_BYTES = 256 * 1024
"""How many response bytes may wait between the app's worker and the loop.

The app is ahead of what the server accepted by at most two such batches (one being
sent, one waiting), each at most this plus one of the app's chunks.  Measured on
uvicorn with 64 KiB chunks: 128 KiB costs about 50% more CPU per GiB, 512 KiB a
little less."""

_BODY_ENDED = -1
"""``_body_left`` once the body was cut at its length: nothing more goes out."""

_SMALL_CHUNK = 32 * 1024
"""Chunks smaller than this are joined before sending; bigger ones go as they are."""


def _coalesce(chunks: list[bytes]) -> list[bytes]:
    """Join runs of small chunks, which cost a ``send()`` each; keep big ones, which a
    join would only copy (measured on uvicorn: sending 64 KiB chunks one by one takes
    about 40% less CPU per GiB than joining them four at a time)."""
    bodies: list[bytes] = []
    run: list[bytes] = []
    for chunk in chunks:
        if len(chunk) < _SMALL_CHUNK:
            run.append(chunk)
            continue
        if run:
            bodies.append(b"".join(run))
            run = []
        bodies.append(chunk)
    if run:
        bodies.append(b"".join(run))
    return bodies


class WsgiToAsgiResponder(Channel):
    """Serves one HTTP request: runs the app in workers and speaks ASGI on the loop.

    :param adapter: the :class:`~adapter.wsgi_to_asgi.app.WsgiToAsgi` being served.
    :param scope: the ASGI ``http`` scope.
    :param receive: the ASGI ``receive`` callable.
    :param send: the ASGI ``send`` callable.
    """

    __slots__ = (
        "_adapter",
        "_body_left",
        "_call_soon",
        "_hop",
        "_scope",
        "_started",
        "_status",
        "_token",
    )

    def __init__(self, adapter: WsgiToAsgi, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(receive, send)
        self._adapter = adapter
        self._scope = scope
        self._started = False
        self._status = 0
        # How many body bytes may still go out: the response's Content-Length, 0 for
        # HEAD, None when the response declared no length.
        self._body_left: int | None = None
        self._hop, self._token, self._call_soon = adapter.for_this_loop()

    async def run(self) -> None:
        """Serve the request.

        :raises Exception: what the app raised (after a complete 500 when the response
            had not started, or with the response cut short when it had).
        """
        adapter = self._adapter
        max_body = adapter.max_request_body
        if max_body is not None:
            length = declared_length(self._scope)
            if length is not None and length > max_body:
                await self._send_plain(413, "Request Entity Too Large")
                return
        body_pipe = BodyPipe(READ_AHEAD_BYTES) if may_have_body(self._scope) else None
        fetch = self._fetch_from_worker if body_pipe is None else body_pipe.read
        environ = build_environ(self._scope, WsgiInput(fetch, max_body), LoggerStream())
        environ["wsgi.file_wrapper"] = FileWrapper
        extensions = self._scope.get("extensions") or {}
        call = WsgiCall(
            adapter.wsgi_app,
            environ,
            self._write_from_worker,
            method=self._scope["method"],
            batch_limit=PULL_BYTES,
            pathsend="http.response.pathsend" in extensions,
        )
        context = contextvars.copy_context()
        try:
            if body_pipe is None:
                await self._respond(call, context)
            else:
                await self._respond_receiving(call, context, body_pipe)
        except Exception as exc:
            # An error that a cancellation caused (a body read cut short by it) is not
            # the app's: let the cancellation through, and answer nothing.
            await anyio.lowlevel.checkpoint_if_cancelled()
            if isinstance(exc, ClientDisconnected) and self.client_gone:
                logger.debug("the client disconnected before the request body was complete")
                return
            if self._started:
                raise
            if isinstance(exc, RequestBodyTooLarge):
                await self._send_plain(413, "Request Entity Too Large")
                return
            # Starlette's ServerErrorMiddleware does the same: a clean 500 for the
            # client, then the exception goes on for the server to log.
            await self._send_plain(500, "Internal Server Error")
            raise
        finally:
            if not call.closed:
                # PEP 3333: close() must run however the request ends, so it runs
                # even when this task is being cancelled.
                with anyio.CancelScope(shield=True):
                    await self._hop.run(call.close_quietly, context)

    async def _respond_receiving(
        self,
        call: WsgiCall,
        context: contextvars.Context,
        body_pipe: BodyPipe,
    ) -> None:
        """Respond while a task receives the body into ``body_pipe`` (then watches for
        ``http.disconnect``): ``wsgi.input`` reads then never hop to the loop."""
        failure: Exception | None = None
        async with anyio.create_task_group() as task_group:
            self.start_receiving(task_group, body_pipe, self._call_soon)
            try:
                await self._respond(call, context)
            except Exception as exc:
                failure = exc  # re-raised as itself, not in an ExceptionGroup
            finally:
                task_group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _respond(self, call: WsgiCall, context: contextvars.Context) -> None:
        chunks, done = await self._hop.run(call.first, context)
        # A worker can not be interrupted, so a cancellation that came meanwhile is
        # only seen now: then nothing goes out (close() runs in run()'s finally).
        await anyio.lowlevel.checkpoint_if_cancelled()
        if not self._started:
            # PEP 3333: the headers go out with the first non-empty chunk, or at the
            # end of an empty body, so until here an error could still become a 500.
            await self._send_start(call)
        if call.pathsend_path is not None:
            if self._body_left == 0:  # HEAD: the file is not wanted
                await self.send_body(b"", more_body=False)
                return
            await self.send_message({"type": "http.response.pathsend", "path": call.pathsend_path})
            return
        if done:
            await self._send_last(chunks)
            return
        for chunk in chunks:
            if not await self.send_body(chunk, more_body=True):
                return
        await self._stream_rest(call, context)

    async def _stream_rest(self, call: WsgiCall, context: contextvars.Context) -> None:
        """Stream the rest of the body: a worker iterates the app into a pipe, the loop
        sends what the pipe holds, and a watcher waits for ``http.disconnect``."""
        pipe = ChunkPipe(PULL_BYTES)
        failure: Exception | None = None
        async with anyio.create_task_group() as task_group:
            # Watch for http.disconnect (unless the body's receiver already does).
            self.start_watching(task_group, pipe.stop)
            task_group.start_soon(self._hop.run, partial(call.pump, pipe), context)
            try:
                await self._send_from(pipe)
            except Exception as exc:
                # Kept and re-raised outside the task group, so the server sees the
                # app's own exception rather than an ExceptionGroup around it.
                failure = exc
            finally:
                # Frees the worker whatever ended the stream (the client, a
                # cancellation); the task group then waits for it.
                pipe.stop()
                task_group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _send_from(self, pipe: ChunkPipe) -> None:
        """Send what the pipe holds, all at once, until the body ends."""
        call_soon = self._call_soon
        while True:
            chunks, done, error = pipe.take()
            last = done and error is None
            if chunks or last:
                bodies = _coalesce(chunks) if len(chunks) > 1 else chunks or [b""]
                for body in bodies[:-1]:
                    if not await self.send_body(body, more_body=True):
                        return
                if not await self.send_body(bodies[-1], more_body=not last):
                    return
            if done:
                if error is not None:
                    raise error
                return
            if not chunks:
                ready = anyio.Event()
                if pipe.notify_when_ready(partial(call_soon, ready.set)):
                    await ready.wait()

    async def _send_start(self, call: WsgiCall) -> None:
        self._started = True
        self._status = call.status
        self._body_left = response_body_limit(self._scope["method"], call.status, call.headers)
        await self.send_message(
            {"type": "http.response.start", "status": call.status, "headers": call.headers}
        )

    async def send_body(self, body: bytes, *, more_body: bool) -> bool:
        """Send a body message, never past what the response may carry.

        RFC 9110 9.3.2: a response to HEAD has no body, nor has a 204 or a 304;
        RFC 9112 6.3: the body is exactly ``Content-Length`` bytes.  Bytes beyond would
        corrupt the connection (the server takes them for the next response, or
        refuses them and drops the connection with the requests pipelined behind).  So
        the body is cut there and ended, and False says "stop" (as for a client that
        left): the iterable is not iterated again and is closed.  An app that said a
        length and sent more (or a body with a 204 or 304) is told in a warning.

        :returns: False when nothing more may be sent.
        """
        left = self._body_left
        if left is None:
            return await super().send_body(body, more_body=more_body)
        if len(body) <= left:
            self._body_left = left - len(body)
            return await super().send_body(body, more_body=more_body)
        if left == _BODY_ENDED:
            return False
        if self._scope["method"] != "HEAD":
            self._warn_too_long()
        self._body_left = _BODY_ENDED
        await super().send_body(body[:left], more_body=False)
        return False

    def _warn_too_long(self) -> None:
        if self._status in (204, 304):
            logger.warning(
                "the WSGI app %r sent a body with a %d response for %s %s, which has "
                "none (RFC 9110); sent no body, then stopped iterating and closed it. "
                "Return an empty body with this status.",
                self._adapter.wsgi_app,
                self._status,
                self._scope["method"],
                self._scope["path"],
            )
            return
        logger.warning(
            "the WSGI app %r sent a longer body than its Content-Length for %s %s; "
            "sent exactly Content-Length bytes, then stopped iterating and closed it. "
            "Fix the Content-Length the app sets (or leave it out).",
            self._adapter.wsgi_app,
            self._scope["method"],
            self._scope["path"],
        )

    async def _send_last(self, chunks: list[bytes]) -> None:
        if not chunks:
            await self.send_body(b"", more_body=False)
            return
        for chunk in chunks[:-1]:
            if not await self.send_body(chunk, more_body=True):
                return
        await self.send_body(chunks[-1], more_body=False)

    async def _send_plain(self, status: int, text: str) -> None:
        self._started = True
        self._status = status
        body, text_headers = plain_text(text)
        headers = [(name.lower().encode(), value.encode()) for name, value in text_headers]
        self._body_left = response_body_limit(self._scope["method"], status, headers)
        if await self.send_message(
            {"type": "http.response.start", "status": status, "headers": headers}
        ):
            await self.send_body(body, more_body=False)

    def _fetch_from_worker(self, wanted: int) -> tuple[bytes, bool]:
        """``wsgi.input``'s fetch: hop to the loop for more body (from any thread)."""
        return anyio.from_thread.run(self.receive_body, wanted, token=self._token)

    def _write_from_worker(self, call: WsgiCall, chunks: list[bytes]) -> None:
        """PEP 3333 ``write()`` past its buffer: hop to the loop, send or queue in order."""
        if not anyio.from_thread.run(self._send_written, call, chunks, token=self._token):
            raise ClientDisconnected.during_write()

    async def _send_written(self, call: WsgiCall, chunks: list[bytes]) -> bool:
        if not self._started:
            await self._send_start(call)
        for chunk in chunks:
            if not await self.send_body(chunk, more_body=True):
                # Cut at its length (or HEAD): the app's further write()s are dropped,
                # which is no reason to raise in the app; a client that left is.
                return self._body_left == _BODY_ENDED and not self.client_gone
        return True
