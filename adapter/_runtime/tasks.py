"""Starting asyncio tasks for the bridges, at the least cost the Python version allows.

Both bridges start a task per call: ``AsgiToWsgi`` one per request, ``async_to_sync`` one
per call on the outer loop.  For a small call the loop passes a task start costs are a
large share of the whole (``benchmarks/bench_sync.py``, "async_to_sync on the outer
loop", Python 3.11 pinned to one CPU: about 32 us per call with a callback that makes the
task, about 24 us with the task made in the calling thread and no done callback).  So:

- :func:`spawn` (on the loop's own thread) runs the task's first step at once on Python
  3.12+ (eager start), not one loop pass later;
- :func:`spawn_threadsafe` (from any other thread) makes the task in the calling thread
  on Python 3.10 and 3.11, which have no eager start, so that its first step runs in the
  loop's very next pass; a callback that made it there would run that pass, and the task
  only the one after.  Elsewhere it schedules :func:`spawn`.

Making a task outside the loop's thread is safe only where ``loop.call_soon`` does
nothing but append to the loop's ready queue (what ``call_soon_threadsafe`` does too,
before it wakes the loop): asyncio's own selector and proactor loops out of debug mode,
on 3.10 and 3.11, whose code no longer changes.  Any other loop (uvloop's among them)
gets the callback.

A task started here stays referenced until it ends (asyncio keeps only weak references
to tasks): on 3.10 and 3.11 it references itself, without a done callback, which would
cost a loop pass after the task; on 3.12+ only a task that did not finish in its eager
first step needs one.  Its coroutine function always starts: on 3.10 and 3.11 a task
cancelled before its first step runs ``async_fn``, which gets the cancellation at its
first ``await``, so that it can still answer whoever waits for it (a sync thread, a WSGI
request); plain asyncio would drop the coroutine unstarted, and the waiter would wait
forever.  (An eager task has no time before its first step.)
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ["spawn", "spawn_threadsafe"]

AsyncFunction = Callable[..., Coroutine[Any, Any, object]]

# asyncio's own loops, the only ones whose call_soon is known to be a bare append.
_PLAIN_LOOPS: tuple[type[asyncio.AbstractEventLoop], ...] = tuple(
    loop_class
    for loop_class in (asyncio.SelectorEventLoop, getattr(asyncio, "ProactorEventLoop", None))
    if loop_class is not None
)
_MADE_IN_THE_CALLER = sys.version_info < (3, 12)

# The tasks started here that have not ended.
_running: set[asyncio.Task[None]] = set()


def spawn(
    loop: asyncio.AbstractEventLoop,
    async_fn: AsyncFunction,
    *args: Any,
    context: contextvars.Context | None = None,
) -> None:
    """Run ``async_fn(*args)`` as a task on ``loop``; on ``loop``'s own thread.

    :param loop: the running loop of the calling thread.
    :param async_fn: the coroutine function; what it raises stays in its task.
    :param args: its positional arguments.
    :param context: the context the task runs in a copy of (default: the caller's).
    """
    if context is None:
        _make_task(loop, async_fn, args)
    else:
        context.run(_make_task, loop, async_fn, args)


def spawn_threadsafe(
    loop: asyncio.AbstractEventLoop,
    async_fn: AsyncFunction,
    *args: Any,
    context: contextvars.Context | None = None,
) -> None:
    """Run ``async_fn(*args)`` as a task on ``loop``; from a thread other than ``loop``'s.

    :param loop: a running loop of another thread.
    :param async_fn: the coroutine function; what it raises stays in its task.
    :param args: its positional arguments.
    :param context: the context the task runs in, or in a copy of (default: a copy of
        the caller's); not to be entered elsewhere once given.
    :raises RuntimeError: if ``loop`` is closed.
    """
    if context is None:
        context = contextvars.copy_context()
    if _MADE_IN_THE_CALLER and type(loop) in _PLAIN_LOOPS and not loop.get_debug():
        if sys.version_info >= (3, 11):
            asyncio.Task(_started(async_fn, args), loop=loop, context=context)
        else:  # no context= before 3.11: the task copies the one it is made in
            context.run(asyncio.Task, _started(async_fn, args), loop=loop)
        # What call_soon_threadsafe does after its append: wake the loop, here to run
        # the task's first step (the method is there on every loop of _PLAIN_LOOPS).
        loop._write_to_self()  # type: ignore[attr-defined]
    else:
        # The callback runs in `context` (call_soon_threadsafe's own argument), and the
        # task spawn makes there copies it.
        loop.call_soon_threadsafe(spawn, loop, async_fn, *args, context=context)


def _make_task(
    loop: asyncio.AbstractEventLoop, async_fn: AsyncFunction, args: tuple[Any, ...]
) -> None:
    if sys.version_info >= (3, 12):
        task = asyncio.Task(async_fn(*args), loop=loop, eager_start=True)
        if not task.done():  # it awaits something: keep it until it ends
            _running.add(task)
            task.add_done_callback(_running.discard)
    else:
        loop.create_task(_started(async_fn, args))


@types.coroutine
def _first_step() -> Generator[None, None, None]:
    # The thread that makes the task runs the coroutine to this yield (no code of the
    # caller's runs there); the task's first step, on the loop, resumes it from here, or
    # throws in the cancellation that came before it.
    yield


async def _run(async_fn: AsyncFunction, args: tuple[Any, ...]) -> None:
    try:
        await _first_step()
    except asyncio.CancelledError:
        cancelled_before_it_started = True
    else:
        cancelled_before_it_started = False
    task = asyncio.current_task()
    assert task is not None
    if cancelled_before_it_started:
        task.cancel()  # async_fn still starts, and meets the cancellation at its first await
    _running.add(task)
    try:
        await async_fn(*args)
    finally:
        _running.discard(task)


def _started(async_fn: AsyncFunction, args: tuple[Any, ...]) -> Coroutine[Any, Any, None]:
    coro = _run(async_fn, args)
    coro.send(None)  # to _first_step's yield
    return coro


def _forget_tasks_after_fork() -> None:
    # A child of fork() runs none of the parent's loops, so none of their tasks.
    global _running
    _running = set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_tasks_after_fork)
