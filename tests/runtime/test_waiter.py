"""adapter._runtime.waiter: the future a task awaits while its sync call runs in a thread.

asyncio only (trio's side wakes through its own token), so each test drives a loop
with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import pytest

from adapter._runtime.waiter import DirectWaiter


def test_set_from_a_callback_resumes_the_task_within_that_callback() -> None:
    steps: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiter = DirectWaiter(loop)

        async def wait() -> None:
            await waiter
            steps.append("resumed")

        def finish() -> None:
            waiter.set()
            steps.append("after set")

        task = asyncio.create_task(wait())
        await asyncio.sleep(0)  # the task waits now
        loop.call_soon(finish)
        await task

    asyncio.run(main())
    # A plain future's set_result would let the task resume only a loop pass later.
    assert steps == ["resumed", "after set"]


def test_a_cancelled_task_gets_one_cancellation_a_pass_later() -> None:
    async def main() -> tuple[bool, bool, bool]:
        waiter = DirectWaiter(asyncio.get_running_loop())
        task = asyncio.create_task(waiter_awaited(waiter))
        await asyncio.sleep(0)
        task.cancel()
        resumed_at_once = task.done()
        with pytest.raises(asyncio.CancelledError):
            await task
        return resumed_at_once, waiter.cancelled(), isinstance(waiter, asyncio.Future)

    assert asyncio.run(main()) == (False, True, True)


def test_an_anyio_cancel_scope_cancels_a_task_awaiting_it_once() -> None:
    # anyio delivers a scope's cancellation again on every loop pass to a task whose
    # waiter is not an asyncio.Future that is done: a second CancelledError would hit
    # the task's clean-up.  DirectWaiter is such a future.
    cancellations: list[str] = []

    async def main() -> None:
        waiter = DirectWaiter(asyncio.get_running_loop())
        with anyio.CancelScope() as scope:
            asyncio.get_running_loop().call_soon(scope.cancel)
            try:
                await waiter
            except asyncio.CancelledError:
                cancellations.append("first")
                with anyio.CancelScope(shield=True):
                    for _ in range(5):
                        await asyncio.sleep(0)  # loop passes for anyio to deliver again
                raise

    asyncio.run(main())
    assert cancellations == ["first"]


def test_callbacks_added_late_run_a_pass_later_and_can_be_removed() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        seen: list[str] = []
        waiter = DirectWaiter(loop)

        def note(name: str) -> Callable[[object], None]:
            return lambda _: seen.append(name)

        kept, dropped = note("kept"), note("dropped")
        waiter.add_done_callback(kept)
        waiter.add_done_callback(dropped)
        assert waiter.remove_done_callback(dropped) == 1
        waiter.set()
        waiter.add_done_callback(note("late"))
        seen.append("set returned")
        await asyncio.sleep(0)
        waiter.set()  # a second set does nothing
        return seen

    assert asyncio.run(main()) == ["kept", "set returned", "late"]


async def waiter_awaited(waiter: DirectWaiter) -> None:
    await waiter
