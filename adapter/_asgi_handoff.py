"""A one-shot result handed from the loop thread to one waiting request thread.

:class:`adapter._asgi_responder.AsgiToWsgiResponder` makes two or more of these per
request (the first body message, the task's outcome, each next chunk), so they are on
the hot path.  A :class:`concurrent.futures.Future` would do, but it builds a
``threading.Condition`` and takes its lock on every ``done()``, ``result()`` and
``set_result()``; a :class:`Handoff` is four slots and no lock.

It has just the part of the future interface that :meth:`ThreadMailbox.wait
<adapter._outer.ThreadMailbox.wait>` uses, under one discipline: one thread (the
loop's) completes it, once; one thread (the owner of the mailbox) waits for it.  No
wake-up can be lost: the completing side stores ``_done`` before it reads
``_callback``, the waiting side stores ``_callback`` before it reads ``_done``, so at
least one of them sees the other's store and runs the callback.  Both may, so the
callback may run twice; the mailbox's wake-up marker is harmless when repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """A result or an exception, set once by the loop thread, read by the request thread."""

    __slots__ = ("_callback", "_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._callback: Callable[[Handoff[T]], object] | None = None

    def done(self) -> bool:
        """True once a result or an exception is set."""
        return self._done

    def set_result(self, value: T) -> None:
        """Complete with ``value``; loop thread, once.

        :param value: the result.
        :raises RuntimeError: if already completed.
        """
        self._check_pending()
        self._value = value
        self._complete()

    def set_exception(self, error: BaseException) -> None:
        """Complete with ``error``, which :meth:`result` raises; loop thread, once.

        :param error: the exception.
        :raises RuntimeError: if already completed.
        """
        self._check_pending()
        self._error = error
        self._complete()

    def _check_pending(self) -> None:
        if self._done:
            raise RuntimeError("a Handoff is completed once")

    def _complete(self) -> None:
        self._done = True
        callback = self._callback
        if callback is not None:
            callback(self)

    def add_done_callback(self, callback: Callable[[Handoff[T]], object]) -> None:
        """Have ``callback(self)`` run at completion, or now if already complete.

        One callback only (the waiting thread's); it may run twice, see the module
        docstring.

        :param callback: runs in the completing thread, or in this one.
        """
        self._callback = callback
        if self._done:
            callback(self)

    def result(self) -> T:
        """The result; request thread, once :meth:`done`.

        :raises RuntimeError: if not completed yet.
        :raises BaseException: the exception it was completed with.
        """
        if not self._done:
            raise RuntimeError("the Handoff is not completed yet")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # T, set with _done
