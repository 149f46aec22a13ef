"""The helpers inside the two bridges (issue 4, point 3's WsgiToAsgi part, and point 6).

- A WSGI app served by ``WsgiToAsgi`` calls ``async_to_sync``: the coroutine runs on the
  server's own event loop (and thread-sensitive calls it makes come back to the WSGI
  app's thread).
- An ASGI app served by ``AsgiToWsgi``: its thread-sensitive ``sync_to_async`` calls run
  in the WSGI server's request thread, and ``async_to_sync`` from a worker thread runs
  on the shared loop the app runs on.

In memory on asyncio and trio first, then on real servers (uvicorn, waitress); the apps
for the real servers are defined here, at the bottom, and imported by the server.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import anyio
import httpx
import pytest
from anyio.streams.memory import MemoryObjectSendStream
from werkzeug.test import Client

from adapter import AsgiToWsgi, WsgiToAsgi, async_to_sync, sync_to_async
from adapter._types import ASGIApp, Environ, Message, Receive, Scope, Send, StartResponse
from tests.servers import running_server

BACKENDS = ["asyncio", "trio"]


def loop_marker() -> int:
    """The identity of the running loop: the asyncio loop's or the trio token's."""
    try:
        return id(asyncio.get_running_loop())
    except RuntimeError:
        import trio

        return id(trio.lowlevel.current_trio_token())


# -- point 3: async_to_sync in a WSGI app served by WsgiToAsgi -----------------------


async def _coroutine_facts() -> dict[str, int]:
    # Runs on the server's loop; its thread-sensitive calls go back to the app thread.
    return {
        "loop": loop_marker(),
        "thread_sensitive_thread": await sync_to_async(threading.get_ident)(),
    }


def wsgi_calling_async(environ: Environ, start_response: StartResponse) -> list[bytes]:
    facts = async_to_sync(_coroutine_facts)()
    facts["app_thread"] = threading.get_ident()
    sender: MemoryObjectSendStream[str] | None = environ["asgi.scope"].get("test.sender")
    if sender is not None:
        # An async resource of the server's loop, used from the WSGI app.
        async_to_sync(sender.send)("sent from the WSGI app")
    loop_of_server = environ["asgi.scope"].get("test.loop")
    facts["same_loop_as_server"] = int(loop_of_server in (None, facts["loop"]))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(facts).encode()]


def with_loop_marker(app: ASGIApp) -> ASGIApp:
    """``app`` with the server loop's identity in the scope, for the WSGI app to compare."""

    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "test.loop": loop_marker()}
        await app(scope, receive, send)

    return marked


@pytest.mark.anyio
async def test_async_to_sync_in_wsgi_to_asgi_runs_on_the_servers_loop() -> None:
    sender, receiver = anyio.create_memory_object_stream[str](1)
    inner = WsgiToAsgi(wsgi_calling_async)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "test.sender": sender}
        await inner(scope, receive, send)
        # httpx feeds the body from an async generator: finish it, as a server would.
        message: Message = {"more_body": True}
        while message.get("more_body", False):
            message = await receive()

    transport = httpx.ASGITransport(app=with_loop_marker(app))
    with anyio.fail_after(10):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/")
        assert await receiver.receive() == "sent from the WSGI app"
    facts = response.json()
    assert facts["loop"] == loop_marker()
    assert facts["same_loop_as_server"] == 1
    assert facts["thread_sensitive_thread"] == facts["app_thread"] != threading.get_ident()
    sender.close()
    receiver.close()


@pytest.mark.server
def test_async_to_sync_in_wsgi_to_asgi_on_uvicorn() -> None:
    command = ["uvicorn", "tests.test_sync_bridges:uvicorn_app", "--port", "{port}"]
    with running_server([*command, "--log-level", "warning"]) as base_url:
        facts = httpx.get(base_url + "/", timeout=10).json()
    assert facts["same_loop_as_server"] == 1
    assert facts["thread_sensitive_thread"] == facts["app_thread"]


# -- point 6: the helpers in an ASGI app served by AsgiToWsgi ------------------------


async def _worker_coroutine_facts() -> dict[str, Any]:
    return {"loop": loop_marker(), "thread": await sync_to_async(threading.get_ident)()}


def _from_a_worker_thread() -> dict[str, Any]:
    facts = async_to_sync(_worker_coroutine_facts)()
    facts["worker_thread"] = threading.get_ident()
    return facts


def _from_the_request_thread() -> dict[str, Any]:
    # Thread-sensitive code that goes async again: still served by the request thread.
    facts = async_to_sync(_worker_coroutine_facts)()
    facts["outer_thread"] = threading.get_ident()
    return facts


async def asgi_calling_sync(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    facts = {
        "app_loop": loop_marker(),
        "thread_sensitive": await sync_to_async(threading.get_ident)(),
        "thread_sensitive_name": await sync_to_async(lambda: threading.current_thread().name)(),
        "worker": await sync_to_async(_from_a_worker_thread, thread_sensitive=False)(),
        "nested": await sync_to_async(_from_the_request_thread)(),
    }
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(facts).encode()})


@pytest.mark.parametrize("backend", BACKENDS)
def test_asgi_to_wsgi_request_thread_runs_thread_sensitive_calls(backend: str) -> None:
    # werkzeug's test client calls the WSGI app in this thread: it is the request thread.
    client = Client(AsgiToWsgi(asgi_calling_sync, backend=backend, lifespan="off"))
    for _ in range(2):
        response = client.get("/")
        assert response.status_code == 200
        facts = json.loads(response.get_data())
        assert facts["thread_sensitive"] == threading.get_ident()
        assert facts["nested"]["outer_thread"] == threading.get_ident()
        assert facts["nested"]["thread"] == threading.get_ident()
        assert facts["nested"]["loop"] == facts["app_loop"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_asgi_to_wsgi_async_to_sync_from_a_worker_runs_on_the_shared_loop(backend: str) -> None:
    client = Client(AsgiToWsgi(asgi_calling_sync, backend=backend, lifespan="off"))
    facts = json.loads(client.get("/").get_data())
    worker = facts["worker"]
    assert worker["loop"] == facts["app_loop"]
    assert worker["worker_thread"] != threading.get_ident()
    # Thread-sensitive calls under that async_to_sync go back to the worker thread.
    assert worker["thread"] == worker["worker_thread"]


@pytest.mark.server
def test_asgi_to_wsgi_on_waitress_uses_the_request_thread() -> None:
    command = ["waitress-serve", "--listen", "127.0.0.1:{port}", "--threads", "2"]
    with running_server([*command, "tests.test_sync_bridges:waitress_app"]) as base_url:
        answers = [httpx.get(base_url + "/", timeout=10).json() for _ in range(3)]
    # waitress names its request threads "waitress-N"; never our shared thread.
    names = {facts["thread_sensitive_name"] for facts in answers}
    assert all(name.startswith("waitress") for name in names), names
    for facts in answers:
        assert facts["nested"]["thread"] == facts["nested"]["outer_thread"]
        assert facts["nested"]["outer_thread"] == facts["thread_sensitive"]
        assert facts["worker"]["loop"] == facts["app_loop"]


# -- apps the real servers import ------------------------------------------------------

uvicorn_app = with_loop_marker(WsgiToAsgi(wsgi_calling_async))
waitress_app = AsgiToWsgi(asgi_calling_sync, lifespan="off")
