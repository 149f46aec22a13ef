"""A Starlette app with a lifespan and a server-sent-events stream, on a WSGI server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from adapter import AsgiToWsgi


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
    # Runs once per process, before the first request; the state it yields is copied
    # into every request's scope["state"].  The shutdown half runs at close() or exit.
    yield {"greeting": "hello from the lifespan"}


async def homepage(request: Request) -> JSONResponse:
    return JSONResponse({"greeting": request.state.greeting})


async def ticks(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        for number in range(3):
            yield f"data: tick {number}\n\n"

    # Each event reaches the client as soon as it is sent: no buffering in between.
    return StreamingResponse(events(), media_type="text/event-stream")


starlette_app = Starlette(
    routes=[Route("/", homepage), Route("/ticks", ticks)],
    lifespan=lifespan,
)

application = AsgiToWsgi(starlette_app)
