"""Everything public is importable from ``adapter``."""

from __future__ import annotations

from adapter import (
    AsgiToWsgi,
    ClientDisconnected,
    ProtocolError,
    WsgiToAsgi,
    async_to_sync,
    sync_to_async,
)

__all__ = [
    "AsgiToWsgi",
    "ClientDisconnected",
    "ProtocolError",
    "WsgiToAsgi",
    "async_to_sync",
    "sync_to_async",
]
