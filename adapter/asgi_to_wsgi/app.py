"""AsgiToWsgi: an ASGI application served by a WSGI server.

Each WSGI request runs the ASGI app as a task on the process-wide loop of
:mod:`adapter._runtime.shared_loop` (one thread per process, shared by every instance,
started by the first request and anew in a forked child);
:mod:`adapter.asgi_to_wsgi.responder` serves the request (the app's task is
:mod:`adapter.asgi_to_wsgi.app_task`),
:mod:`adapter.asgi_to_wsgi.lifespan` runs the lifespan protocol, and
:mod:`adapter.asgi_to_wsgi.scope` translates the environ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from adapter._runtime.shared_loop import SharedLoop, get_loop
from adapter._types import ASGIApp, Environ
from adapter.asgi_to_wsgi.lifespan import LIFESPAN_TIMEOUT, Lifespan
from adapter.asgi_to_wsgi.responder import AsgiToWsgiResponder
from adapter.asgi_to_wsgi.scope import build_scope

if TYPE_CHECKING:
    # typeshed's protocol, so type checkers accept us wherever a WSGI app is expected.
    from _typeshed.wsgi import StartResponse

__all__ = ["AsgiToWsgi"]


class AsgiToWsgi:
    """A PEP 3333 application that serves an ASGI 3 application.

    ::

        application = AsgiToWsgi(fastapi_app)     # then: gunicorn module:application

    Building an instance starts nothing; the first request starts the shared event loop
    thread (if no other instance has) and the app's lifespan startup.

    :param asgi_app: the ASGI 3 application.
    :param backend: the anyio backend to run it on, ``"asyncio"`` or ``"trio"``.
    :param lifespan: ``"auto"`` (run lifespan; carry on if the app does not support
        it), ``"on"`` (a failed startup fails every request with
        :class:`adapter.LifespanFailed`) or ``"off"``.  An app that raises on the
        lifespan scope, calls ``receive()`` again before answering
        ``lifespan.startup``, or sends a message that is not a lifespan one, does not
        support lifespan; its lifespan task is cancelled.
    :param lifespan_timeout: seconds the first request waits for lifespan startup to
        complete (and :meth:`close` for shutdown).  Past it the lifespan task is
        cancelled; ``"auto"`` logs a warning and serves without lifespan, ``"on"``
        fails every request with :class:`adapter.LifespanFailed`.
    :param backend_options: passed to :func:`anyio.run` for the shared loop, e.g.
        ``{"use_uvloop": True}`` for uvloop on asyncio (ignored, with a warning, when
        uvloop is not installed).  Instances with the same backend and options share
        one loop.
    :raises ValueError: for an unknown ``backend`` or ``lifespan``, or a
        ``lifespan_timeout`` that is not positive.
    """

    def __init__(
        self,
        asgi_app: ASGIApp,
        *,
        backend: str = "asyncio",
        lifespan: str = "auto",
        lifespan_timeout: float = LIFESPAN_TIMEOUT,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"unknown backend {backend!r}: use 'asyncio' or 'trio'")
        self.asgi_app = asgi_app
        self.backend = backend
        self.backend_options = dict(backend_options or {})
        self._lifespan = Lifespan(asgi_app, lifespan, lifespan_timeout)
        self._loop: SharedLoop | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (PEP 3333).

        :param environ: the request environ.
        :param start_response: the server's ``start_response``.
        :raises adapter.LifespanFailed: if lifespan startup failed (see ``lifespan``).
        :raises RuntimeError: if called on the shared event loop's own thread.
        """
        loop = self._loop
        # First use, a forked child, or (never expected) a loop thread that died.
        if loop is None or not loop.alive:
            loop = self._loop = get_loop(self.backend, self.backend_options)
        if loop.in_loop_thread():
            raise RuntimeError(
                "AsgiToWsgi was called on its own event loop thread, where it would wait "
                "for itself forever; call it from a WSGI server's thread (or a worker "
                "thread, e.g. through WsgiToAsgi)"
            )
        self._lifespan.ensure_started(loop)
        scope = build_scope(environ, state=self._lifespan.state)
        return AsgiToWsgiResponder(self.asgi_app, scope, environ, loop).respond(start_response)

    def close(self) -> None:
        """Run lifespan shutdown, if startup ran in this process; once.

        Also done at interpreter exit for every instance not closed before.

        :raises adapter.LifespanFailed: if shutdown failed with ``lifespan="on"``.
        :raises RuntimeError: if called on the event loop thread itself.
        """
        self._lifespan.shutdown()
