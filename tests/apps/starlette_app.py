"""A Starlette app exercising what AsgiToWsgi must carry (issue 3 point 10).

StreamingResponse (and server-sent events), FileResponse, BackgroundTasks, a
BaseHTTPMiddleware and a lifespan
whose state reaches requests.  ``application`` is the WSGI app for gunicorn and waitress;
``used_in_parent()`` builds one and serves a request with it first, for gunicorn
``--preload`` (the master uses it, then forks its workers).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTasks
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from adapter import AsgiToWsgi

FILE = Path(__file__)
background_log: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"started_in": os.getpid()}
    # For tests of a real server's exit: say which process ran the shutdown.
    record = os.environ.get("STARLETTE_APP_SHUTDOWN_DIR")
    if record:
        await anyio.Path(record, f"shutdown-{os.getpid()}").touch()


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def stream(request: Request) -> Response:
    async def numbers() -> AsyncIterator[bytes]:
        for number in range(5):
            yield b"%d\n" % number

    return StreamingResponse(numbers(), media_type="text/plain")


async def file(request: Request) -> Response:
    return FileResponse(FILE, media_type="text/x-python")


async def echo(request: Request) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
    return Response(body, media_type="application/octet-stream")


async def background(request: Request) -> Response:
    if request.method == "GET":
        return JSONResponse(background_log)
    tasks = BackgroundTasks()
    tasks.add_task(background_log.append, request.query_params["item"])
    return PlainTextResponse("queued", background=tasks)


async def state(request: Request) -> Response:
    return JSONResponse({"started_in": request.state.started_in, "pid": os.getpid()})


async def hold(request: Request) -> Response:
    """Answer only once the file named by ``flag`` exists (for real-server tests).

    Creates ``<flag>.held`` first, so a test knows this worker is now busy.
    """
    flag = anyio.Path(request.query_params["flag"])
    await anyio.Path(str(flag) + ".held").write_text(str(os.getpid()))
    with anyio.fail_after(20):
        while not await flag.exists():
            await anyio.sleep(0.01)
    return JSONResponse({"pid": os.getpid()})


async def events(request: Request) -> Response:
    """Server-sent events, each sent only once the client acknowledged the one before.

    The client acknowledges event ``n`` by creating the file ``<ack>-<n>``: so a test
    can show each event reaches it before the next one exists.
    """
    ack = request.query_params["ack"]

    async def stream() -> AsyncIterator[bytes]:
        for number in range(3):
            yield b"data: %d\n\n" % number
            with anyio.fail_after(20):
                while not await anyio.Path(f"{ack}-{number}").exists():
                    await anyio.sleep(0.01)

    return StreamingResponse(stream(), media_type="text/event-stream")


async def error(request: Request) -> Response:
    raise RuntimeError("the endpoint broke")


class TagMiddleware(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["x-middleware"] = "yes"
        return response


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/stream", stream),
        Route("/file", file),
        Route("/echo", echo, methods=["POST"]),
        Route("/background", background, methods=["GET", "POST"]),
        Route("/state", state),
        Route("/hold", hold),
        Route("/events", events),
        Route("/error", error),
    ],
    middleware=[Middleware(TagMiddleware)],
    lifespan=lifespan,
)

application = AsgiToWsgi(app)


def used_in_parent() -> AsgiToWsgi:
    """An AsgiToWsgi that has served a request (and run lifespan) in this process."""
    from werkzeug.test import Client

    served = AsgiToWsgi(app)
    response = Client(served).get("/")
    try:
        assert response.data == b"hello"
    finally:
        response.close()
    return served
