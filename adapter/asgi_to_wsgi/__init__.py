"""An ASGI application served by a WSGI server: :class:`AsgiToWsgi`.

The folder's modules, from the outside in: ``app`` (options, the shared loop, lifespan,
a responder per request), ``responder`` (request thread and app task), ``response``
(the iterable the WSGI server consumes), ``input_reader`` (``wsgi.input`` in bounded
pieces for ``receive()``), ``cancel`` (the app's task cancelled a grace after the client
left), ``lifespan`` and ``scope`` (pure: environ to scope).
"""

from __future__ import annotations

from adapter.asgi_to_wsgi.app import AsgiToWsgi

__all__ = ["AsgiToWsgi"]
