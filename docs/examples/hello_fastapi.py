"""A FastAPI app served by any WSGI server: gunicorn, waitress, mod_wsgi or Passenger."""

from __future__ import annotations

from fastapi import FastAPI

from adapter import AsgiToWsgi

api = FastAPI()


@api.get("/")
async def hello(name: str = "world") -> dict[str, str]:
    return {"hello": name}


@api.post("/items")
async def create_item(item: dict[str, int]) -> dict[str, int]:
    return {"count": len(item)}


# The one line: a PEP 3333 application that runs api on adapter's event loop thread.
application = AsgiToWsgi(api)
