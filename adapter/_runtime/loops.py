"""Event loops seen from other threads: asyncio and trio behind one small interface.

``sync_to_async`` hands a call to a thread and must be woken on its loop when the call
is done; ``async_to_sync`` hands a coroutine to a loop (the outer one, or a fresh one)
and waits for it in a sync thread.  Both need the same few operations, written once per
backend here so that ``adapter.sync`` reads the same on asyncio and on trio:

- :func:`current_loop` (on the loop's thread) names the running loop;
- ``LoopHandle.wait`` / ``finish_soon`` await and wake a :class:`ThreadCall`
  (``adapter._runtime.calls``), one sync call made from a loop and run by another thread;
- ``LoopHandle.submit`` starts a coroutine on the loop from another thread, and
  :func:`start_on_outer_loop` does so on the loop the calling thread works for;

We use each backend's own thread-safe entry points (``call_soon_threadsafe``,
``TrioToken.run_sync_soon``) rather than anyio's ``from_thread``, which blocks the
calling thread until the loop answers: a worker must not wait for the loop just to say
that it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import sys
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread

from adapter._runtime.calls import (
    CoroutineFunction,
    Outcome,
    ThreadCall,
    capture,
    outer_loop_of_this_call,
)
from adapter._runtime.handoff import Handoff
from adapter._runtime.tasks import spawn, spawn_threadsafe
from adapter._runtime.waiter import DirectWaiter

if TYPE_CHECKING:
    import trio

__all__ = [
    "AsyncioLoop",
    "LoopHandle",
    "TrioLoop",
    "current_loop",
    "loop_running_here",
    "outer_loop_here",
    "start_on_outer_loop",
]

logger = logging.getLogger("adapter")

_default_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]
_default_limiters = weakref.WeakKeyDictionary()


class LoopHandle:
    """A running event loop, as other threads and :class:`ThreadCall` use it."""

    __slots__ = ()
    backend = ""

    def new_waiter(self) -> Any:
        raise NotImplementedError

    def finish_soon(self, call: ThreadCall) -> None:
        """Mark ``call`` finished and wake its caller, on the loop; from any thread."""
        raise NotImplementedError

    async def wait(self, call: ThreadCall) -> None:
        """Wait on the loop until ``call`` is finished, or until cancelled.

        Cancelled, it abandons a call not started yet; a started one it waits for
        (shielded) unless the call is ``detachable``, which it leaves running.
        """
        raise NotImplementedError

    def submit(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        """Start ``coro_fn()`` as a task on the loop, in ``context``; from another thread."""
        raise NotImplementedError

    def start(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        """The same as :meth:`submit`, called on the loop's own thread."""
        raise NotImplementedError

    def default_limiter(self) -> anyio.CapacityLimiter:
        """anyio's default thread limiter of this loop; on the loop's thread."""
        return anyio.to_thread.current_default_thread_limiter()


class AsyncioLoop(LoopHandle):
    __slots__ = ("loop",)
    backend = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def new_waiter(self) -> DirectWaiter:
        return DirectWaiter(self.loop)

    def default_limiter(self) -> anyio.CapacityLimiter:
        # anyio looks its limiter up through sniffio and a RunVar on every call, which
        # costs more than a tenth of a whole call here; it is one object per loop.
        limiter = _default_limiters.get(self.loop)
        if limiter is None:
            limiter = _default_limiters[self.loop] = super().default_limiter()
        return limiter

    def finish_soon(self, call: ThreadCall) -> None:
        try:
            self.loop.call_soon_threadsafe(_finish_asyncio, call)
        except RuntimeError:
            _loop_gone(call, "the event loop closed")

    async def wait(self, call: ThreadCall) -> None:
        if call.finished:
            return
        try:
            await call.waiter
        except asyncio.CancelledError:
            if call.abandon() or _leave(call):
                raise
            # The thread can not be interrupted: wait for it, as anyio's to_thread does,
            # so that the call's thread is free and its context settled before we go.
            with anyio.CancelScope(shield=True):
                while not call.finished:
                    call.waiter = DirectWaiter(self.loop)
                    with contextlib.suppress(asyncio.CancelledError):
                        await call.waiter
            raise

    def submit(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        spawn_threadsafe(
            self.loop,
            _settle,
            coro_fn,
            future,
            context=context,
            if_unstarted=partial(_cancelled_unstarted, future, context),
        )
        return future

    def start(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        spawn(
            self.loop,
            _settle,
            coro_fn,
            future,
            context=context,
            if_unstarted=partial(_cancelled_unstarted, future, context),
        )
        return future


def _finish_asyncio(call: ThreadCall) -> None:
    # A plain callback of the loop: the waiting task resumes right here (DirectWaiter).
    call.ended_on_the_loop()


class TrioLoop(LoopHandle):
    __slots__ = ("token",)
    backend = "trio"

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token

    def new_waiter(self) -> trio.Event:
        import trio

        return trio.Event()

    def finish_soon(self, call: ThreadCall) -> None:
        try:
            self.token.run_sync_soon(_finish_trio, call)
        except RuntimeError:
            _loop_gone(call, "the trio run ended")

    async def wait(self, call: ThreadCall) -> None:
        import trio

        try:
            await call.waiter.wait()
        except trio.Cancelled:
            if call.abandon() or _leave(call):
                raise
            with trio.CancelScope(shield=True):
                await call.waiter.wait()
            raise

    def submit(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        self.token.run_sync_soon(_spawn_trio, coro_fn, future, context)
        return future

    def start(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        _spawn_trio(coro_fn, future, context)
        return future


def _finish_trio(call: ThreadCall) -> None:
    call.ended_on_the_loop()


def _leave(call: ThreadCall) -> bool:
    """A cancelled caller leaves a started call running, if it may; on the loop's thread.

    The thread will still tell the loop when the call ends (``ended_on_the_loop``), and
    the loop then wakes nobody.
    """
    if not call.detachable or call.finished:
        return False
    call.caller_left = True
    return True


def _loop_gone(call: ThreadCall, what_happened: str) -> None:
    # The loop can not be told that the call ended.  That matters only to a caller
    # still waiting; one that left (cancelled) expects nothing.
    if not call.caller_left:
        logger.warning("%s before a sync_to_async call returned", what_happened)


def _spawn_trio(
    coro_fn: CoroutineFunction,
    future: Handoff[Outcome],
    context: contextvars.Context,
) -> None:
    import trio

    # A system task: it belongs to no nursery of the app, like a task asyncio's
    # call_soon_threadsafe starts; `capture` keeps any error from crashing the run.
    trio.lowlevel.spawn_system_task(_settle, coro_fn, future, context=context)


def _cancelled_unstarted(future: Handoff[Outcome], context: contextvars.Context) -> None:
    # The task was cancelled before its coroutine ran (its loop is shutting down): the
    # sync caller gets the cancellation instead of waiting forever.
    future.set_result(Outcome(None, asyncio.CancelledError(), context))


async def _settle(coro_fn: CoroutineFunction, future: Handoff[Outcome]) -> None:
    # On both backends the answer goes from inside the task; on asyncio that is, measured
    # (benchmarks/bench_sync.py, "on the outer loop"), a few microseconds less than from
    # a done callback a loop turn later.
    future.set_result(await capture(coro_fn))


def current_loop() -> LoopHandle:
    """The loop running in this thread.

    :raises RuntimeError: if no asyncio or trio loop runs in this thread.
    """
    loop = asyncio._get_running_loop()
    if loop is not None:
        return AsyncioLoop(loop)
    trio_module = sys.modules.get("trio")
    if trio_module is not None and trio_module.lowlevel.in_trio_run():
        return TrioLoop(trio_module.lowlevel.current_trio_token())
    raise RuntimeError("sync_to_async() must be awaited in an asyncio or trio event loop")


def loop_running_here() -> bool:
    """True when an asyncio or trio loop runs in this thread."""
    if asyncio._get_running_loop() is not None:
        return True
    trio_module = sys.modules.get("trio")
    return trio_module is not None and bool(trio_module.lowlevel.in_trio_run())


def outer_loop_here() -> LoopHandle | None:
    """The loop this thread is doing a sync call for, or None in a plain thread.

    That is the loop of the ``sync_to_async`` call (or ``WsgiToAsgi`` step) this thread
    runs, or, in a worker thread of anyio or trio (``anyio.to_thread.run_sync``), the
    loop that started the thread.
    """
    handle = outer_loop_of_this_call()
    if handle is not None:
        return handle
    try:
        return anyio.from_thread.run_sync(current_loop)
    except RuntimeError:
        pass  # not an anyio worker thread
    trio_module = sys.modules.get("trio")
    if trio_module is not None:
        # RuntimeError: not a trio worker thread either.
        with contextlib.suppress(RuntimeError):
            handle = trio_module.from_thread.run_sync(current_loop)
    return handle


def start_on_outer_loop(
    coro_fn: CoroutineFunction, context: contextvars.Context
) -> Handoff[Outcome] | None:
    """Start ``coro_fn()`` on the loop :func:`outer_loop_here` names; None if none.

    In our own workers (``sync_to_async`` calls, and WSGI apps under ``WsgiToAsgi``) the
    loop is known and the task starts with no blocking hop; in an anyio or trio worker
    thread the one hop that finds the loop also starts the task.
    """
    handle = outer_loop_of_this_call()
    if handle is not None:
        return handle.submit(coro_fn, context)
    try:
        return anyio.from_thread.run_sync(_start_here, coro_fn, context)
    except RuntimeError:
        pass  # not an anyio worker thread (_start_here itself raises no RuntimeError)
    trio_module = sys.modules.get("trio")
    if trio_module is not None:
        with contextlib.suppress(RuntimeError):  # not a trio worker thread either
            future: Handoff[Outcome] = trio_module.from_thread.run_sync(
                _start_here, coro_fn, context
            )
            return future
    return None


def _start_here(coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
    return current_loop().start(coro_fn, context)


def _forget_loops_after_fork() -> None:
    # A child of fork() has none of the parent's loops running.
    global _default_limiters
    _default_limiters = weakref.WeakKeyDictionary()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_loops_after_fork)
