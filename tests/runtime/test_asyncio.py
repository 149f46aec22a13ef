"""adapter._runtime._asyncio: asyncio tasks started from the loop's thread and from other threads.

Each test runs an asyncio loop in a thread of its own, as the shared loop of AsgiToWsgi
and an outer loop of async_to_sync are run, and starts tasks on it from the test's
thread.  The module is asyncio's only (trio starts its tasks through its own token).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import sys
import threading
import weakref
from collections.abc import Iterator

import pytest

from adapter._runtime import _asyncio as _tasks

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


class LoopThread:
    """An asyncio loop running in a daemon thread; ``run`` calls a function on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, func: object) -> object:
        answer: concurrent.futures.Future[object] = concurrent.futures.Future()

        def call() -> None:
            answer.set_result(func() if callable(func) else None)

        self.loop.call_soon_threadsafe(call)
        return answer.result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()


@pytest.fixture(params=["plain", "debug", "subclass"])
def loop_thread(request: pytest.FixtureRequest) -> Iterator[LoopThread]:
    """asyncio's own loop, the same in debug mode, and a loop class of someone else's.

    Each gets its tasks through ``call_soon_threadsafe`` (a debug loop refuses a plain
    call_soon from another thread with RuntimeError).
    """

    class SomeoneElsesLoop(asyncio.SelectorEventLoop):
        pass

    loop = SomeoneElsesLoop() if request.param == "subclass" else asyncio.new_event_loop()
    loop.set_debug(request.param == "debug")
    thread = LoopThread(loop)
    yield thread
    thread.stop()


def test_spawn_threadsafe_runs_the_coroutine_on_the_loop_in_the_given_context(
    loop_thread: LoopThread,
) -> None:
    seen: concurrent.futures.Future[tuple[str, bool, str]] = concurrent.futures.Future()

    async def report(word: str) -> None:
        await asyncio.sleep(0)
        in_loop_thread = threading.current_thread() is loop_thread.thread
        seen.set_result((word, in_loop_thread, where.get()))
        where.set("changed in the task")

    context = contextvars.copy_context()
    context.run(where.set, "the caller's")
    _tasks.spawn_threadsafe(loop_thread.loop, report, "hello", context=context)
    assert seen.result(timeout=10) == ("hello", True, "the caller's")
    assert where.get() == "unset"  # the calling thread's own context is not the task's


def test_spawn_threadsafe_takes_the_calling_threads_context_by_default(
    loop_thread: LoopThread,
) -> None:
    seen: concurrent.futures.Future[str] = concurrent.futures.Future()

    async def report() -> None:
        seen.set_result(where.get())

    token = where.set("the calling thread's")
    try:
        _tasks.spawn_threadsafe(loop_thread.loop, report)
    finally:
        where.reset(token)
    assert seen.result(timeout=10) == "the calling thread's"


def _wake_the_kept_task(
    loop_thread: LoopThread,
    release: concurrent.futures.Future[tuple[asyncio.Future[None], weakref.ref[object]]],
) -> weakref.ref[object]:
    """Check that the task waiting on a future of its own (which it hands over through
    ``release``) outlives a collection and is kept referenced; then wake it."""
    future, task = release.result(timeout=10)
    loop_thread.run(gc.collect)
    assert task() is not None
    assert loop_thread.run(lambda: task() in _tasks._running)
    loop_thread.loop.call_soon_threadsafe(future.set_result, None)
    return task


def test_a_task_is_referenced_while_it_runs_and_forgotten_when_it_ends(
    loop_thread: LoopThread,
) -> None:
    # asyncio keeps only weak references to tasks: one waiting on a future that nothing
    # else references must still be there to be woken.
    release: concurrent.futures.Future[tuple[asyncio.Future[None], weakref.ref[object]]]
    release = concurrent.futures.Future()
    ended: concurrent.futures.Future[str] = concurrent.futures.Future()

    async def wait_on_a_future_of_its_own() -> None:
        future = asyncio.get_running_loop().create_future()
        release.set_result((future, weakref.ref(asyncio.current_task())))
        await future
        ended.set_result("woken")

    _tasks.spawn_threadsafe(loop_thread.loop, wait_on_a_future_of_its_own)
    task = _wake_the_kept_task(loop_thread, release)
    assert ended.result(timeout=10) == "woken"
    loop_thread.run(lambda: None)  # a pass after the task's end (a done callback's turn)
    assert not loop_thread.run(lambda: task() in _tasks._running)


def test_spawn_on_the_loops_own_thread(loop_thread: LoopThread) -> None:
    seen: concurrent.futures.Future[str] = concurrent.futures.Future()

    async def report() -> None:
        seen.set_result(where.get())

    def start() -> None:
        context = contextvars.copy_context()
        context.run(where.set, "given")
        _tasks.spawn(loop_thread.loop, report, context=context)

    loop_thread.run(start)
    assert seen.result(timeout=10) == "given"


def test_what_the_coroutine_raises_stays_in_its_task(loop_thread: LoopThread) -> None:
    async def fail() -> None:
        raise ValueError("stays in the task")

    reported: list[BaseException] = []
    loop_thread.loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    _tasks.spawn_threadsafe(loop_thread.loop, fail)  # raises nothing here
    loop_thread.run(lambda: None)  # the task has run
    loop_thread.run(gc.collect)  # asyncio reports a task's unretrieved error when it goes
    assert [str(error) for error in reported] == ["stays in the task"]


async def _cancel_the_others(*, cancel: bool = True) -> None:
    """Cancel every other task of the running loop (if ``cancel``), then give them a few
    passes of the loop to end."""
    if cancel:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_task_cancelled_before_its_first_step_calls_if_unstarted() -> None:
    # asyncio drops such a coroutine unstarted, and whoever waits for it (a sync thread)
    # would wait forever: if_unstarted answers it instead.
    seen: list[str] = []

    async def never_runs() -> None:
        seen.append("started")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        _tasks.spawn(loop, never_runs, if_unstarted=lambda: seen.append("answered"))
        # An eager task (3.12+) has no time before its first step: nothing to cancel.
        await _cancel_the_others(cancel=sys.version_info < (3, 12))

    asyncio.run(main())
    assert seen == (["answered"] if sys.version_info < (3, 12) else ["started"])


def test_if_unstarted_is_not_called_for_a_task_that_started() -> None:
    seen: list[str] = []

    async def cancelled_later() -> None:
        seen.append("started")
        await asyncio.sleep(10)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        _tasks.spawn(loop, cancelled_later, if_unstarted=lambda: seen.append("answered"))
        await asyncio.sleep(0)
        await _cancel_the_others()

    asyncio.run(main())
    assert seen == ["started"]


def test_spawn_threadsafe_on_a_closed_loop_raises() -> None:
    loop = asyncio.new_event_loop()
    loop.close()

    async def never() -> None:
        raise AssertionError("never runs")

    with pytest.raises(RuntimeError, match="closed"):
        _tasks.spawn_threadsafe(loop, never)


def test_spawn_soon_runs_the_coroutine_in_a_referenced_task_in_the_callers_context(
    loop_thread: LoopThread,
) -> None:
    # AsgiToWsgi's per-request start: no task group, kept referenced while it runs.
    release: concurrent.futures.Future[tuple[asyncio.Future[None], weakref.ref[object]]]
    release = concurrent.futures.Future()
    ended: concurrent.futures.Future[tuple[str, str, bool]] = concurrent.futures.Future()

    async def wait_on_a_future_of_its_own(word: str) -> None:
        future = asyncio.get_running_loop().create_future()
        release.set_result((future, weakref.ref(asyncio.current_task())))
        await future
        in_loop_thread = threading.current_thread() is loop_thread.thread
        ended.set_result((word, where.get(), in_loop_thread))

    token = where.set("the calling thread's")
    try:
        _tasks.AsyncioLoop(loop_thread.loop).spawn_soon(wait_on_a_future_of_its_own, "hello")
    finally:
        where.reset(token)
    task = _wake_the_kept_task(loop_thread, release)
    assert ended.result(timeout=10) == ("hello", "the calling thread's", True)
    loop_thread.run(lambda: None)
    assert not loop_thread.run(lambda: task() in _tasks._running)


def test_spawn_soon_logs_what_escapes_the_coroutine(
    loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail() -> None:
        raise ValueError("escaped")

    reported: list[object] = []
    loop_thread.loop.set_exception_handler(lambda _, context: reported.append(context))
    with caplog.at_level(logging.ERROR, logger="adapter"):
        _tasks.AsyncioLoop(loop_thread.loop).spawn_soon(fail)
        loop_thread.run(lambda: None)
        loop_thread.run(lambda: None)
        loop_thread.run(gc.collect)
    assert "a task on the adapter event loop failed" in caplog.text
    assert "escaped" in caplog.text
    assert reported == []  # handled in the task: nothing left for asyncio to report


def test_a_prepared_loop_starts_tasks_through_its_own_socket_pair(
    loop_thread: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    # The shared loop's way: starts queued from many threads at once all run, each in
    # the context of the thread that asked, and what escapes a task is logged.
    handle = _tasks.AsyncioLoop(loop_thread.loop)
    undo = loop_thread.run(handle.prepare_spawning)
    assert callable(undo)
    seen: list[tuple[int, str]] = []
    all_done = threading.Event()
    count = 8 * 200

    async def report(number: int) -> None:
        seen.append((number, where.get()))
        if len(seen) == count:
            all_done.set()

    async def fail() -> None:
        raise ValueError("escaped a started task")

    def starter(first: int) -> None:
        where.set(f"thread {first}")
        for number in range(first, first + 200):
            handle.spawn_soon(report, number)

    with caplog.at_level(logging.ERROR, logger="adapter"):
        threads = [threading.Thread(target=starter, args=(n * 200,)) for n in range(8)]
        for thread in threads:
            thread.start()
        handle.spawn_soon(fail)
        for thread in threads:
            thread.join(10)
        assert all_done.wait(10)
        loop_thread.run(lambda: None)
    assert sorted(number for number, _ in seen) == list(range(count))
    assert all(context == f"thread {number // 200 * 200}" for number, context in seen)
    assert "escaped a started task" in caplog.text
    loop_thread.run(undo)
    with pytest.raises(RuntimeError, match="closed"):
        handle.spawn_soon(report, -1)


def test_a_loop_without_add_reader_starts_tasks_the_plain_way() -> None:
    # Windows' proactor loop has no add_reader: spawn_soon keeps call_soon_threadsafe.
    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, *args: object) -> None:
            raise NotImplementedError

    loop_thread = LoopThread(NoReaders())
    try:
        handle = _tasks.AsyncioLoop(loop_thread.loop)
        undo = loop_thread.run(handle.prepare_spawning)
        seen: concurrent.futures.Future[str] = concurrent.futures.Future()

        async def report() -> None:
            seen.set_result(where.get())

        token = where.set("the caller's")
        try:
            handle.spawn_soon(report)
        finally:
            where.reset(token)
        assert seen.result(timeout=10) == "the caller's"
        loop_thread.run(undo)
    finally:
        loop_thread.stop()
