"""adapter.wsgi_to_asgi.workers: how WsgiToAsgi hands a step to a worker thread and waits."""

from __future__ import annotations

import contextvars
import threading

import anyio
import anyio.to_thread
import pytest

from adapter._runtime.loops import current_loop
from adapter.wsgi_to_asgi.workers import WorkerHop

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def new_hop(tokens: int = 1) -> WorkerHop:
    return WorkerHop(current_loop(), anyio.CapacityLimiter(tokens))


@pytest.mark.anyio
async def test_a_step_runs_in_a_worker_inside_the_given_context_not_a_copy() -> None:
    context = contextvars.copy_context()
    context.run(request_id.set, "first step")
    loop_thread = threading.get_ident()

    def step() -> tuple[int, str]:
        seen = request_id.get()
        request_id.set("set by the step")
        return threading.get_ident(), seen

    with anyio.fail_after(10):
        thread, seen = await new_hop().run(step, context)
    assert thread != loop_thread
    assert seen == "first step"
    # The next step of the same request sees what this one set.
    assert context.run(request_id.get) == "set by the step"
    # Nothing flows back into the caller's own context.
    assert request_id.get("unset") == "unset"


@pytest.mark.anyio
async def test_what_the_step_raises_reaches_the_caller() -> None:
    def step() -> None:
        raise LookupError("from the worker")

    with anyio.fail_after(10), pytest.raises(LookupError, match="from the worker"):
        await new_hop().run(step, contextvars.copy_context())


@pytest.mark.anyio
async def test_the_limiter_bounds_the_steps_running_at_once() -> None:
    hop = new_hop(1)
    gate = threading.Event()
    entered = threading.Event()
    ran: list[str] = []

    def blocking() -> None:
        entered.set()
        gate.wait(10)
        ran.append("first")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(hop.run, blocking, contextvars.copy_context())
            await anyio.to_thread.run_sync(entered.wait, 10)
            task_group.start_soon(hop.run, lambda: ran.append("second"), contextvars.copy_context())
            await anyio.wait_all_tasks_blocked()
            # The second step waits for the limiter's one token, on the loop.
            assert hop.limiter.statistics().tasks_waiting == 1
            assert ran == []
            gate.set()
    assert ran == ["first", "second"]
    assert hop.limiter.borrowed_tokens == 0


@pytest.mark.anyio
async def test_a_cancelled_caller_waits_for_its_running_step_then_is_cancelled() -> None:
    hop = new_hop()
    gate = threading.Event()
    entered = threading.Event()
    finished = threading.Event()
    returned = anyio.Event()
    caller_scope = anyio.CancelScope()

    def blocking() -> None:
        entered.set()
        gate.wait(10)
        finished.set()

    async def caller() -> None:
        try:
            with caller_scope:
                await hop.run(blocking, contextvars.copy_context())
        finally:
            returned.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(caller)
            await anyio.to_thread.run_sync(entered.wait, 10)
            caller_scope.cancel()
            await anyio.wait_all_tasks_blocked()
            # A worker can not be interrupted: the caller holds on until the step ends.
            assert not returned.is_set()
            assert hop.limiter.borrowed_tokens == 1
            gate.set()
    assert finished.is_set()
    assert returned.is_set()
    assert caller_scope.cancelled_caught
    assert hop.limiter.borrowed_tokens == 0


@pytest.mark.anyio
async def test_a_caller_cancelled_before_the_hand_over_hands_nothing_over() -> None:
    hop = new_hop(1)
    ran: list[str] = []
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await hop.run(lambda: ran.append("ran"), contextvars.copy_context())
        # Also while waiting for the limiter: hold its one token meanwhile.
        await hop.limiter.acquire()
        try:
            with anyio.move_on_after(0.05):
                await hop.run(lambda: ran.append("ran"), contextvars.copy_context())
        finally:
            hop.limiter.release()
    assert ran == []
    assert hop.limiter.borrowed_tokens == 0
