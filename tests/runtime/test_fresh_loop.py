"""async_to_sync from a plain thread: a fresh asyncio loop keeps asyncio.run's promises.

adapter._runtime.fresh_loop does asyncio.run's clean-up in one loop pass rather than three; each
promise of asyncio.run is checked here, with the coroutine's own outcome beside it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapter import async_to_sync


def test_the_value_comes_back_and_the_loop_is_closed_and_unset_after() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def work() -> str:
        loop = asyncio.get_running_loop()
        seen.append(loop)
        # As asyncio.run: the loop is also the thread's current event loop meanwhile.
        assert asyncio.get_event_loop_policy().get_event_loop() is loop
        return "done"

    assert async_to_sync(work)() == "done"
    assert seen[0].is_closed()


def test_the_error_comes_back_with_its_traceback() -> None:
    async def fail() -> None:
        raise LookupError("from the coroutine")

    with pytest.raises(LookupError, match="from the coroutine") as caught:
        async_to_sync(fail)()
    assert caught.traceback[-1].name == "fail"


def test_leftover_tasks_are_cancelled_and_awaited_before_the_caller_goes_on() -> None:
    finished_cleanup = threading.Event()

    async def leave_a_task_behind() -> None:
        async def linger() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(0)  # its clean-up awaits too, and is awaited
                finished_cleanup.set()

        asyncio.get_running_loop().create_task(linger())
        await asyncio.sleep(0)

    async_to_sync(leave_a_task_behind)()
    assert finished_cleanup.is_set()


def test_a_leftover_task_failing_as_it_is_cancelled_goes_to_the_exception_handler() -> None:
    reported: list[dict[str, Any]] = []

    async def leave_a_failing_task() -> str:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))

        async def fail_on_cancel() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise ValueError("failed while cancelled") from None

        left = loop.create_task(fail_on_cancel())
        await asyncio.sleep(0)
        assert not left.done()
        return "main result"

    assert async_to_sync(leave_a_failing_task)() == "main result"
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], ValueError)
    assert "shutdown" in reported[0]["message"]


def test_async_generators_are_finalised_before_the_caller_goes_on() -> None:
    finalised = threading.Event()

    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)  # an async finaliser: needs the loop to run it
            finalised.set()

    held: list[AsyncIterator[int]] = []

    async def take_one_and_keep_the_generator() -> int:
        generator = numbers()
        held.append(generator)  # kept alive, so only shutdown_asyncgens can close it
        return await generator.__anext__()

    assert async_to_sync(take_one_and_keep_the_generator)() == 1
    assert finalised.is_set()


def test_the_default_executor_has_finished_before_the_caller_goes_on() -> None:
    # loop.close() alone only asks the executor to stop; asyncio.run waits for its threads.
    threads: list[threading.Thread] = []

    def in_the_executor() -> int:
        threads.append(threading.current_thread())
        return 42

    async def use_the_default_executor() -> int:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        return await loop.run_in_executor(None, in_the_executor)

    assert async_to_sync(use_the_default_executor)() == 42
    assert not threads[0].is_alive()
