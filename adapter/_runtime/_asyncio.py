"""Everything asyncio-specific in adapter, in one place (uvloop is an asyncio loop).

- :class:`AsyncioLoop` is the :class:`~adapter._runtime.handle.LoopHandle` of an asyncio
  loop;
- :func:`running_loop` names the asyncio loop of this thread, if any;
- :func:`spawn` and :func:`spawn_threadsafe` start ``async_to_sync``'s tasks (one per
  call on the outer loop), and :meth:`AsyncioLoop.spawn_soon` ``AsgiToWsgi``'s (one per
  request, through the shared loop's :class:`_Starter` once it is prepared).

Only asyncio's public API is used.  A task is made on the loop's thread (on Python 3.12+
with ``eager_start``, so its first step runs at once); from another thread it is made in
a ``call_soon_threadsafe`` callback, or by the :class:`_Starter`'s reader.  A task
started here stays referenced until it ends (asyncio keeps only weak references to
tasks): it puts itself in a set when it starts and takes itself out when it ends, so no
done callback costs a loop pass after it; before its first step the loop's ready queue
holds it.  A task cancelled before its first
step never runs its coroutine (asyncio throws the cancellation into the unstarted
coroutine): whoever waits for its answer passes ``if_unstarted``, called then instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import socket
import sys
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

import anyio

from adapter._runtime.calls import Beneath, CoroutineFunction, Outcome, ThreadCall
from adapter._runtime.fork import forget_in_child
from adapter._runtime.handle import LoopHandle, Waiter, settle
from adapter._runtime.handoff import Handoff

__all__ = ["AsyncioLoop", "running_loop", "spawn", "spawn_threadsafe"]

AsyncFunction = Callable[..., Coroutine[Any, Any, object]]

logger = logging.getLogger("adapter")

# The tasks started here that have started and not ended.
_running: set[asyncio.Task[Any]] = set()

_default_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter]
_default_limiters = weakref.WeakKeyDictionary()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in this thread, or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class AsyncioLoop(LoopHandle):
    """A running asyncio (or uvloop) loop.

    :param loop: the loop.
    """

    __slots__ = ("_starter", "loop")
    backend = "asyncio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._starter: _Starter | None = None

    def prepare_spawning(self) -> Callable[[], None]:
        try:
            starter = _Starter(self.loop)
        except NotImplementedError:
            # A loop with no add_reader (Windows' proactor loop): call_soon_threadsafe.
            return super().prepare_spawning()
        self._starter = starter
        return starter.close

    def identity(self) -> object:
        return self.loop

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon_threadsafe(callback, *args)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon(callback, *args)  # no self-pipe write from the loop's thread

    def time(self) -> float:
        return self.loop.time()

    def new_waiter(self) -> Waiter:
        return asyncio.Event()

    def default_limiter(self) -> anyio.CapacityLimiter:
        # anyio looks its limiter up through sniffio and a RunVar on every call, which
        # costs more than a tenth of a whole call here; it is one object per loop.
        limiter = _default_limiters.get(self.loop)
        if limiter is None:
            limiter = _default_limiters[self.loop] = super().default_limiter()
        return limiter

    def spawn_soon(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        # One task per AsgiToWsgi request: the lean path of spawn_threadsafe (no
        # if_unstarted, the error logging in the one wrapper coroutine).
        context = contextvars.copy_context()
        if self._starter is not None:
            self._starter.start_soon(async_fn, args, context)
        else:
            self.loop.call_soon_threadsafe(_make_logged_task, self.loop, async_fn, args, context)

    def submit(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        return self._settled_by_a_task(spawn_threadsafe, coro_fn, context)

    async def run_beneath(self, call: ThreadCall, coro_fn: CoroutineFunction) -> Any:
        task = asyncio.current_task()
        assert task is not None
        # A native cancellation, as asgiref's: edge-triggered, so a coroutine that
        # shields its work (asyncio.shield) and catches it can await that work and
        # return normally.
        beneath = Beneath(call, task.cancel)
        try:
            return await coro_fn()
        except asyncio.CancelledError:
            beneath.cancelled = True
            raise
        finally:
            beneath.end()

    def start(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        return self._settled_by_a_task(spawn, coro_fn, context)

    def _settled_by_a_task(
        self,
        spawner: Callable[..., None],
        coro_fn: CoroutineFunction,
        context: contextvars.Context,
    ) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        spawner(
            self.loop,
            settle,
            coro_fn,
            future,
            context=context,
            if_unstarted=partial(_cancelled_unstarted, future, context),
        )
        return future


def _cancelled_unstarted(future: Handoff[Outcome], context: contextvars.Context) -> None:
    # The task was cancelled before its coroutine ran (its loop is shutting down): the
    # sync caller gets the cancellation instead of waiting forever.
    future.set_result(Outcome(None, asyncio.CancelledError(), context))


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
    task = _new_task(loop, _kept(async_fn, args, began))
    if if_unstarted is not None and not began[0]:

        def answer_if_unstarted(task: asyncio.Task[None]) -> None:
            if not began[0]:
                if_unstarted()

        task.add_done_callback(answer_if_unstarted)


class _Starter:
    """Starts tasks on a loop for other threads, woken through a socket pair of its own.

    ``call_soon_threadsafe`` makes a Handle per call and wakes the loop through
    asyncio's self-pipe, whose reader reads until a ``recv`` fails with EAGAIN (an
    exception per wake-up).  Here a start is queued and one byte sent; the loop's reader
    (one Handle, made once) takes one ``recv`` and starts every queued task.  Made and
    closed on the loop's thread (:meth:`AsyncioLoop.prepare_spawning`).

    :param loop: the running loop of this thread.
    :raises NotImplementedError: if ``loop`` has no ``add_reader`` (Windows' proactor).
    """

    __slots__ = ("_ear", "_loop", "_mouth", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: collections.deque[
            tuple[Callable[..., Awaitable[object]], tuple[Any, ...], contextvars.Context]
        ] = collections.deque()
        self._ear, self._mouth = socket.socketpair()
        self._ear.setblocking(False)
        self._mouth.setblocking(False)
        try:
            loop.add_reader(self._ear.fileno(), self._start_pending)
        except NotImplementedError:
            self._ear.close()
            self._mouth.close()
            raise

    def start_soon(
        self,
        async_fn: Callable[..., Awaitable[object]],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        """Start ``async_fn(*args)`` in a task, in ``context``, soon; from any thread.

        :raises RuntimeError: if the starter is closed (its loop has stopped).
        """
        self._pending.append((async_fn, args, context))
        try:
            self._mouth.send(b"\0")
        except BlockingIOError:
            pass  # the buffer is full: the loop has a wake-up pending already
        except OSError as exc:
            raise RuntimeError("the event loop is closed") from exc

    def _start_pending(self) -> None:
        # Level-triggered: what one recv leaves in the buffer wakes the loop again.
        with contextlib.suppress(BlockingIOError):
            self._ear.recv(_WAKE_UPS)
        pending, loop = self._pending, self._loop
        while pending:
            async_fn, args, context = pending.popleft()
            _make_logged_task(loop, async_fn, args, context)

    def close(self) -> None:
        """Stop reading and close the socket pair; on the loop's thread, once."""
        self._loop.remove_reader(self._ear.fileno())
        self._ear.close()
        self._mouth.close()

    def __del__(self) -> None:
        # Only in a forked child (the parent's loop is not there to close it) or after
        # close(): the sockets, closed twice at worst, never warn as unclosed.
        self._ear.close()
        self._mouth.close()


_WAKE_UPS = 4096


def _make_logged_task(
    loop: asyncio.AbstractEventLoop,
    async_fn: Callable[..., Awaitable[object]],
    args: tuple[Any, ...],
    context: contextvars.Context,
) -> None:
    # The task copies the context it is made in (create_task takes no context on 3.10).
    context.run(_new_task, loop, _kept_logged(async_fn, args))


def _new_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """A task for ``coro`` on ``loop``, on its thread; started at once on Python 3.12+."""
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)


async def _kept_logged(async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> None:
    task = asyncio.current_task()
    assert task is not None
    _running.add(task)
    try:
        await async_fn(*args)
    except Exception:
        logger.exception("a task on the adapter event loop failed")
    finally:
        _running.discard(task)


async def _kept(async_fn: AsyncFunction, args: tuple[Any, ...], began: list[bool]) -> None:
    began[0] = True
    task = asyncio.current_task()
    assert task is not None
    _running.add(task)
    try:
        await async_fn(*args)
    finally:
        _running.discard(task)


@forget_in_child
def _forget_after_fork() -> None:
    """In a forked child: the parent's loops, and so their tasks, do not run here."""
    global _default_limiters
    _running.clear()
    _default_limiters = weakref.WeakKeyDictionary()
