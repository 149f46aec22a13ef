"""One WSGI request served by an ASGI app: the per-request responder of AsgiToWsgi.

Two threads share a responder, and each attribute belongs to one of them:

- the WSGI server's request thread calls :meth:`AsgiToWsgiResponder.respond`, then
  iterates and closes the :class:`adapter.asgi_to_wsgi.response.ResponseBody` it returns
  (or, when the whole response came at once and the task has ended cleanly, a plain
  list: the request is finished before it is returned).  It never blocks in a plain
  wait: every wait goes through the request's
  :class:`adapter._runtime.mailbox.ThreadMailbox`, so it runs work the app posts to it
  meanwhile (request body reads here, and thread-sensitive ``sync_to_async`` calls);
- the shared loop thread runs the app's task (:meth:`_run_app`, ``receive``, ``send``)
  and the ``_loop_*`` callbacks the request thread schedules.

Hand-offs per request are counted, because they are the cost: one hop to the loop to
start the task (with a small body already read), one hop back carrying the response
start and the first body message together, and, when the app's task ended in the same
step, the news of its end: then close() has nothing to wait for.  A streamed response
costs one round trip per chunk, and that round trip is the backpressure: ``send()``
returns only once the server has asked for the next chunk, so at most one chunk is
ever in flight.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio

from adapter._runtime.handoff import Handoff
from adapter._runtime.mailbox import MailboxClosed, ThreadMailbox, current_mailbox
from adapter._runtime.shared_loop import SharedLoop
from adapter._types import ASGIApp, Environ, Message, Scope
from adapter.asgi_to_wsgi.cancel import GraceCancel
from adapter.asgi_to_wsgi.input_reader import (
    BODY_PIECE_SIZE,
    LARGEST_CONTENT_LENGTH,
    Chunk,
    InputReader,
)
from adapter.asgi_to_wsgi.response import ResponseBody, internal_server_error, plain_response
from adapter.asgi_to_wsgi.scope import status_line, wsgi_headers
from adapter.asgi_to_wsgi.steps import stepped
from adapter.exceptions import ClientGone, ProtocolError

if TYPE_CHECKING:
    # typeshed's protocol, so type checkers accept us wherever a WSGI app is expected.
    from _typeshed.wsgi import StartResponse

__all__ = ["AsgiToWsgiResponder"]

logger = logging.getLogger("adapter")


class _NoResponse(Exception):
    """The app returned without a response after it was told the body can not be read."""


class AsgiToWsgiResponder:
    """Serves one WSGI request by running the ASGI app as a task on the shared loop.

    :param app: the ASGI application.
    :param scope: the request's HTTP scope.
    :param environ: the request's PEP 3333 environ (for ``wsgi.input``).
    :param loop: the shared loop to run the app on.
    """

    def __init__(self, app: ASGIApp, scope: Scope, environ: Environ, loop: SharedLoop) -> None:
        self._app = app
        self._scope = scope
        self._loop = loop
        # Request thread only.
        self._body = InputReader(environ)
        self._mailbox = ThreadMailbox()
        self._response_complete_seen = False
        self._closed = False
        self._reported_error: BaseException | None = None
        # Why wsgi.input could not be read to the body's end, if it could not.
        self._body_failure: Exception | None = None
        # PEP 3333's optional wsgi.file_wrapper; with it, scope offers pathsend.
        self._file_wrapper: Callable[[Any, int], Iterable[bytes]] | None = environ.get(
            "wsgi.file_wrapper"
        )
        # Loop thread only (the handoffs below are how results cross back).
        self._wanted: Handoff[Chunk] | None = None
        self._change: anyio.Event | None = None
        self._start: tuple[str, list[tuple[str, str]]] | None = None
        self._piece: Chunk | None = None
        self._piece_requested = False
        self._request_complete = False
        self._response_complete = False
        self._body_started = False
        self._path: str | None = None
        self._client_gone = False
        # wsgi.input raised something other than OSError: a malformed body, but the
        # client may still be there to read an answer.
        self._body_broken = False
        # RFC 9110 9.3.2: the response to HEAD carries no body; the app's is dropped.
        self._head = scope.get("method") == "HEAD"
        self._task_done = False
        self._task_error: BaseException | None = None
        self._final: tuple[Handoff[Chunk], bytes] | None = None
        self._grace = GraceCancel(loop.new_cancel_scope)
        # Who waits for the task's end (finish() while it still runs), if anyone.
        self._end_watch: Handoff[BaseException | None] | None = None
        # Both threads: set by the loop at the task's end, _task_ended last; read by
        # finish(), which then needs no hop to learn how the task ended.
        self._late_error: BaseException | None = None
        self._task_ended = False

    # ---- request thread -------------------------------------------------------------

    def respond(self, start_response: StartResponse) -> Iterable[bytes]:
        """Start the app, wait for its response start and first body message.

        The app's errors before the response starts become a 500 (and a log line);
        they are not raised here.

        :param start_response: the server's PEP 3333 ``start_response``.
        :raises BaseException: what ``start_response`` raises, and what interrupts the
            wait (``SystemExit`` from a worker timeout, ``KeyboardInterrupt``); the app's
            task is told the client is gone first.
        """
        if self._body.left is not None and self._body.left > LARGEST_CONTENT_LENGTH:
            # No client can send such a body and no read could take it: the client's
            # fault (RFC 9110 15.5.14), answered before the app is called.
            logger.debug("refused a request with CONTENT_LENGTH %d", self._body.left)
            self._closed = True
            self._mailbox.close()
            return plain_response(
                start_response, "413 Content Too Large", "The Content-Length is too large.\n"
            )
        if self._body.left is not None and self._body.left <= BODY_PIECE_SIZE:
            # A small body travels with the task start: no hop back for receive().
            self._piece = self._read_body_piece()
            if self._piece is None:
                self._client_gone = isinstance(self._body_failure, OSError)
                self._body_broken = not self._client_gone
        first: Handoff[Chunk] = Handoff()
        self._wanted = first
        self._loop.spawn_soon(self._run_app)
        try:
            # The request thread blocks only in its mailbox (issue 4 point 6), so work
            # the app posts to this thread runs while it waits.
            body, more = self._mailbox.wait(first)
        except _NoResponse:
            self.finish(complete=False)
            return self._answer_unreadable_body(start_response)
        except Exception as exc:
            # Before the response started: a clean 500, the traceback in the log.
            logger.error("Exception in ASGI application before the response started", exc_info=exc)
            self.finish(complete=True)
            return internal_server_error(start_response)
        except BaseException:
            self.finish(complete=False)
            raise
        assert self._start is not None  # set on the loop before `first` completed
        self._response_complete_seen = not more
        if self._path is not None:
            return self._respond_with_file(start_response, self._path)
        try:
            start_response(*self._start)
        except BaseException:
            self.finish(complete=False)
            raise
        if not more and self._task_ended and self._late_error is None:
            # The usual end: the whole body is here and the task ended cleanly, so
            # close() would have nothing left to wait for or report.  Finished now,
            # the server gets a plain list.
            self.finish(complete=True)
            return [body] if body else []
        return ResponseBody(self, body, more)

    def _answer_unreadable_body(self, start_response: StartResponse) -> Iterable[bytes]:
        # The app got http.disconnect for a body that could not be read and returned
        # (or raised) without answering, as the ASGI spec lets it: not its error.
        failure = self._body_failure
        if failure is None or isinstance(failure, OSError):
            logger.debug("the client left before its request body was complete: %r", failure)
            text = "The request body is incomplete.\n"  # for the server; the client is gone
        else:
            logger.debug("the request body is malformed: %r", failure)
            text = "The request body is malformed.\n"
        return plain_response(start_response, "400 Bad Request", text)

    def _respond_with_file(self, start_response: StartResponse, path: str) -> Iterable[bytes]:
        # The server may close a file_wrapper from another thread (waitress does), so
        # the app's task is seen to its end first: FileResponse ends right after.
        self.finish(complete=True)
        assert self._start is not None
        if self._head:
            start_response(*self._start)
            return []
        try:
            file = open(path, "rb")  # noqa: SIM115 - the WSGI server closes it
        except OSError as exc:
            logger.error("the ASGI app's 'http.response.pathsend' file", exc_info=exc)
            return internal_server_error(start_response)
        assert self._file_wrapper is not None  # pathsend is offered only with one
        start_response(*self._start)
        # PEP 3333: the server may send it zero-copy (gunicorn's sendfile).
        wrapped: Iterable[bytes] = self._file_wrapper(file, BODY_PIECE_SIZE)
        return wrapped

    def next_chunk(self) -> Chunk:
        """Ask the app for its next body message and wait for it (request thread)."""
        wanted: Handoff[Chunk] = Handoff()
        self._loop.call_soon_threadsafe(self._loop_want, wanted)
        try:
            chunk = self._mailbox.wait(wanted)
        except BaseException as exc:
            self._reported_error = exc  # the server has it now; close() must not repeat it
            raise
        self._response_complete_seen = not chunk[1]
        return chunk

    def finish(self, complete: bool) -> None:
        """Let the app's task end, wait for it, and re-raise what it raised late."""
        if self._closed:
            return
        self._closed = True
        gone = not (complete and self._response_complete_seen)
        try:
            if self._task_ended:  # the usual case: it ended before the response went
                late_error = self._late_error
            else:
                ended: Handoff[BaseException | None] = Handoff()
                self._loop.call_soon_threadsafe(self._loop_watch_end, ended, gone)
                late_error = self._mailbox.wait(ended)
        finally:
            self._mailbox.close()
        if late_error is not None and late_error is not self._reported_error:
            if gone:
                logger.debug("the ASGI app ended with %r after the client went", late_error)
            else:
                raise late_error

    def _read_body_piece(self) -> Chunk | None:
        """The next body piece, or None (and ``_body_failure`` set) if it can't be read."""
        try:
            return self._body.read_piece()
        except Exception as exc:
            # Not only OSError: gunicorn's chunked reader raises its parser's errors
            # (InvalidChunkSize).  Whatever it is, receive() must hear of it, or the
            # app would wait for the body forever.
            self._body_failure = exc
            return None

    def _read_piece(self) -> None:
        # Posted by receive() to run here, in the request thread: wsgi.input belongs
        # to the thread the WSGI server called us in.
        piece = self._read_body_piece()
        gone = piece is None and isinstance(self._body_failure, OSError)
        self._loop.call_soon_threadsafe(self._loop_piece_arrived, piece, gone)

    # ---- loop thread: callbacks -----------------------------------------------------

    def _wake(self) -> None:
        if self._change is not None:
            self._change.set()
            self._change = None

    async def _changed(self) -> None:
        if self._change is None:
            self._change = anyio.Event()
        await self._change.wait()

    def _loop_want(self, wanted: Handoff[Chunk]) -> None:
        if self._task_done:
            if self._task_error is not None and not self._client_gone:
                wanted.set_exception(self._task_error)  # it failed after the last chunk
            else:
                wanted.set_result((b"", False))  # the app returned mid-stream: end it there
        else:
            self._wanted = wanted
            self._wake()

    def _loop_piece_arrived(self, piece: Chunk | None, gone: bool) -> None:
        self._piece_requested = False
        if piece is not None:
            self._piece = piece
        elif gone:
            self._client_gone = True
        else:
            self._body_broken = True
        self._wake()

    def _loop_watch_end(self, ended: Handoff[BaseException | None], gone: bool) -> None:
        if self._task_ended:
            ended.set_result(self._late_error)
            return
        self._end_watch = ended
        if gone:
            self._loop_client_gone()

    def _loop_client_gone(self) -> None:
        self._client_gone = True
        self._wake()
        if not self._task_done:
            self._grace.client_gone(self._loop.clock())

    # ---- loop thread: the app's task ------------------------------------------------

    async def _run_app(self) -> None:
        current_mailbox.set(self._mailbox)
        error: BaseException | None = None
        try:
            app = self._grace.run(self._app, self._scope, self._receive, self._send)
            await stepped(app, self._deliver_final)
        except BaseException as exc:
            error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._end_task(error)

    def _end_task(self, error: BaseException | None) -> None:
        self._task_done = True
        self._task_error = error
        self._wake()
        wanted, self._wanted = self._wanted, None
        failure: BaseException | None = None
        if wanted is not None:
            if self._start is None and (self._client_gone or self._body_broken):
                # It was told of the disconnect: returning is its answer (ASGI spec).
                failure = _NoResponse()
            elif error is not None and not self._client_gone:
                failure, error = error, None  # reported through the response, not at close()
            elif self._start is None:
                failure = ProtocolError(
                    "the ASGI app returned without sending 'http.response.start'"
                )
        # Published before the request thread is woken: a wake-up lets go of the GIL,
        # and the woken thread may reach finish() before this thread runs on.
        self._late_error = error
        self._task_ended = True
        if self._end_watch is not None:
            self._end_watch.set_result(error)
        if wanted is not None:
            if failure is not None:
                wanted.set_exception(failure)
            else:
                wanted.set_result((b"", False))
        self._deliver_final()

    async def _receive(self) -> Message:
        while True:
            if self._piece is not None and not self._client_gone:
                body, more = self._piece
                self._piece = None
                self._request_complete = not more
                return {"type": "http.request", "body": body, "more_body": more}
            if (
                self._client_gone
                or self._body_broken
                or (self._request_complete and self._response_complete)
            ):
                # ASGI spec: receive() after the response is sent, or once the client
                # is gone, returns http.disconnect (the spec's only word for a body
                # that will not come, so a malformed one gets it too).
                return {"type": "http.disconnect"}
            if not self._request_complete and not self._piece_requested:
                try:
                    self._mailbox.post(self._read_piece)
                except MailboxClosed:
                    self._client_gone = True
                    continue
                self._piece_requested = True
            await self._changed()

    async def _send(self, message: Message) -> None:
        if self._client_gone:
            raise ClientGone("the client is gone (the WSGI server closed the response)")
        kind = message.get("type")
        if kind == "http.response.start":
            if self._start is not None:
                raise ProtocolError("the ASGI app sent 'http.response.start' twice")
            self._start = (
                status_line(message.get("status")),
                wsgi_headers(message.get("headers", ())),
            )
        elif kind == "http.response.body":
            await self._send_body(message)
        elif kind == "http.response.pathsend" and self._file_wrapper is not None:
            await self._send_path(message)
        else:
            raise ProtocolError(f"unexpected ASGI message type {kind!r} for an HTTP request")

    async def _send_body(self, message: Message) -> None:
        if self._start is None:
            raise ProtocolError(
                "the ASGI app sent 'http.response.body' before 'http.response.start'"
            )
        if self._response_complete:
            raise ProtocolError("the ASGI app sent 'http.response.body' after the last one")
        body: Any = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if more and not body:
            return  # PEP 3333: empty chunks carry nothing; spare the round trip
        while self._wanted is None:  # strict backpressure: wait until the server asks
            await self._changed()
            if self._client_gone:
                raise ClientGone("the client is gone (the WSGI server closed the response)")
        wanted, self._wanted = self._wanted, None
        # HEAD: taken and dropped, one message per server request still (backpressure).
        data = b"" if self._head else bytes(body)
        if more:
            self._body_started = True
            wanted.set_result((data, True))
            return
        self._hand_over_last(wanted, data)

    async def _send_path(self, message: Message) -> None:
        # The ASGI pathsend extension: the whole body is the file at this path.
        if self._start is None or self._body_started or self._response_complete:
            raise ProtocolError(
                "the ASGI app sent 'http.response.pathsend' other than as the whole body"
            )
        self._path = os.fspath(message["path"])
        wanted, self._wanted = self._wanted, None
        assert wanted is not None  # the request thread waits for the first body
        self._hand_over_last(wanted, b"")

    def _hand_over_last(self, wanted: Handoff[Chunk], body: bytes) -> None:
        self._response_complete = True
        self._wake()
        # The last chunk is handed over once this task step is over (at the task's end,
        # or as the task suspends if the app carries on, e.g. background tasks: see
        # stepped()), not now: woken now, the request thread would run while this
        # thread still has the task to finish, and close() would find it running and
        # wait for it (a second round trip).
        self._final = (wanted, body)

    def _deliver_final(self) -> None:
        if self._final is not None:
            wanted, body = self._final
            self._final = None
            wanted.set_result((body, False))
