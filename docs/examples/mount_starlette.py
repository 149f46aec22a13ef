"""A legacy Flask app mounted under /legacy beside new Starlette endpoints."""

from __future__ import annotations

from hello_flask import flask_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from adapter import WsgiToAsgi


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/health", health),
        # Flask sees SCRIPT_NAME="/legacy", so its url_for() builds /legacy/... links.
        Mount("/legacy", app=WsgiToAsgi(flask_app)),
    ]
)
