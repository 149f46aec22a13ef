"""adapter.wsgi_to_asgi.sizing: the worker limit follows the app's use of the CPU.

The clocks are the test's, so each case says exactly how busy the process was; the
limiter is anyio's own, on asyncio and trio.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator

import anyio
import httpx
import pytest

from adapter import WsgiToAsgi
from adapter._types import Environ, StartResponse
from adapter.wsgi_to_asgi.sizing import INTERVAL, LONG_CALL, SATURATED, PoolSizer
from tests.wsgi_to_asgi.test_app import Server, http_scope, serve

pytestmark = pytest.mark.anyio


class Clocks:
    """A wall clock and a process CPU clock that the test moves."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 10.0

    def spend(self, seconds: float, busy: float) -> None:
        """``seconds`` of wall time pass, the process computing ``busy`` of it."""
        self.wall += seconds
        self.cpu += seconds * busy


def sizer_of(limiter: anyio.CapacityLimiter, clocks: Clocks, least: int = 2) -> PoolSizer:
    return PoolSizer(
        limiter, least, 40, cpu_clock=lambda: clocks.cpu, wall_clock=lambda: clocks.wall
    )


def six_looks(
    sizer: PoolSizer, clocks: Clocks, busy: float, call_cpu: float | None = None
) -> list[float]:
    """The limit after each of six intervals with the process ``busy`` (and one call of
    ``call_cpu`` seconds per interval, if given)."""
    seen = []
    for _ in range(6):
        clocks.spend(INTERVAL, busy=busy)
        if call_cpu is not None:
            sizer.record(call_cpu)
        sizer.look()
        seen.append(sizer.limiter.total_tokens)
    return seen


@contextlib.asynccontextmanager
async def waiting(limiter: anyio.CapacityLimiter, count: int) -> AsyncIterator[None]:
    """Fill ``limiter`` and keep ``count`` more tasks waiting on it, for the block."""
    async with anyio.create_task_group() as group:
        for _ in range(int(limiter.total_tokens) + count):
            group.start_soon(limiter.acquire_on_behalf_of, object())
        await anyio.wait_all_tasks_blocked()
        yield
        group.cancel_scope.cancel()


async def test_it_starts_at_the_least() -> None:
    limiter = anyio.CapacityLimiter(40)
    sizer_of(limiter, Clocks())
    assert limiter.total_tokens == 2


async def test_an_app_that_waits_gets_more_threads_while_requests_wait() -> None:
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks)
    async with waiting(limiter, 100):
        seen = six_looks(sizer, clocks, busy=0.1)
    assert seen == [4, 8, 16, 32, 40, 40]


async def test_no_growth_while_no_request_waits() -> None:
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks)
    clocks.spend(INTERVAL, busy=0.1)
    sizer.look()
    assert limiter.total_tokens == 2


async def test_an_app_that_computes_goes_back_to_the_least() -> None:
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks)
    limiter.total_tokens = 40
    seen = six_looks(sizer, clocks, busy=SATURATED + 0.05, call_cpu=LONG_CALL * 2)
    assert seen == [20, 10, 5, 2, 2, 2]


async def test_short_calls_keep_their_threads_even_in_a_busy_process() -> None:
    # A hello world: each call is done long before the GIL would be taken from it, and
    # more calls under way let the loop hand out and collect more of them per turn.
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks)
    async with waiting(limiter, 100):
        seen = six_looks(sizer, clocks, busy=1.0, call_cpu=LONG_CALL / 10)
    assert seen == [4, 8, 16, 32, 40, 40]


async def test_nothing_changes_between_two_looks() -> None:
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks)
    limiter.total_tokens = 40
    clocks.spend(INTERVAL / 2, busy=1.0)
    sizer.record(LONG_CALL * 2)
    sizer.look()
    assert limiter.total_tokens == 40


async def test_long_calls_in_a_busy_process_do_not_grow_with_requests_waiting() -> None:
    # The GIL is the bottleneck: more threads would only queue for it.
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks)
    async with waiting(limiter, 10):
        clocks.spend(INTERVAL, busy=1.0)
        sizer.record(LONG_CALL)
        sizer.record(LONG_CALL * 3)
        sizer.look()
    assert limiter.total_tokens == 2


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"hi"]


async def test_wsgi_to_asgi_sizes_its_pool_between_min_and_max_workers() -> None:
    sized = WsgiToAsgi(hello)
    # One thread at first, and the fewest: an app that computes runs best on one (its
    # calls don't take the GIL from each other); one that waits grows from there.
    assert sized.min_workers == 1
    assert sized.limiter().total_tokens == 1
    assert sized.for_this_loop()[0].sizer is not None
    fixed = WsgiToAsgi(hello, max_workers=8, min_workers=8)
    assert fixed.limiter().total_tokens == 8
    assert fixed.for_this_loop()[0].sizer is None
    assert WsgiToAsgi(hello, max_workers=1).limiter().total_tokens == 1


@pytest.mark.parametrize(("max_workers", "min_workers"), [(0, 1), (4, 0)])
def test_worker_bounds_below_one_are_refused(max_workers: int, min_workers: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WsgiToAsgi(hello, max_workers=max_workers, min_workers=min_workers)


class RecordingSizer(PoolSizer):
    """A sizer that keeps what it was told."""

    __slots__ = ("recorded",)

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        super().__init__(limiter, 2, 40)
        self.recorded: list[float] = []

    def record(self, cpu: float) -> None:
        self.recorded.append(cpu)
        super().record(cpu)


async def test_each_step_reports_its_cpu_time_to_the_sizer() -> None:
    def compute(environ: Environ, start_response: StartResponse) -> list[bytes]:
        deadline = time.thread_time() + LONG_CALL * 4
        while time.thread_time() < deadline:
            pass
        return hello(environ, start_response)

    app = WsgiToAsgi(compute)
    hop = app.for_this_loop()[0]
    sizer = hop.sizer = RecordingSizer(hop.limiter)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/")).text == "hi"
    assert len(sizer.recorded) == 1
    assert sizer.recorded[0] >= LONG_CALL * 4


async def test_a_request_behind_a_call_that_lasts_gets_a_thread() -> None:
    """The one thread is held by an event stream: the limit grows, the next is served."""
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] != "/stream":
            return hello(environ, start_response)
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def events() -> Iterator[bytes]:
            yield b"data: first\n\n"
            release.wait(10)  # the stream's step holds its thread until the test ends
            yield b"data: last\n\n"

        return events()

    wsgi = WsgiToAsgi(app)
    limiter = wsgi.limiter()
    assert limiter.total_tokens == 1
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(serve, wsgi, Server(), http_scope("/stream"))
            with anyio.fail_after(5):
                while limiter.borrowed_tokens < 1:
                    await anyio.sleep(0.01)
                assert (await serve(wsgi)).body == b"hi"
            assert limiter.total_tokens >= 2
            release.set()
    finally:
        release.set()
    # The watch ends once nothing waits.
    with anyio.fail_after(5):
        while wsgi.for_this_loop()[0].sizer.watching:  # type: ignore[union-attr]
            await anyio.sleep(0.05)


async def test_the_watch_ends_when_nothing_waits() -> None:
    limiter = anyio.CapacityLimiter(40)
    clocks = Clocks()
    sizer = sizer_of(limiter, clocks, least=1)
    assert not sizer.must_watch()  # a thread is free: nobody waits
    async with waiting(limiter, 1):
        assert sizer.must_watch()
        assert not sizer.must_watch()  # one watch at a time
        clocks.spend(INTERVAL, busy=0.1)
        async with anyio.create_task_group() as group:
            group.start_soon(sizer.watch)
            with anyio.fail_after(5):
                while limiter.total_tokens < 2:
                    await anyio.sleep(0.01)
            assert sizer.watching
            group.cancel_scope.cancel()
    assert not sizer.watching
