"""How ``python -m adapter serve`` starts each server.

Every server is described by a :class:`Server`: the protocol it speaks, the module that
must import for it to be installed, the extra that installs it, whether it can run
several worker processes, and a function that starts it and returns when it stops.

Servers started in this process are handed the application object.  Servers that start
their workers by import string (uvicorn with ``--workers``, hypercorn, granian) are
handed :data:`WORKER_TARGET` instead: a factory in :mod:`adapter.cli.main` that each worker
calls to import the user's application again and wrap it, guided by the
``ADAPTER_SERVE`` environment variable the command line sets before the server starts.
gunicorn forks its workers from this process, so it is handed the object, loaded before
the fork as with its ``--preload``; ``AsgiToWsgi`` starts its event loop thread in each
worker on the first request, so nothing of it crosses the fork.
"""

from __future__ import annotations

import inspect
import logging
import signal
import socketserver
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal, TypeAlias
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from adapter._types import ASGIApp, Receive, Scope, Send

__all__ = [
    "SERVERS",
    "WORKER_TARGET",
    "Launch",
    "Server",
    "host_port",
    "is_coroutine_callable",
    "served_app",
]

logger = logging.getLogger("adapter")

Protocol: TypeAlias = Literal["asgi", "wsgi"]

WORKER_TARGET = "adapter.cli.main:worker_app"
"""The factory a server's worker processes import: it rebuilds the served app there."""


@dataclass(frozen=True)
class Launch:
    """What a server is started with: the served app and the command line's options."""

    app: Any
    host: str
    port: int
    workers: int
    log_level: str

    @property
    def access_log(self) -> bool:
        """Whether each request is logged: at the ``info`` and ``debug`` levels, as uvicorn does."""
        return self.log_level in ("info", "debug")


@dataclass(frozen=True)
class Server:
    """One server the command line can start."""

    name: str
    protocol: Protocol
    module: str | None
    """Imported to tell whether the server is installed; ``None`` for the standard library."""
    multiprocess: bool
    """Whether ``--workers`` above 1 is honoured."""
    run: Callable[[Launch], None]
    """Starts the server in this process; returns (or raises ``SystemExit``) when it stops."""

    @property
    def extra(self) -> str:
        """The pip extra that installs this server."""
        return self.name

    @property
    def install_hint(self) -> str:
        """The command that installs the server."""
        return f"pip install 'wsgi-asgi-adapter[{self.extra}]'"


def served_app(app: Any, interface: Protocol, protocol: Protocol) -> Any:
    """Wrap ``app`` (speaking ``interface``) for a server that speaks ``protocol``.

    :param app: the user's application, already loaded.
    :param interface: the protocol the app speaks.
    :param protocol: the protocol the server speaks.
    """
    from adapter import AsgiToWsgi, WsgiToAsgi

    if interface == "wsgi":
        return app if protocol == "wsgi" else WsgiToAsgi(app)
    asgi_app = _as_coroutine_callable(app)
    return asgi_app if protocol == "asgi" else AsgiToWsgi(asgi_app)


def is_coroutine_callable(app: object) -> bool:
    """Whether calling ``app`` runs an ``async def``: a function, or an instance's ``__call__``.

    :param app: any object.
    """
    if inspect.iscoroutinefunction(app):
        return True
    # The call goes through the type's __call__, not an instance attribute of that name.
    return not inspect.isclass(app) and inspect.iscoroutinefunction(type(app).__call__)


def _as_coroutine_callable(app: Any) -> ASGIApp:
    """Give an ASGI app whose ``__call__`` is not ``async def`` an ``async def`` face.

    daphne (through asgiref's ``guarantee_single_callable``) and hypercorn's detection
    take a plain callable for an ASGI 2 double callable or a WSGI app; an app the user
    declared ASGI with ``--interface asgi`` must not be mistaken for one.
    """
    if is_coroutine_callable(app):
        coroutine_app: ASGIApp = app
        return coroutine_app

    async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    return asgi_app


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` for servers that run in this process.

    The default action kills the process outright; exiting normally runs ``atexit``
    handlers, which is where ``AsgiToWsgi`` runs the app's lifespan shutdown.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def _run_uvicorn(launch: Launch) -> None:
    import uvicorn

    options: dict[str, Any] = {
        "host": launch.host,
        "port": launch.port,
        "log_level": launch.log_level,
        "interface": "asgi3",
    }
    if launch.workers > 1:
        # uvicorn spawns its workers and imports the app in each: it takes an import
        # string, not an object, when there are workers.
        uvicorn.run(WORKER_TARGET, factory=True, workers=launch.workers, **options)
    else:
        uvicorn.run(launch.app, **options)


def _run_hypercorn(launch: Launch) -> None:
    from hypercorn.config import Config
    from hypercorn.run import run

    config = Config()
    # hypercorn evaluates what follows the last colon in the module's namespace, so a
    # call builds the app; the "asgi:" prefix stops it guessing the protocol.
    config.application_path = f"asgi:{WORKER_TARGET}()"
    config.bind = [host_port(launch.host, launch.port)]
    config.workers = launch.workers
    config.loglevel = launch.log_level.upper()
    config.accesslog = "-" if launch.access_log else None
    config.errorlog = "-"
    exit_code = run(config)
    if exit_code:
        raise SystemExit(exit_code)


def _run_granian(launch: Launch) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server as GranianServer

    GranianServer(
        WORKER_TARGET,
        address=launch.host,
        port=launch.port,
        interface=Interfaces.ASGI,
        workers=launch.workers,
        log_level=LogLevels(launch.log_level),
        log_access=launch.access_log,
        factory=True,
    ).serve()


def _run_daphne(launch: Launch) -> None:
    # Importing daphne.server installs Twisted's asyncio reactor, so it comes first.
    from daphne.server import Server as DaphneServer

    # A Twisted endpoint description: colons in an IPv6 host must be escaped.
    interface = launch.host.replace(":", r"\:")
    DaphneServer(
        application=launch.app,
        endpoints=[f"tcp:port={launch.port}:interface={interface}"],
        verbosity=2 if launch.log_level == "debug" else 1,
    ).run()


def _run_gunicorn(launch: Launch) -> None:
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
        """gunicorn's arbiter, configured from our options rather than its argv."""

        def load_config(self) -> None:
            self.cfg.set("bind", [host_port(launch.host, launch.port)])
            self.cfg.set("workers", launch.workers)
            self.cfg.set("loglevel", launch.log_level)
            self.cfg.set("accesslog", "-" if launch.access_log else None)

        def load(self) -> Any:
            # Loaded once here, before the fork: every worker starts with the same app.
            # AsgiToWsgi starts its event loop thread in the worker, on the first request.
            return launch.app

    Gunicorn().run()


def _run_waitress(launch: Launch) -> None:
    import waitress

    _exit_on_sigterm()
    waitress.serve(launch.app, host=launch.host, port=launch.port)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so a stream does not block the rest."""

    daemon_threads = True


class _LoggingHandler(WSGIRequestHandler):
    """wsgiref's handler, logging requests through the ``adapter`` logger, not stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s - %s", self.address_string(), format % args)


def _run_wsgiref(launch: Launch) -> None:
    _exit_on_sigterm()
    with make_server(
        launch.host,
        launch.port,
        launch.app,
        server_class=_ThreadingWSGIServer,
        handler_class=_LoggingHandler,
    ) as httpd:
        logger.info("wsgiref serving on http://%s", host_port(launch.host, launch.port))
        httpd.serve_forever()


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets.

    :param host: a host name or address.
    :param port: a port number.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


SERVERS: dict[str, Server] = {
    server.name: server
    for server in [
        Server("uvicorn", "asgi", "uvicorn", True, _run_uvicorn),
        Server("hypercorn", "asgi", "hypercorn", True, _run_hypercorn),
        Server("granian", "asgi", "granian", True, _run_granian),
        Server("daphne", "asgi", "daphne", False, _run_daphne),
        Server("gunicorn", "wsgi", "gunicorn", True, _run_gunicorn),
        Server("waitress", "wsgi", "waitress", False, _run_waitress),
        Server("wsgiref", "wsgi", None, False, _run_wsgiref),
    ]
}
"""Every server ``--server`` accepts, by name; uvicorn, the default, first."""

if sys.platform == "win32":  # pragma: no cover - gunicorn needs fork
    del SERVERS["gunicorn"]
