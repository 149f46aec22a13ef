"""The event-loop half of WsgiToAsgi's I/O: ``receive()`` for the body, and the disconnect watch.

Two parties may want ``receive()`` during one request: ``wsgi.input`` reads (hopping
from the app's worker thread) and, while a response streams, a watcher task that must
notice ``http.disconnect``.  ASGI lets only one of them await ``receive()`` at a time,
so they share a lock, and a body message the watcher happens to receive is kept (one
message at most: that bounds the read-ahead) until a read takes it.  Until the response
streams there is no watcher and no lock: a read simply awaits ``receive()``.

A request that declares a body instead gets a receiver task from the start
(:meth:`Channel.start_receiving`): it feeds a bounded
:class:`~adapter.wsgi_to_asgi.pipes.BodyPipe` that ``wsgi.input`` reads without a hop to the
loop, and then watches for ``http.disconnect`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import anyio
import anyio.abc

from adapter._types import Message, Receive, Send
from adapter.exceptions import ClientDisconnected
from adapter.wsgi_to_asgi.pipes import BodyPipe

__all__ = ["Channel", "connection_is_gone"]

logger = logging.getLogger("adapter")


# uvloop's transports raise RuntimeError, not OSError, on a write after the connection
# closed ("unable to perform operation on <TCPTransport closed=True ...>; the handler is
# closed", uvloop/handles/handle.pyx).  uvicorn 0.55 (httptools and h11 alike) hands it
# on from send() when the client left in the middle of a response: its cycle was not
# told of the loss (measured under wrk: not even a second later).
_CLOSED_TRANSPORT = "the handler is closed"


def connection_is_gone(exc: BaseException) -> bool:
    """Whether ``exc``, raised by an ASGI ``send()``, means the client's connection is gone.

    - :class:`OSError`: the ASGI spec (2.4) says ``send()`` on a closed connection
      raises one (``ConnectionResetError``, ``BrokenPipeError``, hypercorn's and our own
      ``ClientGone``...).
    - :class:`RuntimeError` from uvloop's closed transport (see ``_CLOSED_TRANSPORT``),
      matched by its message because it has no type of its own.  Every other
      RuntimeError (uvicorn's "Response content longer than Content-Length", an
      invalid header...) is a real error and reaches the server.

    :param exc: what ``send()`` raised.
    """
    if isinstance(exc, OSError):
        return True
    return type(exc) is RuntimeError and _CLOSED_TRANSPORT in str(exc)


def _as_bytes(body: bytes) -> bytes:
    """A message's body as bytes: ``wsgi.input`` hands out pieces of it as they are, and
    PEP 3333 wants bytes, where a server might give a bytearray or a memoryview."""
    return body if type(body) is bytes else bytes(body)


class Channel:
    """The per-request state shared by body reads, the disconnect watcher and sends.

    :param receive: the ASGI ``receive`` callable.
    :param send: the ASGI ``send`` callable.
    """

    __slots__ = (
        "_gone_scope",
        "_kept",
        "_kept_taken",
        "_lock",
        "_on_gone",
        "_receive",
        "_receiving",
        "_send",
        "body_complete",
        "client_gone",
    )

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._lock: anyio.Lock | None = None
        self._kept: Message | None = None
        self._kept_taken: anyio.Event | None = None
        self._on_gone: Callable[[], None] | None = None
        self._receiving = False
        self._gone_scope: anyio.CancelScope | None = None
        self.body_complete = False
        self.client_gone = False

    async def receive_body(self, wanted: int) -> tuple[bytes, bool]:
        """Await body messages until ``wanted`` bytes arrived or the body ended.

        :param wanted: stop once at least this many bytes arrived.
        :returns: the bytes and whether more body follows.
        :raises ClientDisconnected: when ``http.disconnect`` comes before the last body
            message.
        :raises RuntimeError: when the server sends a message of another type.
        """
        if self.body_complete:
            return b"", False
        if self.client_gone:
            raise ClientDisconnected.during_body()
        if self._lock is None:
            return await self._collect(wanted)
        async with self._lock:
            return await self._collect(wanted)

    async def _collect(self, wanted: int) -> tuple[bytes, bool]:
        pieces: list[bytes] = []
        received = 0
        while not self.body_complete:
            if self._kept is not None:
                message, self._kept = self._kept, None
                assert self._kept_taken is not None
                self._kept_taken.set()
            else:
                message = await self._receive()
            kind = message["type"]
            if kind == "http.request":
                body = _as_bytes(message.get("body", b""))
                if not message.get("more_body", False):
                    self.body_complete = True
                if body:
                    pieces.append(body)
                    received += len(body)
                    if received >= wanted:
                        break
            elif kind == "http.disconnect":
                self._client_left()
                raise ClientDisconnected.during_body()
            else:
                raise RuntimeError(
                    f"the ASGI server sent {kind!r} while the request body was being read; "
                    "expected 'http.request' or 'http.disconnect'"
                )
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return body, not self.body_complete

    def start_watching(self, task_group: anyio.abc.TaskGroup, on_gone: Callable[[], None]) -> None:
        """Watch ``receive()`` for ``http.disconnect`` in ``task_group``.

        When the client goes, ``on_gone`` is called and ``task_group`` is cancelled,
        whatever it was waiting for (a slow ``send()`` included).

        :param task_group: cancelled when the client goes; its cancellation ends the
            watch.
        :param on_gone: called (on the loop) when the client goes.
        """
        self._on_gone = on_gone
        if self._receiving:
            return  # the receiver watches already, and cancels the enclosing group
        self._lock = anyio.Lock()
        self._gone_scope = task_group.cancel_scope
        task_group.start_soon(self._watch_for_disconnect)

    def start_receiving(
        self,
        task_group: anyio.abc.TaskGroup,
        pipe: BodyPipe,
        call_soon: Callable[[Callable[[], object]], object],
    ) -> None:
        """Receive the body into ``pipe`` in a task, then watch for ``http.disconnect``.

        The request's only caller of ``receive()`` from then on: when the client goes,
        ``task_group`` is cancelled (and the ``on_gone`` of a later
        :meth:`start_watching` is called).

        :param task_group: the request's task group.
        :param pipe: where body messages go, for ``wsgi.input``.
        :param call_soon: the loop's thread-safe ``call_soon``, for the pipe's wake-ups.
        """
        self._receiving = True
        self._gone_scope = task_group.cancel_scope
        task_group.start_soon(self._receive_into, pipe, call_soon)

    async def _receive_into(
        self, pipe: BodyPipe, call_soon: Callable[[Callable[[], object]], object]
    ) -> None:
        receive = self._receive
        try:
            while not self.body_complete:
                if not pipe.has_room():
                    room = anyio.Event()
                    if not pipe.room_or_notify(partial(call_soon, room.set)):
                        # Read-ahead is bounded: wait until the app has read some.
                        await room.wait()
                        continue
                message = await receive()
                kind = message["type"]
                if kind == "http.request":
                    more_body = message.get("more_body", False)
                    pipe.feed(_as_bytes(message.get("body", b"")), more_body=more_body)
                    self.body_complete = not more_body
                elif kind == "http.disconnect":
                    self._client_left()
                    return
                else:
                    logger.error(
                        "the ASGI server sent %r while the request body was being read; "
                        "expected 'http.request' or 'http.disconnect'",
                        kind,
                    )
                    return
            # ASGI: once the body is complete, the next message can only be
            # http.disconnect.
            while (await self._receive())["type"] != "http.disconnect":
                pass
            self._client_left()
        finally:
            # A read still waiting learns the body will not complete.
            pipe.close()

    async def _watch_for_disconnect(self) -> None:
        lock = self._lock
        assert lock is not None
        while not self._body_settled():
            async with lock:
                if self._body_settled():
                    break
                if self._kept is None:
                    message = await self._receive()
                    if message["type"] == "http.disconnect":
                        self._client_left()
                        return
                    self._kept = message
                    self._kept_taken = anyio.Event()
                    if not message.get("more_body", False):
                        # The last body message: a read takes it without receive(),
                        # so the watch can go on at once (a GET whose app never
                        # reads its empty body must still notice the disconnect).
                        break
                taken = self._kept_taken
            # Hold at most one message: wait until a read has taken it.
            assert taken is not None
            await taken.wait()
        # ASGI: once the body is complete, the next message can only be http.disconnect.
        while not self.client_gone:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._client_left()

    def _body_settled(self) -> bool:
        # A method, not an expression, because both flags change while we await.
        return self.body_complete or self.client_gone

    def _client_left(self) -> None:
        self.client_gone = True
        if self._on_gone is not None:
            self._on_gone()
        if self._gone_scope is not None:
            self._gone_scope.cancel()

    async def send_message(self, message: Message) -> bool:
        """Send ``message`` unless the client is gone; False when it is (or goes).

        A ``send()`` that raises what :func:`connection_is_gone` recognises means the
        client left: not an error, logged at debug level only.  (One still waiting
        when the watcher sees ``http.disconnect`` is cancelled with its task group.)

        :param message: the ASGI message.
        :raises Exception: what ``send()`` raised, unless the connection is gone.
        """
        if self.client_gone:
            return False
        try:
            await self._send(message)
        except (OSError, RuntimeError) as exc:
            if not connection_is_gone(exc):
                raise
            logger.debug("send() failed, the client is gone: %r", exc)
            self._client_left()
            return False
        return True

    async def send_body(self, body: bytes, *, more_body: bool) -> bool:
        """Send an ``http.response.body`` message; False when the client is gone.

        :param body: the bytes.
        :param more_body: whether more body follows.
        """
        return await self.send_message(
            {"type": "http.response.body", "body": body, "more_body": more_body}
        )
