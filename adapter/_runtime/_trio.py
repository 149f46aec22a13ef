"""Everything trio-specific in adapter, in one place.

:class:`TrioLoop` is the :class:`~adapter._runtime.handle.LoopHandle` of a trio run, and
:func:`running_token` names the trio run of this thread, if any.  trio is imported only
when it is already loaded (a trio run is going on somewhere), so asyncio users never pay
for it.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from adapter._runtime.calls import Beneath, CoroutineFunction, Outcome, ThreadCall
from adapter._runtime.handle import LoopHandle, Waiter, guarded, run_logged, settle
from adapter._runtime.handoff import Handoff

if TYPE_CHECKING:
    import trio

__all__ = ["TrioLoop", "running_token", "worker_thread_run_sync"]


def running_token() -> trio.lowlevel.TrioToken | None:
    """The token of the trio run in this thread, or None (also when trio is not loaded)."""
    trio_module = sys.modules.get("trio")
    if trio_module is None or not trio_module.lowlevel.in_trio_run():
        return None
    token: trio.lowlevel.TrioToken = trio_module.lowlevel.current_trio_token()
    return token


def worker_thread_run_sync(func: Callable[..., Any], *args: Any) -> Any:
    """From a trio worker thread, run ``func(*args)`` on its trio run and return the result.

    :raises RuntimeError: when this is not a trio worker thread (or trio is not loaded).
    """
    trio_module = sys.modules.get("trio")
    if trio_module is None:
        raise RuntimeError("trio is not running")
    return trio_module.from_thread.run_sync(func, *args)


class TrioLoop(LoopHandle):
    """A trio run, reached through its token.

    :param token: the run's :class:`trio.lowlevel.TrioToken`.
    """

    __slots__ = ("token",)
    backend = "trio"

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token

    def identity(self) -> object:
        return self.token

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        # trio turns an exception escaping a run_sync_soon callback into
        # TrioInternalError, which would end the run of every request: log it instead.
        self.token.run_sync_soon(run_logged, callback, args)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        self.token.run_sync_soon(run_logged, callback, args)

    def time(self) -> float:
        import trio

        return trio.current_time()

    def new_waiter(self) -> Waiter:
        import trio

        return trio.Event()

    def spawn_soon(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        self.token.run_sync_soon(_spawn_system_task, guarded, (async_fn, args), None)

    def submit(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        self.token.run_sync_soon(_spawn_system_task, settle, (coro_fn, future), context)
        return future

    def start(self, coro_fn: CoroutineFunction, context: contextvars.Context) -> Handoff[Outcome]:
        future: Handoff[Outcome] = Handoff()
        _spawn_system_task(settle, (coro_fn, future), context)
        return future

    async def run_beneath(self, call: ThreadCall, coro_fn: CoroutineFunction) -> Any:
        import trio

        caught: BaseException | None = None
        with trio.CancelScope() as scope:
            beneath = Beneath(call, scope.cancel)
            try:
                return await coro_fn()
            except trio.Cancelled as exc:
                beneath.cancelled = True
                caught = exc
                raise
            finally:
                beneath.end()
        # Only our own cancellation stops here (the scope took it): the sync caller in
        # async_to_sync must still see that the coroutine was cancelled.
        assert caught is not None
        raise caught


def _spawn_system_task(
    async_fn: Callable[..., Awaitable[object]],
    args: tuple[Any, ...],
    context: contextvars.Context | None,
) -> None:
    import trio

    # A system task belongs to no nursery of the app, like a task asyncio's
    # call_soon_threadsafe starts; `settle` and `guarded` keep any error from crashing
    # the run.
    trio.lowlevel.spawn_system_task(async_fn, *args, context=context)
