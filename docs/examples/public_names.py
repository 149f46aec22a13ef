"""Everything public is importable from ``adapter``."""

from __future__ import annotations

from adapter import (
    AsgiToWsgi,
    ClientDisconnected,
    LifespanFailed,
    ProtocolError,
    RequestBodyTooLarge,
    WsgiToAsgi,
    async_to_sync,
    sync_to_async,
)

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
