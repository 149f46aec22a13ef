"""A WSGI application served by an ASGI server: :class:`WsgiToAsgi`.

The folder's modules, from the outside in: ``responder`` (the ASGI application and one
request on the loop), ``call`` (one call of the WSGI app, in a worker thread),
``channel`` (``receive()``/``send()`` and the disconnect watch), ``pipes`` (bounded byte
pipes between loop and worker), ``workers`` (a step handed to a worker thread),
``streams`` (``wsgi.input``, ``wsgi.errors``, ``wsgi.file_wrapper``), ``scopes``
(lifespan and websocket scopes) and ``environ`` (pure: scope to environ).
"""

from __future__ import annotations

from adapter.wsgi_to_asgi.app import WsgiToAsgi

__all__ = ["WsgiToAsgi"]
