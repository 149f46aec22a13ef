"""Cancelling a ``sync_to_async`` call whose thread waits in ``async_to_sync`` (asgiref 3.13).

When the cancelled call's thread is waiting in ``async_to_sync`` for a coroutine on the
same loop (Django's sync middleware around an async view), the coroutine is cancelled
too, and its end awaited:

- ended by the cancellation, the ``await`` is cancelled, and ``async_to_sync`` raises the
  cancellation into the sync code;
- ended otherwise (it caught the cancellation, or shielded its work, and went on), the
  ``await`` waits for the whole call and returns its result, as if never cancelled.

Each coroutine waits at most ``GIVE_UP`` seconds, so one that is never cancelled ends by
itself and the test fails on what it recorded, instead of hanging.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
import pytest

from adapter import async_to_sync, sync_to_async

pytestmark = pytest.mark.anyio

GIVE_UP = 10.0


class Recorder:
    """What the coroutine beneath and the sync code around it saw."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.coroutine: list[str] = []
        self.sync: list[str] = []
        #: Set when the outermost sync function ends, which may be after the await.
        self.sync_ended = threading.Event()

    async def wait_sync_ended(self) -> None:
        assert await anyio.to_thread.run_sync(self.sync_ended.wait, GIVE_UP)

    async def view_that_goes_on(self) -> str:
        """Waits to be cancelled, catches the cancellation and answers anyway."""
        self.started.set()
        try:
            await anyio.sleep(GIVE_UP)
        except anyio.get_cancelled_exc_class():
            self.coroutine.append("caught")
            return "view went on"
        return "view slept to the end"

    async def view_that_ends(self) -> str:
        """Waits to be cancelled, and lets the cancellation end it."""
        self.started.set()
        try:
            await anyio.sleep(GIVE_UP)
        except anyio.get_cancelled_exc_class():
            self.coroutine.append("cancelled")
            raise
        return "view slept to the end"

    def outer(self, sync_func: Callable[[], str]) -> Callable[[], str]:
        """``sync_func`` noting what escapes it, and when it ended."""

        def noted() -> str:
            try:
                return sync_func()
            except BaseException as exc:
                self.sync.append(type(exc).__name__)
                raise
            finally:
                self.sync_ended.set()

        return noted


async def cancel_once_started(recorder: Recorder, scope: anyio.CancelScope) -> None:
    await anyio.to_thread.run_sync(recorder.started.wait, GIVE_UP)
    scope.cancel()


async def await_cancelled_once_started(
    recorder: Recorder, sync_func: Callable[[], str], thread_sensitive: bool = True
) -> str:
    """Await ``sync_to_async(sync_func)()`` in a scope cancelled once the coroutine started;
    then wait for the sync function's end.

    :returns: what the await returned, or ``"cancelled"`` if it was cancelled.
    """
    result = "cancelled"
    with anyio.fail_after(GIVE_UP * 2):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(cancel_once_started, recorder, scope)
                result = await sync_to_async(sync_func, thread_sensitive=thread_sensitive)()
        await recorder.wait_sync_ended()
    assert scope.cancel_called
    return result


@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "unsensitive"])
async def test_the_coroutine_beneath_is_cancelled_and_the_await_too(
    thread_sensitive: bool,
) -> None:
    recorder = Recorder()

    def middleware() -> str:
        return async_to_sync(recorder.view_that_ends)()

    result = await await_cancelled_once_started(
        recorder, recorder.outer(middleware), thread_sensitive
    )
    assert result == "cancelled"
    assert recorder.coroutine == ["cancelled"]
    # async_to_sync raised the cancellation into the sync code, which let it go through.
    assert recorder.sync == [anyio.get_cancelled_exc_class().__name__]


async def test_a_coroutine_that_goes_on_makes_the_await_return_the_result() -> None:
    recorder = Recorder()

    def middleware() -> str:
        return "middleware: " + async_to_sync(recorder.view_that_goes_on)()

    result = await await_cancelled_once_started(recorder, recorder.outer(middleware))
    assert result == "middleware: view went on"
    assert recorder.coroutine == ["caught"]
    assert recorder.sync == []


def chain(view: Callable[[], Awaitable[str]]) -> Callable[[], str]:
    """Django's middleware chain around ``view``: sync, async, sync, then the view."""

    def sync_inner() -> str:
        return "sync_inner(" + async_to_sync(view)() + ")"

    async def async_middle() -> str:
        return "async_middle(" + await sync_to_async(sync_inner)() + ")"

    def sync_outer() -> str:
        return "sync_outer(" + async_to_sync(async_middle)() + ")"

    return sync_outer


async def test_the_cancellation_goes_down_a_chain_of_calls() -> None:
    recorder = Recorder()
    outer = recorder.outer(chain(recorder.view_that_goes_on))
    result = await await_cancelled_once_started(recorder, outer)
    assert result == "sync_outer(async_middle(sync_inner(view went on)))"
    assert recorder.coroutine == ["caught"]


async def test_a_cancelled_chain_ends_cancelled_all_the_way_up() -> None:
    recorder = Recorder()
    outer = recorder.outer(chain(recorder.view_that_ends))
    result = await await_cancelled_once_started(recorder, outer)
    assert result == "cancelled"
    assert recorder.coroutine == ["cancelled"]
    assert recorder.sync == [anyio.get_cancelled_exc_class().__name__]


async def test_a_call_not_in_async_to_sync_is_left_at_once() -> None:
    # The call finished its async_to_sync before the cancellation: nothing to cancel
    # beneath it, so the await goes at once, as before (the thread runs on).
    finished = threading.Event()
    release = threading.Event()
    started = threading.Event()

    async def quick() -> str:
        return "quick"

    def middleware() -> str:
        answer = async_to_sync(quick)()
        started.set()
        release.wait(GIVE_UP)
        finished.set()
        return answer

    with anyio.fail_after(GIVE_UP * 2):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tasks:

                async def cancel() -> None:
                    await anyio.to_thread.run_sync(started.wait, GIVE_UP)
                    scope.cancel()

                tasks.start_soon(cancel)
                await sync_to_async(middleware)()
        assert scope.cancelled_caught
        assert not finished.is_set()  # the await did not wait for the thread
        release.set()
        assert await anyio.to_thread.run_sync(finished.wait, GIVE_UP)


def test_asgiref_inner_shield_with_asyncio_shield() -> None:
    # asgiref's own scenario (test_inner_shield_sync_middleware), asyncio only: the view
    # shields a task, catches the cancellation, lets the task finish and awaits it.
    events: list[str] = []

    async def main() -> None:
        started = asyncio.Event()
        blocker: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def shielded_work() -> None:
            started.set()
            await blocker
            events.append("work done")

        async def view() -> None:
            work = asyncio.ensure_future(shielded_work())
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                events.append("view caught the cancellation")
                blocker.set_result(None)
                await work
                events.append("view done")

        def middleware() -> str:
            async_to_sync(view)()
            return "middleware done"

        task = asyncio.ensure_future(sync_to_async(middleware)())
        await asyncio.wait_for(started.wait(), GIVE_UP)
        task.cancel()
        events.append(await asyncio.wait_for(task, GIVE_UP))

    asyncio.run(main())
    assert events == [
        "view caught the cancellation",
        "work done",
        "view done",
        "middleware done",
    ]
