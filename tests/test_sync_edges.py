"""Edges of the sync helpers: loops started by hand, native asyncio cancellation, fork."""

from __future__ import annotations

import asyncio
import contextvars
import os
import select
import signal
import threading
import warnings

import anyio
import pytest

from adapter import async_to_sync, sync_to_async
from adapter._runtime._asyncio import AsyncioLoop
from adapter._runtime.mailbox import ThreadMailbox

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_loop_run_by_hand_in_the_outer_sync_thread_fails_clearly(backend: str) -> None:
    # Thread-sensitive code that starts a loop itself (not through async_to_sync) blocks
    # the very thread its thread-sensitive calls would run in: an error, not a hang.
    async def inner() -> int:
        return await sync_to_async(threading.get_ident)()

    def thread_sensitive_code() -> int:
        return anyio.run(inner, backend=backend)

    async def outer() -> int:
        return await sync_to_async(thread_sensitive_code)()

    with pytest.raises(RuntimeError, match=r"instead of asyncio\.run"):
        async_to_sync(outer, backend=backend)()
    # The same in the shared thread, when there is no outer sync thread at all.
    with pytest.raises(RuntimeError, match=r"instead of asyncio\.run"):
        anyio.run(outer, backend=backend)
    assert anyio.run(sync_to_async(lambda: "still works"), backend=backend) == "still works"


def test_native_asyncio_cancel_is_at_once_then_later_calls_work() -> None:
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def block() -> str:
        started.set()
        release.wait(10)
        finished.set()
        return "finished"

    async def main() -> str:
        task = asyncio.ensure_future(sync_to_async(block)())
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel()  # plain asyncio, no anyio cancel scope around it
        # As asgiref: the task ends at once; the call's thread is still busy.
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert not finished.is_set()
        release.set()
        return await asyncio.wait_for(sync_to_async(lambda: "works")(), 10)

    assert asyncio.run(main()) == "works"
    assert finished.is_set()


def test_wait_for_timeout_on_a_queued_call_abandons_it() -> None:
    busy = threading.Event()
    release = threading.Event()
    ran: list[str] = []

    def hold() -> None:
        busy.set()
        release.wait(10)

    async def main() -> None:
        holder = asyncio.ensure_future(sync_to_async(hold)())
        await asyncio.get_running_loop().run_in_executor(None, busy.wait, 10)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sync_to_async(lambda: ran.append("queued"))(), 0.05)
        release.set()
        await asyncio.wait_for(holder, 10)
        await asyncio.wait_for(sync_to_async(lambda: None)(), 10)

    asyncio.run(main())
    assert ran == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_its_own_threads() -> None:
    # The parent's shared thread and workers do not exist in a child (gunicorn
    # --preload, uWSGI): the child must start its own instead of posting to dead ones.
    async def use_threads() -> int:
        await sync_to_async(threading.get_ident)()
        await sync_to_async(threading.get_ident, thread_sensitive=False)()
        return 7

    # The parent starts the shared thread and a worker (no outer sync thread here).
    assert anyio.run(use_threads) == 7
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; that is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            result = anyio.run(use_threads) + async_to_sync(use_threads)()
            os.write(write_end, str(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20)
        answer = os.read(read_end, 16) if ready else b""
    finally:
        os.close(read_end)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert answer == b"14"


def test_a_coroutine_cancelled_before_it_starts_still_answers_the_sync_caller() -> None:
    # asyncio.run cancels the tasks left at its end, some before their first step; the
    # sync thread waiting for one must get the cancellation, not wait forever.
    loop = asyncio.new_event_loop()
    try:
        future = AsyncioLoop(loop).submit(pause, contextvars.copy_context())
        if not asyncio.all_tasks(loop):
            # Python 3.12+: a callback of the loop makes the task (and starts it).
            loop.call_soon(loop.stop)
            loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        assert len(tasks) == 1
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        outcome = ThreadMailbox().wait(future, timeout=10)
    finally:
        loop.close()
    assert isinstance(outcome.error, asyncio.CancelledError)


async def pause() -> None:
    await asyncio.sleep(0)
