"""adapter._runtime.shared_loop: one shared loop thread per process and backend, lazy,
fork-safe (issue 3 points 1 and 2).

The fork test forks this very process after the loop thread is running, as gunicorn
``--preload`` does; the real gunicorn run is in ``tests/asgi_to_wsgi/test_interop.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import select
import signal
import textwrap
import threading
import time
import warnings

import pytest

from adapter import AsgiToWsgi
from adapter._runtime.shared_loop import SharedLoop, get_loop
from adapter._types import Receive, Scope, Send
from tests.asgi_to_wsgi.test_app import backend, call, respond
from tests.servers import run_python

__all__ = ["backend"]  # the fixture, re-used


def loop_threads(backend: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"adapter-loop-{backend}"]


async def where_am_i(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the process id and the name of the thread the app runs in."""
    if scope["type"] != "http":
        return
    current = threading.current_thread()
    await respond(send, f"{os.getpid()} {current.name} {current.ident}".encode())


def test_twenty_instances_share_one_loop_thread(backend: str) -> None:
    instances = [AsgiToWsgi(where_am_i, backend=backend) for _ in range(20)]
    answers = {call(instance)[2] for instance in instances}
    assert len(answers) == 1  # the same process and thread for all twenty
    assert len(loop_threads(backend)) == 1
    [shared] = loop_threads(backend)
    assert shared is get_loop(backend).thread
    assert shared.daemon  # never holds the interpreter open at exit


def test_get_loop_returns_the_same_running_loop(backend: str) -> None:
    shared = get_loop(backend)
    assert get_loop(backend) is shared
    assert not shared.in_loop_thread()
    assert shared.portal is not None
    assert shared.portal.call(shared.in_loop_thread)  # the portal runs on that thread


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        get_loop("curio")


def test_uvloop_only_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    loop_types: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            loop_types.append(type(asyncio.get_running_loop()).__module__)
            await respond(send, b"ok")

    call(AsgiToWsgi(app, backend="asyncio"))
    call(AsgiToWsgi(app, backend="asyncio", backend_options={"use_uvloop": True}))
    assert loop_types[0].startswith("asyncio")
    if importlib.util.find_spec("uvloop") is not None:
        assert loop_types[1].startswith("uvloop")
        # A loop of its own, beside the plain asyncio one.
        assert [t.name for t in threading.enumerate()].count("adapter-loop-asyncio-use_uvloop") == 1
    else:  # asked for but not installed: plain asyncio, and a warning says so
        assert loop_types[1].startswith("asyncio")
        assert "uvloop was asked for but is not installed" in caplog.text


LAZY_SCRIPT = """
import sys, threading
from werkzeug.test import Client
from adapter import AsgiToWsgi

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

def loops():
    return sum(t.name.startswith("adapter-loop") for t in threading.enumerate())

apps = [AsgiToWsgi(app, backend=sys.argv[1], lifespan="off") for _ in range(20)]
before = loops()
for instance in apps:
    assert Client(instance).get("/").data == b"ok"
print(before, loops())
"""


def test_loop_starts_on_first_request_not_on_construction(backend: str) -> None:
    done = run_python("-c", textwrap.dedent(LAZY_SCRIPT), backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "1"]


def _read_from_child(pid: int, reader: int, timeout: float) -> bytes:
    """What the child writes before exiting; kills it (by its pid) if it hangs."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([reader], [], [], max(remaining, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the forked child hung; it wrote {b''.join(chunks)!r}")
        chunk = os.read(reader, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks)


def test_an_instance_used_in_the_parent_works_in_a_forked_child(backend: str) -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(f"{message['type']} in {os.getpid()}")
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await where_am_i(scope, receive, send)

    instance = AsgiToWsgi(app, backend=backend)
    parent_answer = call(instance)[2].decode()
    assert parent_answer.startswith(str(os.getpid()))
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock the
        # child: forking after the loop thread started is exactly what this tests.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: answer one request, report, and leave at once
        code = 1
        try:
            os.close(reader)
            child_answer = call(instance)[2].decode()
            instance.close()
            report = f"{child_answer}|{';'.join(events)}"
            os.write(writer, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    try:
        report = _read_from_child(pid, reader, timeout=30).decode()
    finally:
        os.close(reader)
    child_answer, child_events = report.split("|")
    child_pid, thread_name, _ = child_answer.split()
    assert int(child_pid) == pid
    assert thread_name == f"adapter-loop-{backend}"
    # The child ran its own startup (the parent's loop does not exist there), then
    # its own shutdown at close().
    assert f"lifespan.startup in {pid}" in child_events
    assert f"lifespan.shutdown in {pid}" in child_events
    # The parent is untouched and still serves.
    assert call(instance)[2].decode().startswith(str(os.getpid()))
    instance.close()


def test_calling_asgi_to_wsgi_on_its_own_loop_thread_fails_fast(backend: str) -> None:
    instance = AsgiToWsgi(where_am_i, backend=backend, lifespan="off")
    call(instance)  # starts the loop
    shared = get_loop(backend)
    assert shared.portal is not None
    with pytest.raises(RuntimeError, match="own event loop thread"):
        shared.portal.call(call, instance)


def test_a_loop_thread_that_stopped_is_replaced_with_its_lifespan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Never expected (the loop runs until the process exits), but if its thread ends,
    # the next request starts a new loop and runs lifespan startup again on it.
    startups: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            startups.append(threading.current_thread().name)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, threading.current_thread().name.encode())

    # Options of its own give this test a loop of its own, which it may stop.
    options = {"debug": False}
    wrapped = AsgiToWsgi(app, backend_options=options)
    assert call(wrapped)[0].startswith("200")
    first = get_loop("asyncio", options)
    assert is_alive(first)
    stop(first)
    assert not is_alive(first)
    with caplog.at_level("ERROR", logger="adapter"):
        assert call(wrapped)[0].startswith("200")
    second = get_loop("asyncio", options)
    assert second is not first
    assert is_alive(second)
    assert "had stopped; starting a new one" in caplog.text
    assert len(startups) == 2
    wrapped.close()


def is_alive(loop: SharedLoop) -> bool:
    """The flag read anew each time (a type checker would keep what it saw last)."""
    return loop.alive


def test_close_after_the_loop_thread_stopped_returns_without_a_shutdown() -> None:
    # Lifespan shutdown runs on the loop startup ran on; with that loop gone there is
    # nothing to shut down (nor in a forked child, where the parent's loop is gone).
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            events.append((await receive())["type"])
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, b"hello")

    options = {"debug": False}
    wrapped = AsgiToWsgi(app, backend_options=options)
    assert call(wrapped)[0].startswith("200")
    stop(get_loop("asyncio", options))
    wrapped.close()  # neither raises nor waits for a loop that is gone
    assert events == []


def stop(loop: SharedLoop) -> None:
    """End a shared loop's thread (its anyio.run returns), as tests only may."""
    loop.stop()
