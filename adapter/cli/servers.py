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
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from adapter._types import ASGIApp, Receive, Scope, Send
from adapter.cli.launchers import (
    WORKER_TARGET,
    Launch,
    host_port,
    run_daphne,
    run_granian,
    run_gunicorn,
    run_hypercorn,
    run_uvicorn,
    run_waitress,
    run_wsgiref,
)

__all__ = [
    "OPTIONS",
    "SERVERS",
    "WORKER_TARGET",
    "Launch",
    "Server",
    "host_port",
    "is_coroutine_callable",
    "served_app",
]

Protocol: TypeAlias = Literal["asgi", "wsgi"]

OPTIONS = {
    "--threads": "threads",
    "--reload": "reload",
    "--root-path": "root_path",
    "--forwarded-allow-ips": "forwarded_allow_ips",
    "--ssl-certfile": "ssl_certfile",
    "--ssl-keyfile": "ssl_keyfile",
    "--uds": "uds",
    "--": "server_args",
}
"""The options only some servers honour, and the :class:`Launch` field each sets."""


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
    options: frozenset[str]
    """The options of :data:`OPTIONS` this server honours."""
    environment: str
    """The environment settings the server reads itself, as the docs name them ("" for none)."""

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


_ALL = frozenset(OPTIONS)
SERVERS: dict[str, Server] = {
    server.name: server
    for server in [
        Server(
            "uvicorn",
            "asgi",
            "uvicorn",
            True,
            run_uvicorn,
            _ALL - {"--threads"},
            "UVICORN_* variables",
        ),
        Server(
            "hypercorn",
            "asgi",
            "hypercorn",
            True,
            run_hypercorn,
            _ALL - {"--threads", "--forwarded-allow-ips"},
            "",
        ),
        Server(
            "granian",
            "asgi",
            "granian",
            True,
            run_granian,
            _ALL - {"--threads", "--forwarded-allow-ips"},
            "GRANIAN_* variables",
        ),
        Server(
            "daphne",
            "asgi",
            "daphne",
            False,
            run_daphne,
            _ALL - {"--threads", "--forwarded-allow-ips", "--reload"},
            "",
        ),
        Server(
            "gunicorn",
            "wsgi",
            "gunicorn",
            True,
            run_gunicorn,
            _ALL - {"--reload"},
            "GUNICORN_CMD_ARGS",
        ),
        Server(
            "waitress",
            "wsgi",
            "waitress",
            False,
            run_waitress,
            _ALL - {"--reload", "--ssl-certfile", "--ssl-keyfile"},
            "",
        ),
        Server("wsgiref", "wsgi", None, False, run_wsgiref, frozenset(), ""),
    ]
}
"""Every server ``--server`` accepts, by name; uvicorn, the default, first."""

if sys.platform == "win32":  # pragma: no cover - gunicorn needs fork
    del SERVERS["gunicorn"]
