"""A FastAPI app for the command-line tests, as the issue's ``main:app`` on gunicorn."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from tests.apps.cli_common import answer

app = FastAPI()


@app.get("/{path:path}")
def everything(request: Request) -> Response:
    """A plain ``def``: FastAPI runs it in a thread, so /hold blocks only this request."""
    body = answer("asgi", request.url.path, request.url.query, False)
    return Response(body, media_type="application/json")
