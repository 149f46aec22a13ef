"""One running event loop, as other threads and the bridges use it: :class:`LoopHandle`.

This is adapter's one loop abstraction.  Its two implementations live in
:mod:`adapter._runtime._asyncio` and :mod:`adapter._runtime._trio`, the only modules that
know either backend; :func:`adapter._runtime.loops.current_loop` picks one.  What is the
same on both (waiting for a :class:`~adapter._runtime.calls.ThreadCall`, telling the loop
that one ended) is written here once, over the few operations each backend provides.

We use each backend's own thread-safe entry point (``call_soon_threadsafe``,
``TrioToken.run_sync_soon``) rather than anyio's ``from_thread``, which blocks the
calling thread until the loop answers: a worker must not wait for the loop just to say
that it is done.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.to_thread

from adapter._runtime.calls import Beneath, CoroutineFunction, Outcome, ThreadCall, capture
from adapter._runtime.handoff import Handoff

__all__ = ["LoopHandle", "Waiter", "guarded", "run_logged", "settle"]

logger = logging.getLogger("adapter")


class Waiter(Protocol):
    """What a :class:`ThreadCall`'s caller awaits: an ``asyncio.Event`` or ``trio.Event``."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self) -> Awaitable[object]: ...


class LoopHandle:
    """A running event loop, as other threads and :class:`ThreadCall` use it."""

    __slots__ = ()

    #: The anyio backend name: ``"asyncio"`` or ``"trio"``.
    backend = ""

    def identity(self) -> object:
        """What tells this loop from another (the same for every handle of one loop)."""
        raise NotImplementedError

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop's thread soon; from any thread.

        What the callback raises is logged to the ``adapter`` logger, never raised.

        :raises RuntimeError: if the loop has closed.
        """
        raise NotImplementedError

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` at the loop's next turn; on the loop's thread only."""
        raise NotImplementedError

    def time(self) -> float:
        """The loop's clock; on the loop's thread only (callbacks included)."""
        raise NotImplementedError

    def new_waiter(self) -> Waiter:
        """A fresh event that a task of this loop can await and the loop can set."""
        raise NotImplementedError

    def prepare_spawning(self) -> Callable[[], None]:
        """Set up what makes :meth:`spawn_soon` cheaper; on the loop's thread, in a task.

        :returns: what undoes it, to call on the loop's thread before the loop ends.
        """
        return _nothing

    def spawn_soon(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Start ``async_fn(*args)`` as a task on the loop; from any thread, the loop's included.

        The task belongs to no task group: ``async_fn`` must handle its own errors
        (what escapes is logged to the ``adapter`` logger).
        """
        raise NotImplementedError

    def submit(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        """Start ``coro_fn()`` as a task on the loop, in ``context``; from another thread.

        :returns: the one-shot answer: the coroutine's :class:`Outcome`, a cancellation
            included.
        """
        raise NotImplementedError

    def start(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        """The same as :meth:`submit`, called on the loop's own thread."""
        raise NotImplementedError

    async def run_beneath(self, call: ThreadCall, coro_fn: CoroutineFunction) -> Any:
        """Await ``coro_fn()``, which ``call``'s thread waits for in ``async_to_sync``.

        Meanwhile ``call.beneath`` lets a cancelled caller of ``call`` cancel it natively
        (an ``asyncio`` task cancellation, a trio cancel scope): see :meth:`wait`.  On
        the loop's thread, in the task that runs the coroutine.

        :raises BaseException: what ``coro_fn()`` raises, the cancellation included.
        """
        raise NotImplementedError

    def default_limiter(self) -> anyio.CapacityLimiter:
        """anyio's default thread limiter of this loop; on the loop's thread."""
        return anyio.to_thread.current_default_thread_limiter()

    def finish_soon(self, call: ThreadCall) -> None:
        """Tell the loop that ``call`` ended (it wakes the caller); from the call's thread."""
        try:
            self.call_soon_threadsafe(call.ended_on_the_loop)
        except RuntimeError:
            # The loop can not be told.  That matters only to a caller still waiting;
            # one that left (cancelled) expects nothing.
            if not call.caller_left:
                logger.warning("the event loop ended before a sync_to_async call returned")

    async def wait(self, call: ThreadCall) -> None:
        """Wait on the loop until ``call`` is finished, or until cancelled.

        Cancelled, it abandons a call not started yet; a started one it waits for
        (shielded) unless the call is ``detachable``, which it leaves running.  A call
        whose thread waits in ``async_to_sync`` for a coroutine on this loop has that
        coroutine cancelled first, and its end awaited (asgiref 3.13): if the coroutine
        ends by the cancellation, so does this wait; if it ends otherwise (it shielded
        its work and went on), the call is awaited to its end and this wait returns, as
        if never cancelled.
        """
        if call.finished:
            return
        try:
            await call.waiter.wait()
        except anyio.get_cancelled_exc_class():
            if call.abandon():
                raise
            beneath = call.beneath
            if beneath is not None and not await _cancelled(beneath):
                await _to_the_end(call)
                return
            if _leave(call):
                raise
            # The thread can not be interrupted: wait for it, as anyio's to_thread does,
            # so that the call's thread is free and its context settled before we go.
            # (On asyncio a native Task.cancel() can still reach into a shielded scope:
            # such a cancellation is swallowed here until the call ended.)
            await _to_the_end(call)
            raise


async def _to_the_end(call: ThreadCall) -> None:
    """Wait for a started call's end, whatever cancels meanwhile; on the loop's thread."""
    # anyio's shield keeps scope cancellations out; on asyncio a native Task.cancel()
    # still reaches in, and is swallowed here until the call ended.
    with anyio.CancelScope(shield=True):
        while not call.finished:
            with contextlib.suppress(anyio.get_cancelled_exc_class()):
                await call.waiter.wait()


async def _cancelled(beneath: Beneath) -> bool:
    """Cancel the coroutine beneath a call and wait for its end: did the cancellation end it?"""
    ended = beneath.ended
    if ended is None:
        ended = beneath.ended = anyio.Event()
    beneath.cancel()
    with anyio.CancelScope(shield=True):
        while not ended.is_set():
            with contextlib.suppress(anyio.get_cancelled_exc_class()):
                await ended.wait()
    return beneath.cancelled


def _nothing() -> None:
    """What undoes nothing."""


def _leave(call: ThreadCall) -> bool:
    """A cancelled caller leaves a started call running, if it may; on the loop's thread.

    The thread will still tell the loop when the call ends (``ended_on_the_loop``), and
    the loop then wakes nobody.
    """
    if not call.detachable or call.finished:
        return False
    call.caller_left = True
    return True


async def settle(coro_fn: CoroutineFunction, future: Handoff[Outcome]) -> None:
    """Run ``coro_fn()`` and hand its outcome, whatever it is, to ``future``."""
    future.set_result(await capture(coro_fn))


def run_logged(callback: Callable[..., object], args: tuple[Any, ...]) -> None:
    """Call ``callback(*args)``; log what it raises (a loop callback must not raise)."""
    try:
        callback(*args)
    except Exception:
        logger.exception("a callback on an event loop failed")


async def guarded(async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> None:
    """Await ``async_fn(*args)``, logging what escapes: for tasks of no task group."""
    try:
        await async_fn(*args)
    except Exception:
        logger.exception("a task on the adapter event loop failed")
