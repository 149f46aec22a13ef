"""AsgiToWsgi lifecycles: lifespan, the client going away, concurrency (issue 3 points 1, 6, 7).

In memory through ``LintMiddleware`` (helpers from ``tests.asgi_to_wsgi.test_app``), on
asyncio and trio; the interpreter-exit shutdown runs in a child interpreter.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import adapter.asgi_to_wsgi.cancel
from adapter import AsgiToWsgi, LifespanFailed
from adapter._runtime.handoff import Handoff
from adapter._runtime.shared_loop import get_loop
from adapter._types import ASGIApp, Message, Receive, Scope, Send
from adapter.asgi_to_wsgi.cancel import GraceCancel
from adapter.asgi_to_wsgi.responder import AsgiToWsgiResponder
from adapter.asgi_to_wsgi.response import ResponseBody
from adapter.asgi_to_wsgi.scope import build_scope
from tests.asgi_to_wsgi.test_app import (
    Started,
    backend,
    call,
    make_environ,
    open_response,
    respond,
)
from tests.servers import run_python

__all__ = ["backend"]  # the fixture, re-used


def loop_task_count(backend: str) -> int:
    """How many tasks the shared loop of ``backend`` holds right now."""
    shared = get_loop(backend)
    assert shared.portal is not None

    def count() -> int:
        if backend == "trio":
            import trio

            def walk(task: trio.lowlevel.Task) -> int:
                children = [c for n in task.child_nurseries for c in n.child_tasks]
                return 1 + sum(walk(child) for child in children)

            root = trio.lowlevel.current_root_task()
            assert root is not None
            return walk(root)
        return len(asyncio.all_tasks())

    return shared.portal.call(count)


START = {"type": "http.response.start", "status": 200, "headers": []}
TICK = {"type": "http.response.body", "body": b"tick", "more_body": True}


# ---- point 7: the client goes away ---------------------------------------------------------


def test_client_gone_gives_disconnect_and_oserror_and_the_task_ends(backend: str) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the (empty) body

        async def wait_for_disconnect() -> None:
            seen["receive"] = await receive()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait_for_disconnect)
            try:
                await send(START)
                while True:
                    await send(TICK)
            except OSError as exc:
                seen["send"] = exc
        seen["ended"] = True

    baseline = loop_task_count(backend)
    _, iterator, iterable = open_response(
        AsgiToWsgi(app, lifespan="off", backend=backend), make_environ()
    )
    assert [next(iterator), next(iterator)] == [b"tick", b"tick"]
    assert loop_task_count(backend) > baseline  # the app's tasks are running
    iterable.close()  # the server's way of saying the client is gone
    assert seen["receive"] == {"type": "http.disconnect"}
    assert isinstance(seen["send"], OSError)
    assert seen["ended"]
    assert loop_task_count(backend) == baseline  # nothing stays pending


def leave_after_the_first_tick(app: ASGIApp, backend: str) -> None:
    """Serve ``app``, take its first chunk, then close as a departing client's server
    does; the app's task must be over by then, with no task left on the loop."""
    baseline = loop_task_count(backend)
    _, iterator, iterable = open_response(
        AsgiToWsgi(app, lifespan="off", backend=backend), make_environ()
    )
    assert next(iterator) == b"tick"
    iterable.close()
    assert loop_task_count(backend) == baseline


def test_app_ignoring_the_disconnect_is_cancelled_after_a_grace(backend: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send(TICK)
        try:
            await anyio.sleep_forever()  # never looks at receive() or send() again
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    leave_after_the_first_tick(app, backend)
    assert outcome == ["cancelled"]


def test_app_swallowing_the_cancellation_is_cancelled_again(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # anyio's cancellation is level-triggered: an app that swallows it meets it again.
    monkeypatch.setattr(adapter.asgi_to_wsgi.cancel, "DISCONNECT_GRACE", 0.01)
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send(TICK)
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            outcome.append("swallowed")
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    leave_after_the_first_tick(app, backend)  # no error reaches the server: ours
    assert outcome == ["swallowed", "cancelled"]


@pytest.mark.anyio
async def test_a_cancellation_not_ours_goes_on(anyio_backend: tuple[str, object]) -> None:
    grace = GraceCancel()
    started = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await anyio.sleep_forever()

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    outcome: list[str] = []

    async def run() -> None:
        try:
            await grace.run(app, {}, receive, send)
        except anyio.get_cancelled_exc_class():
            outcome.append("went on")
            raise
        outcome.append("swallowed")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run)
            await started.wait()
            tasks.cancel_scope.cancel()  # someone else's: it must reach the caller
    assert outcome == ["went on"]


@pytest.mark.anyio
async def test_client_gone_before_the_app_started_still_cancels_it(
    anyio_backend: tuple[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter.asgi_to_wsgi.cancel, "DISCONNECT_GRACE", 0.01)
    grace = GraceCancel()
    grace.client_gone(anyio.current_time())  # e.g. the request thread was interrupted

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    async def unused(*args: object) -> Any:
        raise AssertionError("not called")

    with anyio.fail_after(10):
        await grace.run(app, {}, unused, unused)  # ends quietly: the cancellation is ours


def test_a_shielded_clean_up_finishes_before_the_grace_cancellation_lands(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cancellation is anyio's, so the app's shielded sections are respected.
    monkeypatch.setattr(adapter.asgi_to_wsgi.cancel, "DISCONNECT_GRACE", 0.01)
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send(TICK)
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.2)  # outlasts the grace, inside the shield
                outcome.append("clean-up finished")

    leave_after_the_first_tick(app, backend)
    assert outcome == ["clean-up finished"]


def test_no_task_is_left_behind_however_requests_end(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/error":
            raise ValueError("broken")
        await send(START)
        for _ in range(3):
            await send(TICK)
        if path == "/late-error":
            raise ValueError("broken mid-stream")
        await send({"type": "http.response.body"})

    wsgi_app = AsgiToWsgi(app, lifespan="off", backend=backend)
    baseline = loop_task_count(backend)
    for path in ["/", "/error", "/late-error", "/cut"] * 5:
        _, iterator, iterable = open_response(wsgi_app, make_environ(PATH_INFO=path))
        try:
            if path == "/cut":
                next(iterator)
            else:
                for _ in iterator:
                    pass
        except ValueError:
            pass
        finally:
            iterable.close()
    assert loop_task_count(backend) == baseline


def test_completed_response_waits_for_the_app_to_return(backend: str) -> None:
    # Starlette's BackgroundTasks run after the last body message, inside the app call.
    ran: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"done")
        await anyio.lowlevel.checkpoint()
        ran.append("background")

    call(AsgiToWsgi(app, lifespan="off", backend=backend))
    assert ran == ["background"]


def test_an_error_raised_after_the_response_while_close_waits_reaches_close(
    backend: str,
) -> None:
    # close() finds the task still running, asks the loop to tell it of the end, and
    # gets the error the app raised after its response.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"done")
        await anyio.sleep(0.01)  # close() is waiting by now, or soon
        raise ValueError("broken in the background")

    _, iterator, iterable = open_response(
        AsgiToWsgi(app, lifespan="off", backend=backend), make_environ()
    )
    assert b"".join(iterator) == b"done"
    with pytest.raises(ValueError, match="broken in the background"):
        iterable.close()


def test_the_response_goes_out_while_the_app_carries_on_after_it(backend: str) -> None:
    # Background work after the last body message: the body is handed over as the
    # task suspends, not when it ends; close() then waits for the end.
    carry_on: list[anyio.Event] = []
    ran: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        carry_on.append(anyio.Event())
        await respond(send, b"done")
        await carry_on[0].wait()
        ran.append("background")

    shared = get_loop(backend)
    assert shared.portal is not None
    answered, closed = threading.Event(), threading.Event()
    seen: list[object] = []

    def request_thread() -> None:  # a thread of its own, so that this test can not hang
        body = responder_for(app, backend).respond(Started())
        seen.append(type(body))
        answered.set()
        seen.append(b"".join(body))
        getattr(body, "close", lambda: None)()
        closed.set()

    threading.Thread(target=request_thread, daemon=True).start()
    returned_first = answered.wait(10)  # while the app waits for carry_on
    shared.portal.call(carry_on[0].set)
    assert closed.wait(10)
    assert returned_first
    assert seen == [ResponseBody, b"done"]
    assert ran == ["background"]


def responder_for(app: ASGIApp, backend: str) -> AsgiToWsgiResponder:
    environ = make_environ()
    return AsgiToWsgiResponder(app, build_scope(environ), environ, get_loop(backend))


def test_a_complete_response_of_an_ended_task_is_finished_before_it_is_returned(
    backend: str,
) -> None:
    # Nothing is left for close() to wait for or report: the server gets a plain list,
    # and the request's mailbox is closed already.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"done")

    responder = responder_for(app, backend)
    body = responder.respond(Started())
    assert body == [b"done"]
    assert responder._mailbox.closed


def test_a_response_is_not_finished_early_while_close_has_an_error_to_report(
    backend: str,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"done")
        raise ValueError("after the response")

    responder = responder_for(app, backend)
    body = responder.respond(Started())
    assert isinstance(body, ResponseBody)
    assert not responder._mailbox.closed
    assert b"".join(body) == b"done"
    with pytest.raises(ValueError, match="after the response"):
        body.close()
    assert responder._mailbox.closed


def test_the_loop_answers_a_watch_for_a_task_that_ended_meanwhile(backend: str) -> None:
    # finish() looked before the task ended; by the time its callback runs on the loop,
    # the task has ended: the answer is given at once, and no grace is armed.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, b"done")

    responder = responder_for(app, backend)
    assert responder.respond(Started()) == [b"done"]
    assert responder._task_ended
    ended: Handoff[BaseException | None] = Handoff()
    shared = get_loop(backend)
    assert shared.portal is not None
    shared.portal.call(responder._loop_watch_end, ended, True)
    assert ended.done()
    assert ended.result() is None
    assert not responder._client_gone


# ---- point 1: requests run concurrently as tasks on one loop -------------------------------


def test_requests_run_concurrently_on_the_shared_loop(backend: str) -> None:
    events: dict[str, anyio.Event] = {}
    threads: set[int] = set()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        threads.add(threading.get_ident())
        released = events.setdefault("released", anyio.Event())  # on the loop thread
        if scope["path"] == "/wait":
            with anyio.fail_after(10):
                await released.wait()
        else:
            released.set()
        await respond(send, scope["path"].encode())

    wsgi_app = AsgiToWsgi(app, lifespan="off", backend=backend)
    results: list[bytes] = []
    waiter = threading.Thread(
        target=lambda: results.append(call(wsgi_app, make_environ(PATH_INFO="/wait"))[2])
    )
    waiter.start()
    # /wait can only finish once /release ran beside it on the same loop.
    assert call(wsgi_app, make_environ(PATH_INFO="/release"))[2] == b"/release"
    waiter.join(10)
    assert results == [b"/wait"]
    assert threads == {get_loop(backend).thread.ident}


# ---- point 6: lifespan ---------------------------------------------------------------------


def lifespan_app(events: list[str], startup: str = "complete", shutdown: str = "complete") -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    events.append("startup")
                    scope["state"]["pool"] = "the pool"
                    await send({"type": f"lifespan.startup.{startup}"})
                else:
                    events.append("shutdown")
                    await send({"type": f"lifespan.shutdown.{shutdown}"})
                    return
        state = scope["state"]
        events.append(f"request with {state.get('pool')}")
        keys = sorted(state)
        state["request_only"] = True  # must not leak into the next request
        await respond(send, json.dumps(keys).encode())

    return app


def test_lifespan_startup_once_state_per_request_shutdown_on_close(backend: str) -> None:
    events: list[str] = []
    wsgi_app = AsgiToWsgi(lifespan_app(events), backend=backend)
    assert events == []  # building an instance starts nothing
    assert call(wsgi_app)[2] == b'["pool"]'
    assert call(wsgi_app)[2] == b'["pool"]'  # a shallow copy per request
    assert events == ["startup", "request with the pool", "request with the pool"]
    wsgi_app.close()
    wsgi_app.close()
    assert events[-1] == "shutdown"
    assert events.count("shutdown") == 1


def test_lifespan_startup_runs_once_for_concurrent_first_requests(backend: str) -> None:
    events: list[str] = []
    wsgi_app = AsgiToWsgi(lifespan_app(events), backend=backend)
    bodies: list[bytes] = []
    threads = [threading.Thread(target=lambda: bodies.append(call(wsgi_app)[2])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    wsgi_app.close()
    assert bodies == [b'["pool"]'] * 8
    assert events.count("startup") == 1
    assert events[0] == "startup"  # before any request


def unsupported(scope: Scope, receive: Receive, send: Send) -> Any:
    async def app() -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"only http, not {scope['type']}")
        await respond(send, b"fine")

    return app()


def test_lifespan_auto_carries_on_without_support(backend: str) -> None:
    wsgi_app = AsgiToWsgi(unsupported, lifespan="auto", backend=backend)
    assert call(wsgi_app)[2] == b"fine"
    wsgi_app.close()


def test_lifespan_on_makes_missing_support_an_error(backend: str) -> None:
    wsgi_app = AsgiToWsgi(unsupported, lifespan="on", backend=backend)
    for _ in range(2):  # every request, not only the first
        with pytest.raises(LifespanFailed, match="only http"):
            call(wsgi_app)


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_failed_startup_is_an_error(backend: str, mode: str) -> None:
    events: list[str] = []
    wsgi_app = AsgiToWsgi(lifespan_app(events, startup="failed"), lifespan=mode, backend=backend)
    with pytest.raises(LifespanFailed, match="startup failed"):
        call(wsgi_app)
    assert events == ["startup"]


def test_lifespan_off_skips_it(backend: str) -> None:
    events: list[str] = []
    wsgi_app = AsgiToWsgi(lifespan_app(events), lifespan="off", backend=backend)
    assert call(wsgi_app)[2] == b"[]"
    wsgi_app.close()
    assert events == ["request with None"]


def test_failed_shutdown_is_logged_in_auto_and_raised_in_on(backend: str) -> None:
    for mode in ("auto", "on"):
        wsgi_app = AsgiToWsgi(lifespan_app([], shutdown="failed"), lifespan=mode, backend=backend)
        call(wsgi_app)
        if mode == "on":
            with pytest.raises(LifespanFailed, match="shutdown"):
                wsgi_app.close()
        else:
            wsgi_app.close()


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="lifespan"):
        AsgiToWsgi(unsupported, lifespan="sometimes")
    with pytest.raises(ValueError, match="backend"):
        AsgiToWsgi(unsupported, backend="curio")


EXIT_SCRIPT = """
import sys
from werkzeug.test import Client
from adapter import AsgiToWsgi

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].split(".")[1]
            sys.stdout.write(kind + "\\n")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

assert Client(AsgiToWsgi(app, backend=sys.argv[1])).get("/").data == b"ok"
sys.stdout.write("exiting\\n")
"""


def test_lifespan_shutdown_runs_at_interpreter_exit(backend: str) -> None:
    done = run_python("-c", textwrap.dedent(EXIT_SCRIPT), backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["startup", "exiting", "shutdown"]
