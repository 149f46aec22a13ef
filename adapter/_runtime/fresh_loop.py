"""A fresh event loop per ``async_to_sync`` call made from a plain thread.

With no outer loop to go back to, ``async_to_sync`` runs the coroutine in a new loop on
a pool worker, as asgiref does with ``asyncio.run``, and promises what ``asyncio.run``
promises: by the time the caller goes on, the tasks the coroutine left behind have been
cancelled (and awaited), async generators finalised, the loop's default executor shut
down and the loop closed.

On asyncio we keep those promises in one pass of the loop instead of ``asyncio.run``'s
three (the coroutine, then ``shutdown_asyncgens``, then ``shutdown_default_executor``,
each a ``run_until_complete`` of its own): a loop pass is a large share of such a
call (``benchmarks/bench_sync.py``, "from a plain thread").
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import anyio

from adapter._runtime.calls import CoroutineFunction, Outcome, capture
from adapter._runtime.handoff import Handoff
from adapter._runtime.threads import run_in_worker

__all__ = ["run_in_fresh_loop"]


def run_in_fresh_loop(
    backend: str, coro_fn: CoroutineFunction, context: contextvars.Context
) -> Handoff[Outcome]:
    """Run ``coro_fn()`` in a new ``backend`` loop on a pool thread, in ``context``.

    The future is resolved once the loop has closed, so that leftover tasks have been
    cancelled and async generators finalised by the time the caller goes on (as
    ``asyncio.run`` promises).
    """
    future: Handoff[Outcome] = Handoff()
    ended: list[Outcome | BaseException] = []

    def host() -> None:
        try:
            ended.append(context.run(_run_loop, backend, coro_fn))
        except BaseException as exc:
            ended.append(exc)

    def answer() -> None:
        # Run by the worker once it counts as free again, so the caller's next call
        # finds a free worker rather than starting a thread.
        if isinstance(ended[0], BaseException):
            future.set_exception(ended[0])
        else:
            future.set_result(ended[0])

    run_in_worker(host, answer)
    return future


def _run_loop(backend: str, coro_fn: CoroutineFunction) -> Outcome:
    if backend == "asyncio":
        return _run_asyncio(coro_fn)
    if backend == "trio":
        import trio

        return trio.run(capture, coro_fn)
    return anyio.run(capture, coro_fn, backend=backend)


def _run_asyncio(coro_fn: CoroutineFunction) -> Outcome:
    """``asyncio.run(capture(coro_fn))``, its clean-up done in the same loop pass."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)  # as asyncio.run does, for get_event_loop() callers
        return loop.run_until_complete(_capture_then_tidy(coro_fn))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _capture_then_tidy(coro_fn: CoroutineFunction) -> Outcome:
    outcome = await capture(coro_fn)
    loop = asyncio.get_running_loop()
    this = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks(loop) if task is not this]
    for task in leftovers:
        task.cancel()
    results: list[Any] = await asyncio.gather(*leftovers, return_exceptions=True)
    for task, result in zip(leftovers, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            # What asyncio.run does with a leftover task that failed as it was cancelled.
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": result,
                    "task": task,
                }
            )
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()
    return outcome
