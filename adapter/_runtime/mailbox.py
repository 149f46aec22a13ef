"""The outer sync thread's mailbox: work posted from any thread, run by a thread that waits.

asgiref calls this a ``CurrentThreadExecutor``: a sync thread that blocks on an async
call (``async_to_sync``, or a WSGI request thread inside :class:`adapter.AsgiToWsgi`)
does not sleep idle, it runs the thread-sensitive work that the async side posts back
to it, so code that must stay on one thread (Django's ORM, thread-local state) does.

A mailbox is created in the thread that will wait (its owner) and is open until the
owner closes it:

- ``post(func)`` from any thread queues ``func``; the owner runs it during its current
  ``wait``, or its next one, or when it closes the mailbox.  Posting to a closed mailbox
  raises :class:`MailboxClosed` at once, so a caller never waits for work that will
  never run (the poster turns it into the failure of its own call).
- ``wait(future)`` runs posted work until ``future`` is done.  In between it sleeps on
  its thread's bell (a socket pair), which ``post`` and the future's done callback ring:
  one wake-up per completed future and no polling, because ``wait`` is on the
  per-request hot path of ``AsgiToWsgi``.  A ring is a ``send()``, which lets go of the
  GIL, so the woken thread runs at once instead of waking only to wait for the GIL.
- ``close()`` refuses new work, then runs what was already accepted, so nothing posted
  is lost silently.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar

from adapter._runtime.fork import forget_in_child

__all__ = ["Completion", "MailboxClosed", "ThreadMailbox", "current_mailbox"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Completion(Protocol[T_co]):
    """What :meth:`ThreadMailbox.wait` waits for: a :class:`concurrent.futures.Future`, or
    the lighter one-shot :class:`adapter._runtime.handoff.Handoff` of the hot paths."""

    def done(self) -> bool: ...

    def add_done_callback(self, fn: Callable[[Completion[T_co]], object], /) -> None: ...

    def result(self) -> T_co: ...


logger = logging.getLogger("adapter")


class _Bell:
    """A thread's doorbell: a socket pair that the thread sleeps on, rung by others.

    Ringing writes one byte with ``socket.send``, which lets go of the GIL around the
    system call, so the woken thread can take the GIL at once; waking it through a
    lock (``SimpleQueue.put``) happens with the GIL held, and on a busy CPU the woken
    thread runs only to find the GIL taken and sleep again, three context switches
    per wake-up instead of one.  One bell per thread, made on its first mailbox.
    """

    __slots__ = ("_ear", "_mouth")

    def __init__(self) -> None:
        self._ear, self._mouth = socket.socketpair()
        # A full buffer means the thread has a wake-up pending already.
        self._mouth.setblocking(False)

    def ring(self) -> None:
        """Wake the thread if it sleeps in :meth:`listen` (or make its next one return)."""
        try:  # noqa: SIM105 - contextlib.suppress() costs three calls per ring
            self._mouth.send(b"\0")
        except OSError:
            pass  # full (a wake-up is pending already) or closed (the thread is gone)

    def listen(self, timeout: float | None) -> None:
        """Sleep until rung (the rings so far are consumed), or for ``timeout`` seconds."""
        if timeout is None:
            self._ear.recv(_RINGS)
            return
        self._ear.settimeout(timeout)
        try:
            self._ear.recv(_RINGS)
        except TimeoutError:
            pass
        finally:
            self._ear.settimeout(None)

    def __del__(self) -> None:
        # The thread ended (its thread-local went) and no mailbox holds the bell.
        self._ear.close()
        self._mouth.close()


_RINGS = 4096
_bells = threading.local()


def _bell_of_this_thread() -> _Bell:
    bell: _Bell | None = getattr(_bells, "bell", None)
    if bell is None:
        bell = _bells.bell = _Bell()
    return bell


@forget_in_child
def _forget_bells() -> None:
    # The forking thread's socket pair is shared with the parent: the child's own.
    global _bells
    _bells = threading.local()


class MailboxClosed(RuntimeError):
    """Raised by :meth:`ThreadMailbox.post` once the owner thread has closed the mailbox.

    The thread that would have run the work no longer waits for it; the poster should
    fail the call it was making with this error rather than wait forever.
    """


class ThreadMailbox:
    """Work posted from any thread, run by the one thread that created the mailbox.

    Create it in the thread that will block (the owner), publish it (for example through
    :data:`current_mailbox`) to the code that will post to it, then :meth:`wait`.
    Usable as a context manager, which closes it on exit.
    """

    __slots__ = ("_bell", "_closed", "_inbox", "_lock", "_owner")

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._bell = _bell_of_this_thread()
        self._inbox: collections.deque[Callable[[], object]] = collections.deque()
        # Makes "check closed, then queue" atomic against close(), so no work slips
        # into the queue after close() has drained it.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def owner(self) -> int:
        """The ``threading.get_ident()`` of the thread that runs the posted work."""
        return self._owner

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called; :meth:`post` then raises."""
        return self._closed

    def is_owned_by_current_thread(self) -> bool:
        """True when called from the owner thread."""
        return threading.get_ident() == self._owner

    def post(self, func: Callable[[], object]) -> None:
        """Queue ``func`` to run in the owner thread; callable from any thread.

        ``func`` runs during the owner's current or next :meth:`wait`, or at
        :meth:`close`.  It should report its own outcome (set a future, wake a loop):
        an exception escaping it is logged to the ``adapter`` logger and dropped, so
        that one broken job can not break the owner's wait.

        :param func: a callable taking no arguments.
        :raises MailboxClosed: if the mailbox is closed; ``func`` will never run.
        """
        with self._lock:
            if self._closed:
                raise MailboxClosed(
                    "the sync thread this thread-sensitive call belongs to has stopped "
                    "waiting for it (its async_to_sync call or WSGI request is over); "
                    "await the call before that thread's call returns"
                )
            self._inbox.append(func)
        self._bell.ring()

    def wait(self, future: Completion[T], timeout: float | None = None) -> T:
        """Run posted work in this (the owner) thread until ``future`` is done.

        Waits can nest: work run by one ``wait`` may itself ``wait`` on another future,
        and both are served from the same queue.

        :param future: the future whose outcome to return.
        :param timeout: seconds to wait at most; ``None`` waits as long as it takes.
        :returns: the future's result.
        :raises RuntimeError: if called from a thread other than the owner.
        :raises TimeoutError: if ``future`` is not done after ``timeout`` seconds.
        :raises BaseException: whatever ``future`` raises (its exception, unchanged).
        """
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                "ThreadMailbox.wait() must be called from the thread that created the mailbox"
            )
        inbox = self._inbox
        if inbox or not future.done():
            bell = self._bell
            future.add_done_callback(self._ring)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                while inbox:
                    self._run(inbox.popleft())
                if future.done():
                    break
                if deadline is None:
                    bell.listen(None)
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"the future was not done after {timeout} seconds")
                    bell.listen(remaining)
        return future.result()

    def close(self) -> None:
        """Refuse new work, then run the work already accepted; owner thread only.

        Closing twice is harmless.

        :raises RuntimeError: if called from a thread other than the owner.
        """
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                "ThreadMailbox.close() must be called from the thread that created the mailbox"
            )
        with self._lock:
            self._closed = True
        inbox = self._inbox
        while inbox:
            self._run(inbox.popleft())

    def __enter__(self) -> ThreadMailbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ring(self, _future: object) -> None:
        # Bypasses the closed check on purpose: a wake-up is never work, and a
        # waiting owner must be woken even after close().
        self._bell.ring()

    @staticmethod
    def _run(job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:
            logger.exception("work posted to a ThreadMailbox raised; it was dropped")


current_mailbox: contextvars.ContextVar[ThreadMailbox | None] = contextvars.ContextVar(
    "adapter_current_mailbox", default=None
)
"""The mailbox of the nearest outer sync thread, or None when there is none.

Set by ``async_to_sync`` for the coroutine it runs, and by ``AsgiToWsgi`` for the
request's ASGI app task; read by thread-sensitive ``sync_to_async`` calls.
"""
