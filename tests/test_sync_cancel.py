"""Cancelling a task that awaits ``sync_to_async`` (issue 12, point 7).

As asgiref: the task is cancelled at once, and the sync call runs on in its thread,
which nothing can stop.  Each test blocks the sync function on an event that is set only
after the cancelled ``await`` has returned, so a cancellation that waited for the thread
would find the event unset: the function then gives up after ``GIVE_UP`` seconds and
reports that nobody released it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading

import anyio
import anyio.to_thread
import pytest

from adapter import async_to_sync, sync_to_async
from adapter._runtime.calls import ThreadCall

pytestmark = pytest.mark.anyio

#: Seconds a blocked function waits for its release before it gives up (a failure).
GIVE_UP = 10.0

changed_in_thread: contextvars.ContextVar[str] = contextvars.ContextVar(
    "changed_in_thread", default="unchanged"
)


class Blocked:
    """A sync function that blocks until released, and says whether it was."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.released: list[bool] = []

    def __call__(self) -> str:
        self.started.set()
        changed_in_thread.set("changed")
        self.released.append(self.release.wait(GIVE_UP))
        self.finished.set()
        return "finished"

    async def wait_finished(self) -> None:
        assert await anyio.to_thread.run_sync(self.finished.wait, GIVE_UP)


async def cancel_while_running(
    blocked: Blocked, thread_sensitive: bool, release: bool = True
) -> None:
    """Await ``blocked`` in a scope cancelled once it runs; release it only afterwards."""
    with anyio.CancelScope() as scope:
        waiting = sync_to_async(blocked, thread_sensitive=thread_sensitive)()
        async with anyio.create_task_group() as tasks:

            async def cancel_once_started() -> None:
                await anyio.to_thread.run_sync(blocked.started.wait, GIVE_UP)
                scope.cancel()

            tasks.start_soon(cancel_once_started)
            await waiting
    assert scope.cancelled_caught
    if release:
        # The await is over; only now is the thread let go.
        blocked.release.set()


@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "unsensitive"])
async def test_a_cancelled_await_returns_at_once_and_the_thread_runs_on(
    thread_sensitive: bool,
) -> None:
    blocked = Blocked()
    with anyio.fail_after(GIVE_UP * 2):
        await cancel_while_running(blocked, thread_sensitive)
        await blocked.wait_finished()
    assert blocked.released == [True]
    # What the abandoned call set in its context does not flow back to the caller.
    assert changed_in_thread.get() == "unchanged"
    with anyio.fail_after(GIVE_UP):
        assert await sync_to_async(lambda: "next", thread_sensitive=thread_sensitive)() == "next"


@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "unsensitive"])
async def test_timeouts_fire_on_time(thread_sensitive: bool) -> None:
    # What users write: a deadline around the await (trio.move_on_after, anyio's).
    blocked = Blocked()
    with anyio.fail_after(GIVE_UP * 2):
        with anyio.move_on_after(0.05) as scope:
            await sync_to_async(blocked, thread_sensitive=thread_sensitive)()
        assert scope.cancelled_caught
        blocked.release.set()
        await blocked.wait_finished()
    assert blocked.released == [True]


@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "unsensitive"])
def test_asyncio_timeout_fires_on_time(thread_sensitive: bool) -> None:
    blocked = Blocked()

    async def main() -> str:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                sync_to_async(blocked, thread_sensitive=thread_sensitive)(), 0.05
            )
        blocked.release.set()
        await asyncio.wait_for(blocked.wait_finished(), GIVE_UP)
        return await asyncio.wait_for(
            sync_to_async(lambda: "next", thread_sensitive=thread_sensitive)(), GIVE_UP
        )

    assert asyncio.run(main()) == "next"
    assert blocked.released == [True]


async def test_a_call_queued_behind_the_abandoned_one_runs_after_it() -> None:
    # thread_sensitive: one thread, so the next call waits its turn behind the call that
    # runs on, then runs, in that same thread.
    blocked = Blocked()
    threads: list[int] = []

    def record_thread() -> str:
        threads.append(threading.get_ident())
        return "queued"

    with anyio.fail_after(GIVE_UP * 2):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tasks:

                async def cancel_once_started() -> None:
                    await anyio.to_thread.run_sync(blocked.started.wait, GIVE_UP)
                    scope.cancel()

                tasks.start_soon(cancel_once_started)
                await sync_to_async(lambda: threads.append(threading.get_ident()))()
                await sync_to_async(blocked)()
        async with anyio.create_task_group() as tasks:
            results: list[str] = []

            async def queue_behind() -> None:
                results.append(await sync_to_async(record_thread)())

            tasks.start_soon(queue_behind)
            await anyio.wait_all_tasks_blocked()
            assert results == []  # the thread is still busy with the abandoned call
            blocked.release.set()
        assert results == ["queued"]
    assert blocked.released == [True]
    assert threads[0] == threads[1]


async def test_a_limiter_token_is_held_until_the_abandoned_thread_ends() -> None:
    # thread_sensitive=False calls are bounded by their limiter: a call that runs on
    # still occupies a thread, so it keeps its token until it ends, and timeouts on a
    # stuck function can not pile up threads past the limit.
    limiter = anyio.CapacityLimiter(1)
    blocked = Blocked()
    with anyio.fail_after(GIVE_UP * 2):
        with anyio.move_on_after(0.05):
            await sync_to_async(blocked, thread_sensitive=False, limiter=limiter)()
        assert limiter.borrowed_tokens == 1
        with anyio.move_on_after(0.05) as scope:
            await sync_to_async(lambda: "never", thread_sensitive=False, limiter=limiter)()
        assert scope.cancelled_caught  # waited for the token, and was cancelled there
        blocked.release.set()
        await blocked.wait_finished()
        assert (
            await sync_to_async(lambda: "next", thread_sensitive=False, limiter=limiter)() == "next"
        )
    assert limiter.borrowed_tokens == 0
    assert blocked.released == [True]


@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "unsensitive"])
async def test_inside_an_outer_async_to_sync(thread_sensitive: bool) -> None:
    # The thread that called async_to_sync is the outer sync thread: a thread-sensitive
    # call runs there.  The coroutine is cancelled at once and goes on; the outer
    # thread returns from async_to_sync once it has finished the call it was running.
    blocked = Blocked()
    after: list[str] = []

    async def coroutine() -> str:
        await cancel_while_running(blocked, thread_sensitive)
        after.append("the coroutine went on")
        return await sync_to_async(lambda: "next", thread_sensitive=thread_sensitive)()

    def outer_sync_thread() -> str:
        return async_to_sync(coroutine)()

    with anyio.fail_after(GIVE_UP * 2):
        assert await sync_to_async(outer_sync_thread, thread_sensitive=False)() == "next"
        await blocked.wait_finished()
    assert after == ["the coroutine went on"]
    assert blocked.released == [True]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "unsensitive"])
def test_inside_async_to_sync_from_a_plain_thread(
    backend: str,
    thread_sensitive: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The coroutine runs in a fresh loop.  A thread-sensitive call runs in this very
    # thread, so async_to_sync returns once it ended; any other call can end after the
    # loop has closed, which is no error (and nothing is logged as one).
    blocked = Blocked()
    told_the_loop = threading.Event()
    finish = ThreadCall.finish

    def finish_and_tell(call: ThreadCall) -> None:
        finish(call)
        if call.func is blocked:
            told_the_loop.set()

    monkeypatch.setattr(ThreadCall, "finish", finish_and_tell)

    async def coroutine() -> str:
        await cancel_while_running(blocked, thread_sensitive, release=thread_sensitive)
        return await sync_to_async(lambda: "next", thread_sensitive=thread_sensitive)()

    with caplog.at_level(logging.DEBUG, logger="adapter"):
        assert async_to_sync(coroutine, backend=backend)() == "next"
        assert blocked.finished.is_set() is thread_sensitive
        blocked.release.set()
        assert told_the_loop.wait(GIVE_UP)
    assert blocked.released == [True]
    assert [record.getMessage() for record in caplog.records] == []
