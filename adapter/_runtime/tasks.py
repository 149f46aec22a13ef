"""Starting asyncio tasks for the bridges, through asyncio's public API only.

Both bridges start a task per call: ``AsgiToWsgi`` one per request, ``async_to_sync`` one
per call on the outer loop.

- :func:`spawn` (on the loop's own thread) makes the task; on Python 3.12+ its first
  step runs at once (``eager_start``), elsewhere at the loop's next pass.
- :func:`spawn_threadsafe` (from any other thread) schedules :func:`spawn` with
  ``call_soon_threadsafe``.

A task started here stays referenced until it ends (asyncio keeps only weak references
to tasks): it puts itself in a set when it starts and takes itself out when it ends, so
no done callback costs a loop pass after it.  Before its first step the loop's ready
queue holds it.

A task cancelled before its first step never runs its coroutine (asyncio throws the
cancellation into the unstarted coroutine).  Whoever waits for such a task's answer
passes ``if_unstarted``, called then instead, so that nobody waits forever.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["spawn", "spawn_threadsafe"]

AsyncFunction = Callable[..., Coroutine[Any, Any, object]]

# The tasks started here that have started and not ended.
_running: set[asyncio.Task[Any]] = set()


def spawn(
    loop: asyncio.AbstractEventLoop,
    async_fn: AsyncFunction,
    *args: Any,
    context: contextvars.Context | None = None,
    if_unstarted: Callable[[], object] | None = None,
) -> None:
    """Run ``async_fn(*args)`` as a task on ``loop``; on ``loop``'s own thread.

    :param loop: the running loop of the calling thread.
    :param async_fn: the coroutine function; what it raises stays in its task.
    :param args: its positional arguments.
    :param context: the context the task runs in a copy of (default: the caller's).
    :param if_unstarted: called if the task is cancelled before its coroutine starts.
    """
    if context is None:
        _make_task(loop, async_fn, args, if_unstarted)
    else:
        context.run(_make_task, loop, async_fn, args, if_unstarted)


def spawn_threadsafe(
    loop: asyncio.AbstractEventLoop,
    async_fn: AsyncFunction,
    *args: Any,
    context: contextvars.Context | None = None,
    if_unstarted: Callable[[], object] | None = None,
) -> None:
    """Run ``async_fn(*args)`` as a task on ``loop``; from a thread other than ``loop``'s.

    :param loop: a running loop of another thread.
    :param async_fn: the coroutine function; what it raises stays in its task.
    :param args: its positional arguments.
    :param context: the context the task runs in a copy of (default: a copy of the
        caller's).
    :param if_unstarted: called if the task is cancelled before its coroutine starts.
    :raises RuntimeError: if ``loop`` is closed.
    """
    if context is None:
        context = contextvars.copy_context()
    # The callback runs in `context` (call_soon_threadsafe's own argument), and the task
    # made there copies it.
    loop.call_soon_threadsafe(_make_task, loop, async_fn, args, if_unstarted, context=context)


def _make_task(
    loop: asyncio.AbstractEventLoop,
    async_fn: AsyncFunction,
    args: tuple[Any, ...],
    if_unstarted: Callable[[], object] | None,
) -> None:
    began = [False]
    coro = _kept(async_fn, args, began)
    if sys.version_info >= (3, 12):
        task = asyncio.Task(coro, loop=loop, eager_start=True)
    else:
        task = loop.create_task(coro)
    if if_unstarted is not None and not began[0]:

        def answer_if_unstarted(task: asyncio.Task[None]) -> None:
            if not began[0]:
                if_unstarted()

        task.add_done_callback(answer_if_unstarted)


async def _kept(async_fn: AsyncFunction, args: tuple[Any, ...], began: list[bool]) -> None:
    began[0] = True
    task = asyncio.current_task()
    assert task is not None
    _running.add(task)
    try:
        await async_fn(*args)
    finally:
        _running.discard(task)


def _forget_tasks_after_fork() -> None:
    # A child of fork() runs none of the parent's loops, so none of their tasks.
    _running.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_tasks_after_fork)
