"""A FastAPI app for AsgiToWsgi: a lifespan, a JSON POST, an upload (issue 3 point 10).

``application`` is the WSGI app for gunicorn and waitress.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, UploadFile
from pydantic import BaseModel

from adapter import AsgiToWsgi


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan", "started_in": os.getpid()}


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    quantity: int


@app.get("/")
async def root(request: Request) -> dict[str, Any]:
    return {"greeting": request.state.greeting, "started_in": request.state.started_in}


@app.post("/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "total": item.quantity * 2}


@app.post("/upload")
async def upload(file: UploadFile) -> dict[str, Any]:
    data = await file.read()
    return {
        "filename": file.filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@app.get("/sync")
def sync_endpoint() -> dict[str, str]:
    # FastAPI runs plain functions in anyio's thread pool, on the shared loop's backend.
    return {"ran": "in a worker thread"}


application = AsgiToWsgi(app)
