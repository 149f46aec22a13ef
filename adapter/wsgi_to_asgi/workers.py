"""How WsgiToAsgi hands a step of the WSGI app to a worker thread, and waits for it.

Each step (call the app and take its first chunk, iterate the rest, ``close()``) runs in
a worker of ``adapter.sync``'s own pool (:func:`adapter._runtime.threads.run_in_worker`)
as a :class:`~adapter._runtime.calls.ThreadCall`, awaited through the loop's
:class:`~adapter._runtime.handle.LoopHandle`: the same hop ``sync_to_async`` makes.  It
costs less than ``anyio.to_thread.run_sync``, which sets up a cancel scope and a
shielded wait, copies a context and hands over through its own queue per call (the
benchmarks' pages have the figures).

What stays as it was with anyio's worker threads:

- the step runs in the request's one :class:`contextvars.Context` (no copy, and nothing
  is restored into the caller: WsgiToAsgi reads no context back);
- the instance's :class:`anyio.CapacityLimiter` bounds how many steps run at once;
- a step handed to a worker runs, even when its caller is cancelled meanwhile, and the
  caller waits for it to end before the cancellation goes on, as with anyio's (a
  worker can not be interrupted; and an app whose client left while it was being
  handed over still runs, and sees :class:`~adapter.exceptions.ClientDisconnected`);
  a caller cancelled before, or while waiting for the limiter, hands nothing over;
- ``adapter.async_to_sync`` in the app reaches the serving loop: a thread running a
  ``ThreadCall`` names the loop that made it
  (:func:`adapter._runtime.calls.outer_loop_of_this_call`).

What does not: the worker is not an anyio worker thread, so ``anyio.from_thread``
reaches the loop only when given its token (as WsgiToAsgi's own hops back do).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.lowlevel

from adapter._runtime.calls import ThreadCall
from adapter._runtime.handle import LoopHandle
from adapter._runtime.threads import run_limited
from adapter.wsgi_to_asgi.sizing import PoolSizer

__all__ = ["WorkerHop"]

T = TypeVar("T")


class _Step(ThreadCall):
    """A :class:`ThreadCall` that its caller can not abandon once it is handed over."""

    __slots__ = ()

    def abandon(self) -> bool:
        # LoopHandle.wait then waits, shielded, for the step to finish, and only then
        # lets the cancellation through: anyio's to_thread.run_sync without
        # abandon_on_cancel does the same.
        return False


class _MeasuredStep(_Step):
    """A step that notes the CPU time its thread spent on it, for the pool's sizer."""

    __slots__ = ("cpu",)

    def execute(self) -> bool:
        started = time.thread_time()
        ran = super().execute()
        self.cpu = time.thread_time() - started
        return ran


class WorkerHop:
    """Runs steps of one loop's requests in pool workers, at most ``limiter``'s at once.

    :param loop: the loop the steps are awaited on.
    :param limiter: bounds how many steps run at once.
    :param sizer: moves the limiter's limit with the app's use of the CPU, if given.
    """

    __slots__ = ("limiter", "loop", "sizer")

    def __init__(
        self, loop: LoopHandle, limiter: anyio.CapacityLimiter, sizer: PoolSizer | None = None
    ) -> None:
        self.loop = loop
        self.limiter = limiter
        self.sizer = sizer

    async def run(self, func: Callable[[], T], context: contextvars.Context) -> T:
        """Run ``func()`` in a worker thread, in ``context``, and return what it returned.

        :param func: the step.
        :param context: the request's context; the step runs in it (not in a copy).
        :raises Exception: what ``func`` raised.
        :raises anyio.get_cancelled_exc_class(): when cancelled; a step already
            handed to a worker is waited for first.
        """
        # As anyio's to_thread.run_sync: a caller cancelled already hands nothing over.
        await anyio.lowlevel.checkpoint_if_cancelled()
        sizer = self.sizer
        if sizer is None:
            call = _Step(self.loop, context, func, (), {})
        else:
            sizer.look()
            if sizer.must_watch():
                self.loop.spawn_soon(sizer.watch)
            call = measured = _MeasuredStep(self.loop, context, func, (), {})
            measured.cpu = 0.0
        # The caller may be handling an exception (close() in a finally): unlike
        # sync_to_async, a WSGI step does not run inside that except block.
        call.handling = None
        await run_limited(self.loop, call, self.limiter)
        if sizer is not None:
            sizer.record(measured.cpu)
        value: T = call.outcome()
        return value
