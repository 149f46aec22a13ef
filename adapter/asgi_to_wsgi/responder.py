"""One WSGI request served by an ASGI app: the per-request responder of AsgiToWsgi.

Two threads share a responder, and each attribute belongs to one of them:

- the WSGI server's request thread calls :meth:`AsgiToWsgiResponder.respond`, then
  iterates and closes the :class:`adapter.asgi_to_wsgi.response.ResponseBody` it returns
  (or, when the whole response came at once and the task has ended cleanly, a plain
  list: the request is finished before it is returned).  It never blocks in a plain
  wait: every wait goes through the request's
  :class:`adapter._runtime.mailbox.ThreadMailbox`, so it runs work the app posts to it
  meanwhile (request body reads here, and thread-sensitive ``sync_to_async`` calls);
- the shared loop thread runs the app's task (``_run_app``, ``receive``, ``send``)
  and the ``_loop_*`` callbacks the request thread schedules: that half is
  :class:`adapter.asgi_to_wsgi.app_task.AppTask`, which the responder builds on.

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
from collections.abc import Iterable
from typing import TYPE_CHECKING

from adapter._runtime.handoff import Handoff
from adapter._runtime.mailbox import ThreadMailbox
from adapter._runtime.shared_loop import SharedLoop
from adapter._types import ASGIApp, Environ, Scope
from adapter.asgi_to_wsgi.app_task import AppTask, NoResponse
from adapter.asgi_to_wsgi.input_reader import (
    BODY_PIECE_SIZE,
    LARGEST_CONTENT_LENGTH,
    Chunk,
    InputReader,
)
from adapter.asgi_to_wsgi.response import ResponseBody, internal_server_error, plain_response

if TYPE_CHECKING:
    # typeshed's protocol, so type checkers accept us wherever a WSGI app is expected.
    from _typeshed.wsgi import StartResponse

__all__ = ["AsgiToWsgiResponder"]

logger = logging.getLogger("adapter")


class AsgiToWsgiResponder(AppTask):
    """Serves one WSGI request by running the ASGI app as a task on the shared loop.

    :param app: the ASGI application.
    :param scope: the request's HTTP scope.
    :param environ: the request's PEP 3333 environ (for ``wsgi.input``).
    :param loop: the shared loop to run the app on.
    """

    def __init__(self, app: ASGIApp, scope: Scope, environ: Environ, loop: SharedLoop) -> None:
        super().__init__(app, scope, loop, ThreadMailbox(), environ.get("wsgi.file_wrapper"))
        # Request thread only.
        self._body = InputReader(environ)
        self._response_complete_seen = False
        self._closed = False
        self._reported_error: BaseException | None = None
        # Why wsgi.input could not be read to the body's end, if it could not.
        self._body_failure: Exception | None = None

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
        except NoResponse:
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
