"""Bounded byte pipes between the event loop and the worker thread running a WSGI app.

Each pipe has a blocking side (a worker thread, waiting on a lock) and an async
side (the loop, which never blocks on it: it asks to be called back, through the
loop's thread-safe ``call_soon``, when there is something for it).  Crossing this way
costs a lock and, only when the other side waits, one wake-up; ``anyio.from_thread``
would cost a task on the loop per crossing.

- :class:`ChunkPipe`: response chunks, worker to loop;
- :class:`BodyPipe`: request body, loop to worker (``wsgi.input``'s fetch).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from adapter.exceptions import ClientDisconnected

__all__ = ["FILL_WAIT", "BodyPipe", "ChunkPipe"]


class ChunkPipe:
    """Response chunks from the app's worker thread to the event loop, bounded by bytes.

    The worker calls :meth:`put` for each chunk the app yields, and waits there while
    ``limit`` bytes wait: that is the backpressure.  The loop calls :meth:`take` for
    all that waits at once; when nothing does, it registers a callback with
    :meth:`notify_when_ready`, which the worker calls (from its thread) as soon as a
    chunk or the end arrives.  So a slow stream (server-sent events) goes out chunk by
    chunk, and a fast one in batches, with one wake-up of the loop per batch.

    :param limit: the most bytes that may wait; one chunk may pass it.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_condition",
        "_done",
        "_error",
        "_notify",
        "_stopped",
        "limit",
    )

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._condition = threading.Condition(threading.Lock())
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._error: Exception | None = None
        self._stopped = False
        self._notify: Callable[[], object] | None = None

    def put(self, chunk: bytes) -> bool:
        """Worker side: queue ``chunk``, waiting while the pipe is full.

        :param chunk: bytes for the client.
        :returns: False once :meth:`stop` was called (the client is gone): stop producing.
        """
        with self._condition:
            while self._buffered >= self.limit and not self._stopped:
                self._condition.wait()
            if self._stopped:
                return False
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            notify, self._notify = self._notify, None
        if notify is not None:
            notify()
        return True

    def finish(self, error: Exception | None = None) -> None:
        """Worker side: the body ended, or the app failed with ``error``.

        :param error: what the app raised, handed to the loop.
        """
        with self._condition:
            self._done = True
            self._error = error
            notify, self._notify = self._notify, None
        if notify is not None:
            notify()

    def take(self) -> tuple[list[bytes], bool, Exception | None]:
        """Loop side: everything waiting, whether the body ended, and the app's error."""
        with self._condition:
            chunks = list(self._chunks)
            self._chunks.clear()
            if self._buffered:
                self._buffered = 0
                self._condition.notify()
            return chunks, self._done, self._error

    def notify_when_ready(self, notify: Callable[[], object]) -> bool:
        """Loop side: have the worker call ``notify`` once there is something to take.

        :param notify: called from the worker thread; it must only schedule work on
            the loop (``call_soon_threadsafe``).
        :returns: False when something is already there (take it; nothing is registered).
        """
        with self._condition:
            if self._chunks or self._done:
                return False
            self._notify = notify
            return True

    def stop(self) -> None:
        """Loop side: the client is gone or the request was cancelled; free the worker."""
        with self._condition:
            self._stopped = True
            self._notify = None
            self._condition.notify_all()


FILL_WAIT = 0.002
"""Seconds a body read whose bytes are there may still wait for :class:`BodyPipe` to fill.

While a body streams in faster than the app reads it, this makes the worker wake once
per pipe-full instead of once per message: on uvicorn, whose messages are about 256 KiB,
a 512 MiB upload read 64 KiB at a time took 0.2-0.5 thread switches per read instead
of about 1.5, and the worker waited about once per 1.2 MiB instead of once per message.
A read whose bytes came and no more follow soon waits this much longer."""


class BodyPipe:
    """The request body, from the loop's receiver task to the app's worker thread.

    The loop calls :meth:`feed` with each body message ``receive()`` returns, and
    receives the next one only while fewer than ``limit`` bytes wait
    (:meth:`has_room`, :meth:`room_or_notify`): that bounds the read-ahead.  The
    worker's :meth:`read` waits for the bytes it needs, the end of the body, or the end
    of the pipe.

    Wake-ups are what a body costs most on top of the copies, so there are as few as
    the reads allow: a read that has to wait waits for a full pipe (``limit`` bytes),
    for ``fill_wait`` seconds at most, then for the bytes it needs; the loop wakes it
    only once there is what it waits for (or the end).  The worker wakes the loop only
    when the loop waits for room, and only once there is room.

    :param limit: the most bytes that may wait (one message may pass it).
    :param fill_wait: the most seconds a read waits for a full pipe (``None``: as long
        as it takes) before it waits for just what it needs.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_closed",
        "_complete",
        "_lock",
        "_notify",
        "_reader",
        "_waiter",
        "_wanted",
        "fill_wait",
        "limit",
    )

    def __init__(self, limit: int, fill_wait: float | None = FILL_WAIT) -> None:
        self.limit = limit
        self.fill_wait = fill_wait
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        # Only feed() adds to it (on the loop's thread), so the loop may read it without
        # the lock: what it sees is never less than what is there.
        self._buffered = 0
        self._complete = False
        self._closed = False
        self._notify: Callable[[], object] | None = None
        # The waiting read: a lock it blocks on (released to wake it), and how many
        # bytes wake it.
        self._waiter: threading.Lock | None = None
        # One read at a time: there is one waiter slot, and a second reader waiting at
        # once would take the first one's (PEP 3333 never made two readers safe, but
        # they must not hang).
        self._reader = threading.Lock()
        self._wanted = 0

    def feed(self, body: bytes, *, more_body: bool) -> None:
        """Loop side: add a body message.

        :param body: its bytes.
        :param more_body: whether more body follows.
        """
        with self._lock:
            if body:
                self._chunks.append(body)
                self._buffered += len(body)
            if not more_body:
                self._complete = True
            waiter = self._waiter
            if waiter is None or (self._buffered < self._wanted and more_body):
                return
            self._waiter = None
        waiter.release()

    def has_room(self) -> bool:
        """Loop side: whether another message may be received now (no lock taken)."""
        return self._buffered < self.limit

    def room_or_notify(self, notify: Callable[[], object]) -> bool:
        """Loop side: True when another message may be received now; else ``notify``
        is called (from the worker's thread) once a read made room.

        :param notify: must only schedule work on the loop (``call_soon_threadsafe``).
        """
        with self._lock:
            if self._buffered < self.limit:
                return True
            self._notify = notify
            return False

    def close(self) -> None:
        """Loop side: no more messages will come (the client left, or the request ended).

        A read still waiting for a body that is not complete raises
        :class:`ClientDisconnected`; bytes already here are read first.
        """
        with self._lock:
            self._closed = True
            self._notify = None
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.release()

    def read(self, wanted: int) -> tuple[bytes, bool]:
        """Worker side: whole messages waiting, until ``wanted`` bytes (at least one
        byte, unless the body ended).

        The signature of :data:`adapter.wsgi_to_asgi.streams.Fetch`.  What the read does not need
        stays here, where it counts against ``limit``: so the loop reads ahead of the
        app by at most ``limit`` and one message.  With fewer than ``wanted`` bytes
        here, it waits (see the class).  Reads from several threads take turns.

        :param wanted: how many bytes the read needs.
        :returns: the bytes and whether more body may follow.
        :raises ClientDisconnected: when the pipe closed before the body was complete.
        """
        with self._reader:
            return self._read(wanted)

    def _read(self, wanted: int) -> tuple[bytes, bool]:
        wanted = max(1, min(wanted, self.limit))
        lock = self._lock
        lock.acquire()
        try:
            if self._buffered < wanted and not self._complete and not self._closed:
                self._wait(self.limit, self.fill_wait)
                while self._buffered < wanted and not self._complete and not self._closed:
                    self._wait(wanted, None)
            chunks = self._chunks
            if not chunks:
                if self._complete:
                    return b"", False
                raise ClientDisconnected.during_body()
            taken = len(chunks[0])
            count = 1
            while taken < wanted and count < len(chunks):
                taken += len(chunks[count])
                count += 1
            data = chunks[0] if count == 1 else b"".join(chunks[:count])
            del chunks[:count]
            self._buffered -= taken
            more_body = bool(chunks) or not self._complete
            notify = self._notify
            if notify is not None and self._buffered < self.limit:
                self._notify = None
            else:
                notify = None
        finally:
            lock.release()
        if notify is not None:
            notify()
        return data, more_body

    def _wait(self, wanted: int, timeout: float | None) -> None:
        """Wait until ``wanted`` bytes are here (or the end), ``timeout`` seconds at most;
        called and returns with the lock held."""
        waiter = threading.Lock()
        waiter.acquire()
        self._waiter = waiter
        self._wanted = wanted
        self._lock.release()
        try:
            # A waiter that times out is dropped: a late release() only frees its lock.
            waiter.acquire(timeout=-1 if timeout is None else timeout)
        finally:
            self._lock.acquire()
            if self._waiter is waiter:
                self._waiter = None
