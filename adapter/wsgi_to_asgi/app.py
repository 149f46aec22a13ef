"""WsgiToAsgi: a WSGI application served by an ASGI server.

:class:`WsgiToAsgi` holds the options and, per event loop, the worker hop and its
limiter; it answers ``lifespan`` and refuses ``websocket`` scopes, and hands each
``http`` request to a :class:`~adapter.wsgi_to_asgi.responder.WsgiToAsgiResponder`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import anyio
import anyio.lowlevel

from adapter._runtime.loops import current_loop, loop_identity
from adapter._types import Receive, Scope, Send, WSGIApp
from adapter.wsgi_to_asgi.responder import WsgiToAsgiResponder
from adapter.wsgi_to_asgi.scopes import answer_lifespan, refuse_websocket
from adapter.wsgi_to_asgi.sizing import PoolSizer
from adapter.wsgi_to_asgi.workers import WorkerHop

__all__ = ["PerLoop", "WsgiToAsgi"]

PerLoop: TypeAlias = tuple[WorkerHop, anyio.lowlevel.EventLoopToken, Callable[..., object]]
"""A loop's worker hop (with this instance's limiter), its token and its thread-safe
``call_soon``."""


class WsgiToAsgi:
    """An ASGI 3 application that serves a PEP 3333 (WSGI) application.

    :param wsgi_app: the WSGI application.
    :param max_workers: the most calls of ``wsgi_app`` that may run at once (per
        instance and event loop).
    :param min_workers: the fewest (at most ``max_workers``).  Between the two the
        limit follows the app: it doubles while requests wait for a thread and the
        process has CPU to spare (an app that waits on a database), and halves while
        the process computes a core's worth in long calls (more threads would only
        take turns at the GIL); see :mod:`adapter.wsgi_to_asgi.sizing`.  Equal to
        ``max_workers``, the limit is fixed.
    :param max_request_body: in bytes: answer 413 without calling the app when
        ``Content-Length`` is larger, and make ``wsgi.input`` raise
        :class:`adapter.wsgi_to_asgi.streams.RequestBodyTooLarge` once a body without a length grows
        past it.  ``None`` for no limit.
    :raises ValueError: when ``max_workers`` or ``min_workers`` is less than 1, or
        ``max_request_body`` negative.
    """

    def __init__(
        self,
        wsgi_app: WSGIApp,
        *,
        max_workers: int = 40,
        min_workers: int = 1,
        max_request_body: int | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        if min_workers < 1:
            raise ValueError(f"min_workers must be at least 1, not {min_workers}")
        if max_request_body is not None and max_request_body < 0:
            raise ValueError(f"max_request_body must be None or >= 0, not {max_request_body}")
        self.wsgi_app = wsgi_app
        self.max_workers = max_workers
        self.min_workers = min(min_workers, max_workers)
        self.max_request_body = max_request_body
        self._per_loop: tuple[object, PerLoop] | None = None

    def limiter(self) -> anyio.CapacityLimiter:
        """The capacity limiter bounding this instance's worker threads on this loop.

        One per event loop, created on first use there (a limiter belongs to a loop).
        """
        return self.for_this_loop()[0].limiter

    def for_this_loop(self) -> PerLoop:
        """This loop's worker hop, token (for threads to hop back) and thread-safe call_soon.

        Made once per event loop, on first use there (a limiter belongs to a loop).
        """
        loop = loop_identity()
        cached = self._per_loop
        if cached is not None and cached[0] is loop:
            return cached[1]
        handle = current_loop()
        limiter = anyio.CapacityLimiter(self.max_workers)
        sizer = None
        if self.min_workers < self.max_workers:
            sizer = PoolSizer(limiter, self.min_workers, self.max_workers)
        hop = WorkerHop(handle, limiter, sizer)
        per_loop = (hop, anyio.lowlevel.current_token(), handle.call_soon_threadsafe)
        self._per_loop = (loop, per_loop)
        return per_loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection.

        :raises ValueError: for a scope type other than ``http``, ``websocket`` and
            ``lifespan``.
        :raises Exception: what the WSGI app raised, after a 500 went out when the
            response had not started.
        """
        kind = scope["type"]
        if kind == "http":
            await WsgiToAsgiResponder(self, scope, receive, send).run()
        elif kind == "lifespan":
            await answer_lifespan(receive, send)
        elif kind == "websocket":
            await refuse_websocket(receive, send)
        else:
            raise ValueError(f"WsgiToAsgi serves http, websocket and lifespan scopes, not {kind!r}")
