"""Which loop runs here, and which loop this thread works for.

- :func:`current_loop` (on a loop's thread) gives the running loop's
  :class:`~adapter._runtime.handle.LoopHandle`, asyncio's or trio's;
- :func:`loop_identity` tells one running loop from another, cheaply;
- :func:`outer_loop_here` (in a sync thread) names the loop the thread does a sync call
  for, and :func:`start_on_outer_loop` starts a coroutine there.

This is where adapter asks which backend runs; the answers come from
:mod:`adapter._runtime._asyncio` and :mod:`adapter._runtime._trio`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import anyio.from_thread

from adapter._runtime._asyncio import AsyncioLoop, running_loop
from adapter._runtime._trio import TrioLoop, running_token, worker_thread_run_sync
from adapter._runtime.calls import (
    CoroutineFunction,
    Outcome,
    call_of_this_thread,
    outer_loop_of_this_call,
)
from adapter._runtime.handle import LoopHandle
from adapter._runtime.handoff import Handoff

__all__ = [
    "current_loop",
    "loop_identity",
    "loop_running_here",
    "outer_loop_here",
    "start_on_outer_loop",
]


def current_loop() -> LoopHandle:
    """The loop running in this thread.

    :raises RuntimeError: if no asyncio or trio loop runs in this thread.
    """
    loop = running_loop()
    if loop is not None:
        return AsyncioLoop(loop)
    token = running_token()
    if token is not None:
        return TrioLoop(token)
    raise RuntimeError("sync_to_async() must be awaited in an asyncio or trio event loop")


def loop_identity() -> object:
    """What tells the loop running here from another one (None when none runs)."""
    loop = running_loop()
    return loop if loop is not None else running_token()


def loop_running_here() -> bool:
    """True when an asyncio or trio loop runs in this thread."""
    return running_loop() is not None or running_token() is not None


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
    with contextlib.suppress(RuntimeError):  # not a trio worker thread either
        handle = worker_thread_run_sync(current_loop)
    return handle


def start_on_outer_loop(
    coro_fn: CoroutineFunction, context: contextvars.Context
) -> Handoff[Outcome] | None:
    """Start ``coro_fn()`` on the loop :func:`outer_loop_here` names; None if none.

    In our own workers (``sync_to_async`` calls, and WSGI apps under ``WsgiToAsgi``) the
    loop is known and the task starts with no blocking hop; in an anyio or trio worker
    thread the one hop that finds the loop also starts the task.
    """
    call = call_of_this_thread()
    if call is not None:
        # A cancelled caller of the call (sync_to_async's, or a WSGI step's task)
        # cancels the coroutine too (LoopHandle.wait).
        coro_fn = functools.partial(call.loop.run_beneath, call, coro_fn)
        return call.loop.submit(coro_fn, context)
    try:
        return anyio.from_thread.run_sync(_start_here, coro_fn, context)
    except RuntimeError:
        pass  # not an anyio worker thread (_start_here itself raises no RuntimeError)
    with contextlib.suppress(RuntimeError):  # not a trio worker thread either
        future: Handoff[Outcome] = worker_thread_run_sync(_start_here, coro_fn, context)
        return future
    return None


def _start_here(coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
    return current_loop().start(coro_fn, context)
