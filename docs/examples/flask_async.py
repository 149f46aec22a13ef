"""A Flask view that awaits async code, served by an ASGI server."""

from __future__ import annotations

import anyio
from flask import Flask

from adapter import WsgiToAsgi, async_to_sync

PRICES = {"apple": 3, "pear": 5}


async def lookup_price(sku: str) -> int:
    # Stands in for an async database driver or HTTP client call.
    await anyio.sleep(0.001)
    return PRICES[sku]


flask_app = Flask(__name__)


@flask_app.get("/price/<sku>")
def price(sku: str) -> dict[str, int | str]:
    # The view runs in a worker thread; the coroutine runs on the server's event loop,
    # so it can share the server's async connection pools and clients.
    return {"sku": sku, "price": async_to_sync(lookup_price)(sku)}


app = WsgiToAsgi(flask_app)
