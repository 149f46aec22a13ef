"""A bare ASGI app that reads its body with receive() and echoes it, for AsgiToWsgi.

Served by gunicorn in ``tests/asgi_to_wsgi/test_bad_requests.py``: on
``http.disconnect`` it returns without answering, as the ASGI spec allows.
"""

from __future__ import annotations

from adapter import AsgiToWsgi
from adapter._types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


application = AsgiToWsgi(app)
