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
- ``wait(future)`` runs posted work until ``future`` is done.  The future's done
  callback puts one wake-up marker in the queue: one wake-up per completed future and
  no polling, because ``wait`` is on the per-request hot path of ``AsgiToWsgi``.
- ``close()`` refuses new work, then runs what was already accepted, so nothing posted
  is lost silently.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Protocol, TypeVar

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


def _wake() -> None:
    """The marker a completed future posts; running it does nothing."""


_WAKE: Final = _wake


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

    __slots__ = ("_closed", "_inbox", "_lock", "_owner")

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._inbox: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
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
            self._inbox.put(func)

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
        if not future.done():
            inbox = self._inbox
            future.add_done_callback(self._post_wake)
            deadline = None if timeout is None else time.monotonic() + timeout
            while not future.done():
                if deadline is None:
                    job = inbox.get()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"the future was not done after {timeout} seconds")
                    try:
                        job = inbox.get(timeout=remaining)
                    except queue.Empty:
                        continue
                if job is not _WAKE:
                    self._run(job)
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
        while True:
            try:
                job = self._inbox.get_nowait()
            except queue.Empty:
                return
            if job is not _WAKE:
                self._run(job)

    def __enter__(self) -> ThreadMailbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _post_wake(self, _future: object) -> None:
        # Bypasses the closed check on purpose: a wake-up is never work, and a
        # waiting owner must be woken even after close().
        self._inbox.put(_WAKE)

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
