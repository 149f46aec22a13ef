"""The loop thread's half of an AsgiToWsgi request: the ASGI app's task.

:class:`AppTask` runs the app (``_run_app``) with its ``receive`` and ``send`` on the
shared loop, and the ``_loop_*`` callbacks that the request thread schedules there;
:class:`adapter.asgi_to_wsgi.responder.AsgiToWsgiResponder`, the request thread's half,
builds on it.  Results cross to the request thread in
:class:`adapter._runtime.handoff.Handoff` objects (the response start with the first
body message, each further chunk), and the task's end in two attributes published
before the request thread is woken (``_late_error``, then ``_task_ended``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from adapter._runtime.handoff import Handoff
from adapter._runtime.mailbox import MailboxClosed, ThreadMailbox, current_mailbox
from adapter._runtime.shared_loop import SharedLoop
from adapter._types import ASGIApp, Message, Scope
from adapter.asgi_to_wsgi.cancel import GraceCancel
from adapter.asgi_to_wsgi.input_reader import Chunk
from adapter.asgi_to_wsgi.scope import status_line, wsgi_headers
from adapter.asgi_to_wsgi.steps import stepped
from adapter.exceptions import ClientGone, ProtocolError

__all__ = ["AppTask", "NoResponse"]


class NoResponse(Exception):
    """The app returned without a response after it was told the body can not be read."""


class AppTask:
    """The app's task of one request, and the loop-side state it keeps.

    :param app: the ASGI application.
    :param scope: the request's HTTP scope.
    :param loop: the shared loop the task runs on.
    :param mailbox: the request thread's mailbox (the app's outer sync thread).
    :param file_wrapper: PEP 3333's optional ``wsgi.file_wrapper``; with it, the scope
        offers pathsend.
    """

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        loop: SharedLoop,
        mailbox: ThreadMailbox,
        file_wrapper: Callable[[Any, int], Iterable[bytes]] | None,
    ) -> None:
        self._app = app
        self._scope = scope
        self._loop = loop
        self._mailbox = mailbox
        self._file_wrapper = file_wrapper
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
        self._grace = GraceCancel()
        # Who waits for the task's end (finish() while it still runs), if anyone.
        self._end_watch: Handoff[BaseException | None] | None = None
        # Both threads: set by the loop at the task's end, _task_ended last; read by
        # finish(), which then needs no hop to learn how the task ended.
        self._late_error: BaseException | None = None
        self._task_ended = False

    def _read_piece(self) -> None:
        """Read the next body piece and hand it to the loop; posted to the request thread."""
        raise NotImplementedError

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
                failure = NoResponse()
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
