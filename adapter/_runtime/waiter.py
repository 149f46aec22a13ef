"""What an asyncio task awaits while a sync call runs in another thread.

When the thread is done it schedules a callback on the loop (``call_soon_threadsafe``),
and that callback wakes the task.  With a plain :class:`asyncio.Future` the wake-up costs
a second pass of the loop: ``set_result`` only schedules the task's wake-up, for the
next pass.  :class:`DirectWaiter` is a future whose :meth:`~DirectWaiter.set` resumes the
waiting task at once, inside that callback: one pass of the loop per call, not two.
That is what an eager task does for its first step (Python 3.12+), done here for the
step after a thread hand-off.

It is an :class:`asyncio.Future` (anyio, for one, tells a done future from a pending
one by that type when it delivers a cancellation) that keeps its done callbacks itself:
only :meth:`~DirectWaiter.set` calls them directly, and only from a plain callback of the
loop (no task is running then, as asyncio requires to step one).  A cancellation
schedules them as a future does, one pass later, so that ``Task.cancel()`` never runs
the task it cancels from within.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

__all__ = ["DirectWaiter"]

Callback = Callable[[Any], object]


class DirectWaiter(asyncio.Future[None]):
    """A result-less future of ``loop`` that :meth:`set` completes directly.

    :param loop: the loop of the task that awaits it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._waiting: list[tuple[Callback, contextvars.Context | None]] = []

    def add_done_callback(
        self, callback: Callback, *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``callback(self)`` when done (at the loop's next pass if done already)."""
        if self.done():
            self.get_loop().call_soon(callback, self, context=context)
        else:
            self._waiting.append((callback, context))

    def remove_done_callback(self, callback: Callback) -> int:
        """Forget ``callback``; how many times it was registered."""
        kept = [(known, context) for known, context in self._waiting if known != callback]
        removed = len(self._waiting) - len(kept)
        self._waiting = kept
        return removed

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel it unless done; the waiting task is woken at the loop's next pass."""
        if not super().cancel(msg):
            return False
        waiting, self._waiting = self._waiting, []
        for callback, context in waiting:
            self.get_loop().call_soon(callback, self, context=context)
        return True

    def set(self) -> None:
        """Mark it done and run the waiting task's wake-up now, in this call.

        Call it from a plain callback of the loop (``call_soon_threadsafe``), never from
        a task: the wake-up runs the task's next step here.
        """
        if self.done():
            return
        self.set_result(None)
        waiting, self._waiting = self._waiting, []
        for callback, context in waiting:
            if context is None:
                callback(self)
            else:
                context.run(callback, self)
