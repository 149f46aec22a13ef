"""adapter: WSGI apps on ASGI servers, ASGI apps on WSGI servers, and the helpers between.

The public names, and nothing else::

    from adapter import WsgiToAsgi, AsgiToWsgi, sync_to_async, async_to_sync, ClientDisconnected
"""

from __future__ import annotations

from adapter.asgi_to_wsgi.app import AsgiToWsgi
from adapter.exceptions import (
    ClientDisconnected,
    LifespanFailed,
    ProtocolError,
    RequestBodyTooLarge,
)
from adapter.sync import async_to_sync, sync_to_async
from adapter.wsgi_to_asgi.app import WsgiToAsgi

__all__ = [
    "AsgiToWsgi",
    "ClientDisconnected",
    "LifespanFailed",
    "ProtocolError",
    "RequestBodyTooLarge",
    "WsgiToAsgi",
    "async_to_sync",
    "sync_to_async",
]

__version__ = "0.1.0"
