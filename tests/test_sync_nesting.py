"""Context variables, deep nesting and cancellation across the helpers (issue 4, 4-5).

Every async test runs on asyncio and on trio; the plain-thread tests are parametrised
over the fresh loop's backend.
"""

from __future__ import annotations

import contextvars
import sys
import threading

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio

from adapter import async_to_sync, sync_to_async
from adapter._runtime.mailbox import current_mailbox

pytestmark = pytest.mark.anyio

BACKENDS = ["asyncio", "trio"]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
trail: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("trail", default=())


def step(name: str) -> None:
    trail.set((*trail.get(), name))


# -- point 4: context variables flow in and back out, both directions ----------------


@pytest.mark.parametrize("thread_sensitive", [True, False])
async def test_sync_to_async_carries_context_in_and_back_out(thread_sensitive: bool) -> None:
    request_id.set("from the task")

    def handler() -> str:
        seen = request_id.get()
        request_id.set("from the thread")
        return seen

    assert await sync_to_async(handler, thread_sensitive=thread_sensitive)() == "from the task"
    assert request_id.get() == "from the thread"


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_to_sync_carries_context_in_and_back_out(backend: str) -> None:
    context = contextvars.copy_context()  # keep the test's own context clean

    def in_a_plain_thread() -> None:
        request_id.set("from the sync thread")

        async def handler() -> str:
            seen = request_id.get()
            request_id.set("from the coroutine")
            return seen

        assert async_to_sync(handler, backend=backend)() == "from the sync thread"
        assert request_id.get() == "from the coroutine"
        # What the loop set for itself does not leak into the sync thread.
        assert current_mailbox.get() is None
        with pytest.raises(sniffio.AsyncLibraryNotFoundError):
            sniffio.current_async_library()

    context.run(in_a_plain_thread)


async def test_context_crosses_both_bridges_and_comes_back() -> None:
    request_id.set("outer task")

    async def innermost() -> str:
        step("coroutine")
        return request_id.get()

    def middle() -> str:
        step("sync")
        return async_to_sync(innermost)()

    with anyio.fail_after(10):
        assert await sync_to_async(middle)() == "outer task"
    assert trail.get() == ("sync", "coroutine")


@pytest.mark.parametrize("thread_sensitive", [True, False])
async def test_the_loops_sniffio_marker_stays_on_the_loop(thread_sensitive: bool) -> None:
    # As in anyio's worker threads: sync code in the thread sees no running loop (so it
    # may start one), and the task's own marker is intact afterwards.
    library = sniffio.current_async_library()

    def no_library_here() -> bool:
        try:
            sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return True
        return False

    assert await sync_to_async(no_library_here, thread_sensitive=thread_sensitive)()
    assert sniffio.current_async_library() == library


@pytest.mark.parametrize("thread_sensitive", [True, False])
async def test_the_exception_being_handled_is_seen_in_the_thread(thread_sensitive: bool) -> None:
    # As asgiref: sync code called from an except block sees sys.exc_info() there.
    def handled() -> BaseException | None:
        return sys.exc_info()[1]

    call = sync_to_async(handled, thread_sensitive=thread_sensitive)
    assert await call() is None
    try:
        raise LookupError("being handled")
    except LookupError as exc:
        being_handled, seen = exc, await call()
    assert seen is being_handled


# -- point 5: nesting to depth four, and cancellation ----------------------------------


async def test_nesting_async_sync_async_sync_to_depth_four() -> None:
    threads: dict[str, int] = {}

    def level4(x: int) -> int:
        threads["level4"] = threading.get_ident()
        return x * 10

    async def level3(x: int) -> int:
        return await sync_to_async(level4)(x + 1)

    def level2(x: int) -> int:
        threads["level2"] = threading.get_ident()
        return async_to_sync(level3)(x + 1)

    async def level1(x: int) -> int:
        return await sync_to_async(level2)(x + 1)

    with anyio.fail_after(10):
        assert await level1(0) == 30
    # The thread-sensitive call under async_to_sync came back to the thread that called it.
    assert threads["level4"] == threads["level2"] != threading.get_ident()


@pytest.mark.parametrize("backend", BACKENDS)
def test_nesting_from_a_plain_thread_to_depth_four(backend: str) -> None:
    threads: list[int] = []

    async def level4() -> str:
        return "deep"

    def level3() -> str:
        threads.append(threading.get_ident())
        return async_to_sync(level4)()

    async def level2() -> str:
        return await sync_to_async(level3)()

    def level1() -> str:
        threads.append(threading.get_ident())
        return async_to_sync(level2, backend=backend)()

    assert level1() == "deep"
    assert threads == [threading.get_ident()] * 2


async def test_many_tasks_nest_at_once_without_deadlock() -> None:
    # Twenty tasks nest through the one shared thread at the same time: each nested
    # wait keeps serving the work the others post to that thread.
    results: list[int] = []

    async def leaf(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return await sync_to_async(lambda: x)()

    def middle(x: int) -> int:
        return async_to_sync(leaf)(x)

    async def task(x: int) -> None:
        results.append(await sync_to_async(middle)(x))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            for number in range(20):
                tasks.start_soon(task, number)
    assert sorted(results) == list(range(20))


async def test_unsensitive_outer_call_gets_nested_thread_sensitive_work_back() -> None:
    async def where() -> int:
        return await sync_to_async(threading.get_ident)()

    def worker() -> tuple[int, int]:
        return threading.get_ident(), async_to_sync(where)()

    with anyio.fail_after(10):
        caller, inner = await sync_to_async(worker, thread_sensitive=False)()
    assert caller == inner


@pytest.mark.parametrize("thread_sensitive", [True, False])
async def test_cancelling_a_running_call_leaves_later_calls_working(
    thread_sensitive: bool,
) -> None:
    started = threading.Event()
    release = threading.Event()
    outcome: list[str] = []

    def block() -> str:
        started.set()
        release.wait(10)
        return "finished"

    async def victim() -> None:
        try:
            outcome.append(await sync_to_async(block, thread_sensitive=thread_sensitive)())
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(victim)
            await anyio.to_thread.run_sync(started.wait)
            tasks.cancel_scope.cancel()
        # The thread can not be interrupted; the cancelled task did not wait for it.
        assert outcome == ["cancelled"]
        release.set()
        assert await sync_to_async(lambda: "works", thread_sensitive=thread_sensitive)() == "works"


async def test_a_call_cancelled_while_queued_never_runs() -> None:
    busy = threading.Event()
    release = threading.Event()
    ran: list[str] = []
    victim_done = anyio.Event()

    def hold_the_shared_thread() -> None:
        busy.set()
        release.wait(10)

    async def victim() -> None:
        try:
            await sync_to_async(lambda: ran.append("victim"))()
        finally:
            victim_done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sync_to_async(hold_the_shared_thread))
            await anyio.to_thread.run_sync(busy.wait)
            async with anyio.create_task_group() as victims:
                victims.start_soon(victim)
                await anyio.wait_all_tasks_blocked()
                victims.cancel_scope.cancel()
            # Cancelled at once, although the shared thread is still busy.
            await victim_done.wait()
            release.set()
        assert await sync_to_async(lambda: "after")() == "after"
    assert ran == []


async def test_cancelling_a_task_waiting_on_a_nested_coroutine() -> None:
    entered = anyio.Event()
    proceed = anyio.Event()

    async def slow_inner() -> str:
        entered.set()
        await proceed.wait()
        return "inner done"

    def sync_middle() -> str:
        return async_to_sync(slow_inner)()

    outcome: list[str] = []

    async def victim() -> None:
        try:
            outcome.append(await sync_to_async(sync_middle)())
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(victim)
            await entered.wait()
            tasks.cancel_scope.cancel()
        # The victim went at once; the sync thread waits on for its coroutine.
        assert outcome == ["cancelled"]
        proceed.set()
        assert await sync_to_async(async_to_sync(slow_inner))() == "inner done"
