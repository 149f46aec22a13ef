"""A one-shot result handed from an event loop thread to a sync thread that waits for it.

:class:`adapter.asgi_to_wsgi.responder.AsgiToWsgiResponder` makes two or more of these per
request (the first body message, the app task's outcome, each further chunk), and
``async_to_sync`` one per call (the coroutine's outcome), so they are on the hot path.
A :class:`concurrent.futures.Future` would do, but it builds a ``threading.Condition``
per instance and enters it (a Python-level ``RLock`` wrapper) on every ``done()``,
``result()``, ``set_result()`` and ``add_done_callback()``: about eight times per
request.  A :class:`Handoff` guards its one callback with a plain
``threading.Lock`` taken twice, and reads its flag without a lock.

It has the part of the future interface that :meth:`ThreadMailbox.wait
<adapter._runtime.mailbox.ThreadMailbox.wait>` uses (``done()``, ``add_done_callback()``,
``result()``), plus ``set_result()`` and ``set_exception()``.  It has no cancellation
and one done-callback at most: the waiting thread's wake-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")


class Handoff(Generic[T]):
    """A result or an exception, set once (on the loop thread), waited for by one thread."""

    __slots__ = ("_callback", "_done", "_error", "_lock", "_value")

    def __init__(self) -> None:
        # Makes "completed?" and "who calls the callback?" one decision, so the waiting
        # thread's wake-up runs exactly once, whichever side comes second.
        self._lock = threading.Lock()
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._callback: Callable[[Handoff[T]], object] | None = None

    def done(self) -> bool:
        """True once a result or an exception is set."""
        return self._done

    def set_result(self, value: T) -> None:
        """Complete with ``value``.

        :param value: the result.
        :raises RuntimeError: if already completed.
        """
        self._complete(value, None)

    def set_exception(self, error: BaseException) -> None:
        """Complete with ``error``, which :meth:`result` then raises.

        :param error: the exception.
        :raises RuntimeError: if already completed.
        """
        self._complete(None, error)

    def _complete(self, value: T | None, error: BaseException | None) -> None:
        with self._lock:
            if self._done:
                raise RuntimeError("a Handoff is completed once")
            self._value = value
            self._error = error
            # Stored last: a reader that sees _done sees the outcome too.
            self._done = True
            callback = self._callback
        if callback is not None:
            callback(self)

    def add_done_callback(self, callback: Callable[[Handoff[T]], object]) -> None:
        """Have ``callback(self)`` run once at completion, or now if already complete.

        :param callback: runs in the completing thread, or in this one if complete.
        :raises RuntimeError: if a callback was already added (one waiter only).
        """
        with self._lock:
            if not self._done:
                if self._callback is not None:
                    raise RuntimeError("a Handoff has one waiter only")
                self._callback = callback
                return
        callback(self)

    def result(self) -> T:
        """The result, once :meth:`done`.

        :raises RuntimeError: if not completed yet.
        :raises BaseException: the exception it was completed with.
        """
        if not self._done:
            raise RuntimeError("the Handoff is not completed yet")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # a T whenever _error is None
