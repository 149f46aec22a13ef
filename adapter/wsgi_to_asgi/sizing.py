"""How many calls of a WSGI app run at once: many for an app that waits, few for one that
computes.

A WSGI app that waits (on a database, another service) serves more requests the more
threads run it: while one waits, another works.  An app that computes gains nothing from
more threads than the interpreter can run at once, and loses: its threads take turns at
the GIL, each switch costs, and the event loop's thread waits in the same line to send
the responses.  Measured on a Flask page that renders a template over 50 SQLite rows:
about a fifth fewer requests per second with 40 threads than with 2, and a third more
CPU time per request with 2 than with 1 (904-932 requests per CPU second against
1,191-1,211, behind uvicorn).  A call that lets go of the GIL often (each SQLite step
does) hands it to the other thread every time, and waits to get it back; a loop of
pure Python computing as long showed no such cost.  So the fewest is one thread.

Yet an app whose calls are short (a hello world: tens of microseconds of Python) gains
from more threads even when the process is busy: each thread is done long before the
GIL would be taken from it, and with more calls under way the event loop hands out and
collects more of them per turn (measured on a bare WSGI hello world behind uvicorn:
about 7,500 requests a second with 2 threads, 13,300 with 40).  What harms is threads
that each hold the GIL for long.

So :class:`PoolSizer` moves the limit between ``least`` and ``most`` by what the process
does with the CPU and how long each call computes, looked at every :data:`INTERVAL`
seconds while requests come:

- the process used the CPU for at least :data:`SATURATED` of the time (one core's worth
  of Python, the most the GIL lets it use) and its calls computed for
  :data:`LONG_CALL` or more each: more threads would only take turns at the GIL, so the
  limit halves, down to ``least``;
- otherwise, while requests wait for a thread, the limit doubles, up to ``most``: the
  threads it has are waiting, or done quickly.

Each new step looks (cheaply, at most once an interval); and while requests wait for a
thread, :meth:`PoolSizer.watch` looks every interval on its own, so that a limit held by
calls that last (an event stream is one step for its whole life) grows although no
step starts.

The process's CPU time (:func:`time.process_time`) says whether the GIL is the limit: a
thread's own CPU time could not tell waiting for the GIL from waiting for a database.
A call's CPU time (:func:`time.thread_time` around it, in its worker) says how long it
holds the GIL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

__all__ = ["INTERVAL", "LONG_CALL", "SATURATED", "PoolSizer"]

INTERVAL = 0.25
"""Seconds between two looks at the process's CPU use."""

SATURATED = 0.9
"""CPU seconds per second at which the process counts as busy computing."""

LONG_CALL = 0.0005
"""CPU seconds of one call at which more such calls at once only take turns at the GIL
(a tenth of CPython's default switch interval)."""


class PoolSizer:
    """Moves ``limiter``'s limit between ``least`` and ``most``; on the loop's thread.

    :param limiter: the limiter bounding the app's calls; its limit starts at ``least``.
    :param least: the fewest calls allowed at once.
    :param most: the most calls allowed at once.
    :param cpu_clock: the process's CPU time (a parameter for tests).
    :param wall_clock: a monotonic clock (a parameter for tests).
    """

    __slots__ = (
        "_calls",
        "_calls_cpu",
        "_cpu_clock",
        "_last_cpu",
        "_last_wall",
        "_wall_clock",
        "least",
        "limiter",
        "most",
        "watching",
    )

    def __init__(
        self,
        limiter: anyio.CapacityLimiter,
        least: int,
        most: int,
        *,
        cpu_clock: Callable[[], float] = time.process_time,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.least = least
        self.most = most
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._last_wall = wall_clock()
        self._last_cpu = cpu_clock()
        self._calls = 0
        self._calls_cpu = 0.0
        self.watching = False
        limiter.total_tokens = least

    def record(self, cpu: float) -> None:
        """Note one call's CPU time (seconds its thread computed for it)."""
        self._calls += 1
        self._calls_cpu += cpu

    def look(self) -> None:
        """Resize the limit if :data:`INTERVAL` has passed since the last look.

        Cheap when it has not (one clock read): call it as often as requests come.
        """
        wall = self._wall_clock()
        elapsed = wall - self._last_wall
        if elapsed < INTERVAL:
            return
        cpu = self._cpu_clock()
        busy = (cpu - self._last_cpu) / elapsed
        long_calls = self._calls > 0 and self._calls_cpu / self._calls >= LONG_CALL
        self._last_wall, self._last_cpu = wall, cpu
        self._calls, self._calls_cpu = 0, 0.0
        limit = int(self.limiter.total_tokens)
        if busy >= SATURATED and long_calls:
            self.limiter.total_tokens = max(self.least, limit // 2)
        elif limit < self.most and self.limiter.statistics().tasks_waiting:
            self.limiter.total_tokens = min(self.most, limit * 2)

    def must_watch(self) -> bool:
        """Whether a step that found no free thread must start :meth:`watch` now.

        True once until that watch ends (it then runs on the loop's thread).
        """
        if self.watching or self.limiter.available_tokens >= 1:
            return False
        self.watching = True
        return True

    async def watch(self) -> None:
        """Look every :data:`INTERVAL` while steps wait for a thread; on the loop's thread.

        A step that waits starts nothing that would look, so without this the limit
        would stay where calls that last (event streams, long polls) hold it until some
        other request came.
        """
        try:
            while True:
                await anyio.sleep(INTERVAL)
                if not self.limiter.statistics().tasks_waiting:
                    return
                self.look()
        finally:
            self.watching = False
