"""The exceptions adapter raises, in one place; each says who raises it."""

from __future__ import annotations

__all__ = [
    "ClientDisconnected",
    "ClientGone",
    "LifespanFailed",
    "ProtocolError",
    "RequestBodyTooLarge",
]


class ClientDisconnected(OSError):
    """The client went away before the request body was complete.

    Raised by ``environ["wsgi.input"]`` reads in a WSGI app served by
    :class:`adapter.WsgiToAsgi` when the ASGI server reports ``http.disconnect``
    before the last body message, so the app never mistakes a cut-off upload for a
    short body, and by its ``write()`` once the client is gone.  Being an
    :class:`OSError`, it is handled wherever an app already handles a broken
    connection.
    """

    @classmethod
    def during_body(cls) -> ClientDisconnected:
        """The error for a read of a request body the client cut short."""
        return cls("the client disconnected before the request body was complete")

    @classmethod
    def during_write(cls) -> ClientDisconnected:
        """The error for a PEP 3333 ``write()`` after the client left."""
        return cls("the client disconnected; write() could not send")


class RequestBodyTooLarge(OSError):
    """The request body grew past ``max_request_body``.

    Raised by ``environ["wsgi.input"]`` reads in an app served by
    :class:`adapter.WsgiToAsgi` when a body without ``Content-Length`` grows past the
    limit.  If the app lets it propagate, the client gets a 413.  (A body whose
    ``Content-Length`` is over the limit is answered 413 before the app is called.)
    """


class ClientGone(OSError):
    """The WSGI server closed the response: the client of an ASGI app is gone.

    Raised by ``send()`` in an ASGI app served by :class:`adapter.AsgiToWsgi` once the
    WSGI server closed the response iterable early (ASGI HTTP spec: ``send()`` on a
    closed connection raises an :class:`OSError`); ``receive()`` then returns
    ``http.disconnect``.
    """


class LifespanFailed(RuntimeError):
    """The ASGI app's lifespan startup or shutdown failed.

    Raised by :class:`adapter.AsgiToWsgi` requests when startup failed (with
    ``lifespan="on"``, or in ``"auto"`` when the app itself sends
    ``lifespan.startup.failed``), and by :meth:`adapter.AsgiToWsgi.close` when
    shutdown failed with ``lifespan="on"``.
    """


class ProtocolError(RuntimeError):
    """The wrapped application broke the protocol it is spoken to in.

    Raised by :class:`adapter.WsgiToAsgi` when a WSGI app misuses
    ``start_response`` (called twice without ``exc_info``, a malformed status or
    header, a body before ``start_response``), and by :class:`adapter.AsgiToWsgi`
    when an ASGI app sends a message out of order or of an unknown type.  The
    message names the offending call or message type.
    """
