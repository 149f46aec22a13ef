"""A legacy Flask app mounted under /legacy beside a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from hello_flask import flask_app

from adapter import WsgiToAsgi

app = FastAPI()


@app.get("/api/status")
async def status() -> dict[str, str]:
    return {"status": "ok"}


# Everything under /legacy goes to Flask; FastAPI routes and docs stay where they are.
app.mount("/legacy", WsgiToAsgi(flask_app))
