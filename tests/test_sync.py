"""sync_to_async and async_to_sync: threads, loops, decorators (issue 4, points 1-3).

Every async test runs on asyncio and on trio; the plain-thread ``async_to_sync`` tests
are parametrised over the fresh loop's backend.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio

from adapter import async_to_sync, sync_to_async
from adapter._runtime.mailbox import MailboxClosed, ThreadMailbox, current_mailbox

pytestmark = pytest.mark.anyio

BACKENDS = ["asyncio", "trio"]


def current_loop_marker() -> object:
    """Something that names the running loop: the asyncio loop or the trio token."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token()


def explode() -> None:
    raise ValueError("raised in the sync function")


async def explode_async() -> None:
    raise KeyError("raised in the coroutine")


# -- point 1: sync_to_async runs in a thread, returns, raises, decorates --------------


async def test_runs_in_a_thread_not_the_loop_and_returns_the_value() -> None:
    def where(a: int, *, b: int) -> tuple[int, int]:
        return threading.get_ident(), a + b

    for thread_sensitive in (True, False):
        thread, total = await sync_to_async(where, thread_sensitive=thread_sensitive)(1, b=2)
        assert total == 3
        assert thread != threading.get_ident()


async def test_reraises_with_the_original_traceback() -> None:
    for thread_sensitive in (True, False):
        with pytest.raises(ValueError, match="raised in the sync function") as caught:
            await sync_to_async(explode, thread_sensitive=thread_sensitive)()
        assert "explode" in [entry.name for entry in caught.traceback]


async def test_bare_decorator_with_arguments_and_metadata() -> None:
    @sync_to_async
    def bare(x: int) -> int:
        """Doubles."""
        return x * 2

    @sync_to_async(thread_sensitive=False)
    def with_arguments(x: int) -> int:
        return x + 1

    assert await bare(4) == 8
    assert await with_arguments(4) == 5
    assert bare.__name__ == "bare"
    assert bare.__doc__ == "Doubles."
    assert bare.__qualname__.endswith(
        "test_bare_decorator_with_arguments_and_metadata.<locals>.bare"
    )
    assert bare.__wrapped__(5) == 10  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(bare)
    assert inspect.iscoroutinefunction(with_arguments)
    assert inspect.iscoroutinefunction(sync_to_async(len))


class Counter:
    def __init__(self) -> None:
        self.count = 0

    @sync_to_async
    def bump(self, by: int) -> int:
        self.count += by
        return self.count

    @sync_to_async(thread_sensitive=False)
    def thread(self) -> int:
        return threading.get_ident()

    def plain(self) -> str:
        return "bound"


async def test_works_on_methods() -> None:
    counter = Counter()
    assert await counter.bump(2) == 2
    assert await counter.bump(3) == 5
    assert await counter.thread() != threading.get_ident()
    assert inspect.iscoroutinefunction(counter.bump)
    assert await sync_to_async(counter.plain)() == "bound"
    assert Counter.bump.__name__ == "bump"


def test_refuses_coroutine_functions_and_misplaced_options() -> None:
    with pytest.raises(TypeError, match="only be applied to sync functions"):
        sync_to_async(explode_async)
    with pytest.raises(TypeError, match="thread_sensitive=False"):
        sync_to_async(explode, limiter=anyio.CapacityLimiter(1))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="thread_sensitive=False"):
            sync_to_async(explode, executor=pool)
        with pytest.raises(TypeError, match="not both"):
            sync_to_async(
                explode, thread_sensitive=False, executor=pool, limiter=anyio.CapacityLimiter(1)
            )


# -- point 2: thread-sensitive calls share one thread; others run in parallel ---------


async def test_thread_sensitive_calls_share_one_thread_one_at_a_time() -> None:
    running = 0
    most_at_once = 0
    seen: set[int] = set()
    lock = threading.Lock()

    def record() -> None:
        nonlocal running, most_at_once
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
        seen.add(threading.get_ident())
        with lock:
            running -= 1

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(sync_to_async(record))
    assert len(seen) == 1
    assert most_at_once == 1
    # The same one thread for every loop in the process (asgiref's single thread): a
    # loop of its own in another thread, with no outer sync thread, uses it too.
    other_loop_thread = await anyio.to_thread.run_sync(
        anyio.run, sync_to_async(threading.get_ident)
    )
    assert seen == {other_loop_thread}


async def test_thread_sensitive_calls_run_in_the_thread_that_called_async_to_sync() -> None:
    async def where() -> tuple[int, int]:
        first = await sync_to_async(threading.get_ident)()
        second = await sync_to_async(threading.get_ident)()
        return first, second

    def outer_sync_thread() -> tuple[int, tuple[int, int]]:
        return threading.get_ident(), async_to_sync(where)()

    with anyio.fail_after(10):
        caller, inner = await anyio.to_thread.run_sync(outer_sync_thread)
    assert inner == (caller, caller)


async def test_unsensitive_calls_run_in_parallel() -> None:
    # Five calls can only all pass the barrier if they run at the same time.
    barrier = threading.Barrier(5, timeout=10)

    def meet() -> int:
        barrier.wait()
        return threading.get_ident()

    threads: list[int] = []

    async def call() -> None:
        threads.append(await sync_to_async(meet, thread_sensitive=False)())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(call)
    assert len(set(threads)) == 5


async def test_unsensitive_calls_are_bounded_by_the_limiter() -> None:
    limiter = anyio.CapacityLimiter(2)
    release = threading.Event()
    started = threading.Semaphore(0)
    running = 0
    most_at_once = 0
    lock = threading.Lock()

    def hold() -> None:
        nonlocal running, most_at_once
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
        started.release()
        release.wait(10)
        with lock:
            running -= 1

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(sync_to_async(hold, thread_sensitive=False, limiter=limiter))
            # Two calls start; the other three wait for a token, not for a thread.
            for _ in range(2):
                await anyio.to_thread.run_sync(started.acquire)
            while limiter.statistics().tasks_waiting < 3:
                await anyio.lowlevel.checkpoint()
            assert limiter.borrowed_tokens == 2
            release.set()
    assert most_at_once == 2
    assert limiter.borrowed_tokens == 0


async def test_an_executor_can_be_passed_as_in_asgiref() -> None:
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="given") as pool:
        name = await sync_to_async(
            lambda: threading.current_thread().name, thread_sensitive=False, executor=pool
        )()
    assert name.startswith("given")


async def test_a_closed_outer_thread_fails_the_call_clearly() -> None:
    def closed_mailbox() -> ThreadMailbox:
        # An outer sync thread whose async_to_sync call (or WSGI request) is over.
        mailbox = ThreadMailbox()
        mailbox.close()
        return mailbox

    token = current_mailbox.set(await anyio.to_thread.run_sync(closed_mailbox))
    try:
        with pytest.raises(MailboxClosed, match="stopped waiting"):
            await sync_to_async(threading.get_ident)()
    finally:
        current_mailbox.reset(token)


# -- point 3: async_to_sync from a plain thread, on a loop, inside sync_to_async -------


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_to_sync_from_a_plain_thread(backend: str) -> None:
    async def add(a: int, b: int = 0) -> tuple[int, str]:
        await anyio.lowlevel.checkpoint()
        return a + b, sniffio.current_async_library()

    assert async_to_sync(add, backend=backend)(2, b=3) == (5, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_to_sync_reraises_with_the_original_traceback(backend: str) -> None:
    with pytest.raises(KeyError, match="raised in the coroutine") as caught:
        async_to_sync(explode_async, backend=backend)()
    assert "explode_async" in [entry.name for entry in caught.traceback]


def test_async_to_sync_decorates_bare_with_arguments_and_methods() -> None:
    class Client:
        base = 10

        @async_to_sync
        async def get(self, offset: int) -> int:
            """Fetches."""
            return self.base + offset

        @async_to_sync(force_new_loop=True)
        async def loop_id(self) -> int:
            return id(current_loop_marker())

    client = Client()
    assert client.get(5) == 15
    assert Client.get.__name__ == "get"
    assert Client.get.__doc__ == "Fetches."
    assert not inspect.iscoroutinefunction(Client.get)
    assert isinstance(client.loop_id(), int)


def test_async_to_sync_warns_about_a_sync_callable() -> None:
    with pytest.warns(UserWarning, match="non-async-marked callable"):
        async_to_sync(explode)  # type: ignore[arg-type]


async def test_async_to_sync_on_a_loop_thread_says_to_await() -> None:
    with pytest.raises(RuntimeError, match="just await the async function directly"):
        async_to_sync(explode_async)()


async def test_async_to_sync_inside_sync_to_async_runs_on_the_outer_loop() -> None:
    outer = current_loop_marker()
    # Resources of the outer loop work from the nested coroutine: a memory stream and an
    # event made here, used there.
    send, receive = anyio.create_memory_object_stream[str](1)
    seen = anyio.Event()

    async def use_outer_resources() -> object:
        await send.send("from the sync side")
        seen.set()
        return current_loop_marker()

    for thread_sensitive in (True, False):
        with anyio.fail_after(10):
            inner = await sync_to_async(
                async_to_sync(use_outer_resources), thread_sensitive=thread_sensitive
            )()
            assert await receive.receive() == "from the sync side"
        assert inner is outer
    assert seen.is_set()
    send.close()
    receive.close()


async def test_async_to_sync_in_an_anyio_worker_thread_runs_on_the_outer_loop() -> None:
    # Code that hands sync work to anyio's own worker threads gets the same service.
    outer = current_loop_marker()

    async def marker() -> object:
        return current_loop_marker()

    with anyio.fail_after(10):
        assert await anyio.to_thread.run_sync(async_to_sync(marker)) is outer


async def test_force_new_loop_uses_a_fresh_loop_of_the_same_backend() -> None:
    outer = current_loop_marker()
    outer_library = sniffio.current_async_library()

    async def marker() -> tuple[object, str]:
        return current_loop_marker(), sniffio.current_async_library()

    with anyio.fail_after(10):
        inner, library = await sync_to_async(async_to_sync(marker, force_new_loop=True))()
    assert inner is not outer
    assert library == outer_library


def test_fresh_loops_clean_up_before_returning() -> None:
    # As asyncio.run: tasks left behind are cancelled before async_to_sync returns.
    cancelled = threading.Event()
    leftovers: list[Any] = []

    async def leave_a_task_behind() -> None:
        async def linger() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        leftovers.append(asyncio.get_running_loop().create_task(linger()))
        await asyncio.sleep(0)

    async_to_sync(leave_a_task_behind)()
    assert cancelled.is_set()


class Service:
    def lookup(self) -> str:
        return "sync"

    async def fetch(self) -> str:
        return "async"


def test_wrapped_bound_methods_keep_self() -> None:
    # asgiref's test_sync_to_async_method_self_attribute: code that inspects a wrapped
    # method (Django's, for one) finds the instance where a bound method keeps it.
    service = Service()
    wrapped_sync = [
        sync_to_async(service.lookup),
        sync_to_async()(service.lookup),
        sync_to_async(thread_sensitive=False)(service.lookup),
    ]
    wrapped_async = [
        async_to_sync(service.fetch),
        async_to_sync()(service.fetch),
        async_to_sync(force_new_loop=True)(service.fetch),
    ]
    for wrapped in [*wrapped_sync, *wrapped_async]:
        assert wrapped.__self__ is service  # type: ignore[attr-defined]
    assert [async_to_sync(wrapped)() for wrapped in wrapped_sync] == ["sync"] * 3
    assert [wrapped() for wrapped in wrapped_async] == ["async"] * 3
    # A plain function has no __self__, and gets none.
    assert not hasattr(sync_to_async(explode), "__self__")
    assert not hasattr(async_to_sync(explode_async), "__self__")
