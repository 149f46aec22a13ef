"""The exceptions adapter raises, in one place."""

from __future__ import annotations

__all__ = ["ClientDisconnected", "ProtocolError"]


class ClientDisconnected(OSError):
    """The client went away before the request body was complete.

    Raised by ``environ["wsgi.input"]`` reads in a WSGI app served by
    :class:`adapter.WsgiToAsgi` when the ASGI server reports ``http.disconnect``
    before the last body message, so the app never mistakes a cut-off upload for a
    short body.  Being an :class:`OSError`, it is handled wherever an app already
    handles a broken connection.
    """


class ProtocolError(RuntimeError):
    """The wrapped application broke the protocol it is spoken to in.

    Raised by :class:`adapter.WsgiToAsgi` when a WSGI app misuses
    ``start_response`` (called twice without ``exc_info``, a malformed status or
    header, a body before ``start_response``), and by :class:`adapter.AsgiToWsgi`
    when an ASGI app sends a message out of order or of an unknown type.  The
    message names the offending call or message type.
    """
