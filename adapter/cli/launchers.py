"""Starting each server from the command line's options: one function per server.

Each function turns a :class:`Launch` into the server's own terms and runs the server in
this process until it stops.  Where a server has a command line of its own that reads
its environment (uvicorn's ``UVICORN_*`` variables, granian's ``GRANIAN_*``, gunicorn's
``GUNICORN_CMD_ARGS``), it is started through that command line, so what the user set
there is honoured: an option given to ``python -m adapter serve`` wins over the
environment, which wins over adapter's defaults.  The words after ``--``
(:attr:`Launch.server_args`) go to the server as they are.

Servers that import their app by string in each worker (uvicorn, hypercorn, granian) are
handed :data:`WORKER_TARGET`, a factory that rebuilds the served app from the
``ADAPTER_SERVE`` environment variable the command line sets.  daphne, gunicorn, waitress
and wsgiref are handed the app object the command line loaded; gunicorn forks its
workers from this process, as with its ``--preload``.
"""

from __future__ import annotations

import getopt
import logging
import signal
import socketserver
from dataclasses import dataclass
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_THREADS", "WORKER_TARGET", "Launch"]

logger = logging.getLogger("adapter")

WORKER_TARGET = "adapter.cli:worker_app"
"""The factory a server's worker processes import: it rebuilds the served app there."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_THREADS = 8
"""Threads per process on gunicorn and waitress: one open stream (server-sent events)
holds a thread for as long as it lasts, so one thread would leave every other request
waiting behind it."""


@dataclass(frozen=True)
class Launch:
    """What a server is started with: the served app and the command line's options.

    ``None`` means "not given": the server's own environment settings, then adapter's
    defaults, decide.
    """

    app: Any
    host: str | None = None
    port: int | None = None
    workers: int | None = None
    log_level: str = "info"
    threads: int | None = None
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    root_path: str | None = None
    forwarded_allow_ips: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    uds: str | None = None
    server_args: tuple[str, ...] = ()

    @property
    def access_log(self) -> bool:
        """Whether each request is logged: at the ``info`` and ``debug`` levels, as uvicorn does."""
        return self.log_level in ("info", "debug")

    @property
    def bind_host(self) -> str:
        """The host to listen on, given or default."""
        return DEFAULT_HOST if self.host is None else self.host

    @property
    def bind_port(self) -> int:
        """The port to listen on, given or default."""
        return DEFAULT_PORT if self.port is None else self.port


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets.

    :param host: a host name or address.
    :param port: a port number.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _flags(pairs: list[tuple[str, object | None]]) -> list[str]:
    """``--flag value`` for each pair whose value is given (``True``: the bare flag)."""
    argv: list[str] = []
    for flag, value in pairs:
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` for servers that run in this process.

    The default action kills the process outright; exiting normally runs ``atexit``
    handlers, which is where ``AsgiToWsgi`` runs the app's lifespan shutdown.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def run_uvicorn(launch: Launch) -> None:
    """uvicorn through its own command line, which reads ``UVICORN_*`` variables."""
    from uvicorn.main import main as uvicorn_command

    argv = [WORKER_TARGET, "--factory", "--interface", "asgi3"]
    argv += _flags(
        [
            ("--host", launch.host),
            ("--port", launch.port),
            ("--uds", launch.uds),
            ("--workers", launch.workers),
            ("--root-path", launch.root_path),
            ("--forwarded-allow-ips", launch.forwarded_allow_ips),
            ("--ssl-certfile", launch.ssl_certfile),
            ("--ssl-keyfile", launch.ssl_keyfile),
            ("--reload", launch.reload),
        ]
    )
    for directory in launch.reload_dirs if launch.reload else ():
        argv += ["--reload-dir", directory]
    # click: an argument beats the UVICORN_* variable, which beats default_map.
    defaults = {"host": DEFAULT_HOST, "port": DEFAULT_PORT, "log_level": launch.log_level}
    uvicorn_command.main(
        args=[*argv, *launch.server_args], prog_name="uvicorn", default_map=defaults
    )


def run_hypercorn(launch: Launch) -> None:
    """hypercorn through its own command line (it reads no environment variables)."""
    from hypercorn.__main__ import main as hypercorn_command

    bind = f"unix:{launch.uds}" if launch.uds else host_port(launch.bind_host, launch.bind_port)
    argv = ["--bind", bind, "--log-level", launch.log_level.upper(), "--error-logfile", "-"]
    argv += _flags(
        [
            ("--workers", launch.workers),
            ("--access-logfile", "-" if launch.access_log else None),
            ("--root-path", launch.root_path),
            ("--certfile", launch.ssl_certfile),
            ("--keyfile", launch.ssl_keyfile),
            ("--reload", launch.reload),
        ]
    )
    # hypercorn evaluates what follows the last colon in the module's namespace, so a
    # call builds the app; the "asgi:" prefix stops it guessing the protocol.
    exit_code = hypercorn_command([*argv, *launch.server_args, f"asgi:{WORKER_TARGET}()"])
    if exit_code:
        raise SystemExit(exit_code)


def run_granian(launch: Launch) -> None:
    """granian through its own command line, which reads ``GRANIAN_*`` variables."""
    from granian.cli import cli as granian_command

    argv = [WORKER_TARGET, "--factory", "--interface", "asgi"]
    argv += _flags(
        [
            ("--host", launch.host),
            ("--port", launch.port),
            ("--uds", launch.uds),
            ("--workers", launch.workers),
            ("--url-path-prefix", launch.root_path),
            ("--ssl-certificate", launch.ssl_certfile),
            ("--ssl-keyfile", launch.ssl_keyfile),
            ("--reload", launch.reload),
        ]
    )
    for directory in launch.reload_dirs if launch.reload else ():
        argv += ["--reload-paths", directory]
    defaults = {
        "host": DEFAULT_HOST,
        "port": DEFAULT_PORT,
        "log_level": launch.log_level,
        "log_access_enabled": launch.access_log,
    }
    granian_command.main(
        args=[*argv, *launch.server_args],
        prog_name="granian",
        auto_envvar_prefix="GRANIAN",
        default_map=defaults,
    )


def run_daphne(launch: Launch) -> None:
    """daphne through its own command line, handed the app object."""
    # Importing daphne.cli installs Twisted's asyncio reactor, so it comes first.
    from daphne.cli import CommandLineInterface

    class Daphne(CommandLineInterface):  # type: ignore[misc]  # daphne ships no types
        """daphne's command line, serving the app the command line already loaded."""

        def load_asgi_app(self, path: str) -> Any:
            return launch.app

    if launch.uds:
        argv = ["--unix-socket", launch.uds]
    elif launch.ssl_certfile:
        # A Twisted endpoint description: colons in an IPv6 host must be escaped.
        interface = launch.bind_host.replace(":", r"\:")
        endpoint = (
            f"ssl:port={launch.bind_port}:interface={interface}"
            f":privateKey={launch.ssl_keyfile}:certKey={launch.ssl_certfile}"
        )
        argv = ["--endpoint", endpoint]
    else:
        argv = ["--bind", launch.bind_host, "--port", str(launch.bind_port)]
    argv += ["--verbosity", "2" if launch.log_level == "debug" else "1"]
    argv += _flags([("--root-path", launch.root_path)])
    Daphne().run([*argv, *launch.server_args, WORKER_TARGET])


def run_gunicorn(launch: Launch) -> None:
    """gunicorn's arbiter: adapter's defaults, then ``GUNICORN_CMD_ARGS``, then options."""
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
        """gunicorn's arbiter, configured from our options rather than its argv."""

        def load_config(self) -> None:
            self._set(
                bind=[host_port(DEFAULT_HOST, DEFAULT_PORT)],
                loglevel=launch.log_level,
                accesslog="-" if launch.access_log else None,
                threads=DEFAULT_THREADS,
            )
            # As gunicorn's own command line does: its environment variable, then argv.
            parser = self.cfg.parser()
            for argv in (self.cfg.get_cmd_args_from_env(), list(launch.server_args)):
                given = vars(parser.parse_args(argv))
                given.pop("args", None)
                self._set(**given)
            if launch.uds:
                self._set(bind=[f"unix:{launch.uds}"])
            elif launch.host is not None or launch.port is not None:
                self._set(bind=[host_port(launch.bind_host, launch.bind_port)])
            self._set(
                workers=launch.workers,
                threads=launch.threads,
                forwarded_allow_ips=launch.forwarded_allow_ips,
                certfile=launch.ssl_certfile,
                keyfile=launch.ssl_keyfile,
                # gunicorn takes SCRIPT_NAME from its environment and strips it from
                # PATH_INFO (PEP 3333: SCRIPT_NAME is where the app is mounted).
                raw_env=[f"SCRIPT_NAME={launch.root_path}"] if launch.root_path else None,
            )

        def _set(self, **settings: Any) -> None:
            for name, value in settings.items():
                if value is not None:
                    self.cfg.set(name.lower(), value)

        def load(self) -> Any:
            # Loaded once here, before the fork: every worker starts with the same app.
            # AsgiToWsgi starts its event loop thread in the worker, on the first request.
            return launch.app

    Gunicorn().run()


def run_waitress(launch: Launch) -> None:
    """waitress, with its own options (``waitress-serve``'s) after ``--``."""
    import waitress
    from waitress.adjustments import Adjustments

    options: dict[str, Any] = {"threads": launch.threads or DEFAULT_THREADS}
    if launch.uds:
        options["unix_socket"] = launch.uds
    else:
        options.update(host=launch.bind_host, port=launch.bind_port)
    if launch.root_path:
        options["url_prefix"] = launch.root_path
    if launch.forwarded_allow_ips:
        options.update(
            trusted_proxy=launch.forwarded_allow_ips,
            trusted_proxy_headers="x-forwarded-for x-forwarded-host x-forwarded-proto",
            clear_untrusted_proxy_headers=True,
        )
    try:
        given, rest = Adjustments.parse_args(list(launch.server_args))
    except getopt.GetoptError as exc:
        raise SystemExit(f"waitress: {exc} (after -- come waitress-serve options)") from None
    if rest:
        raise SystemExit(f"waitress: unexpected {' '.join(rest)!r} after --")
    options.update({k: v for k, v in given.items() if k not in ("help", "call")})
    _exit_on_sigterm()
    waitress.serve(launch.app, **options)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so a stream does not block the rest."""

    daemon_threads = True


class _LoggingHandler(WSGIRequestHandler):
    """wsgiref's handler, logging requests through the ``adapter`` logger, not stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s - %s", self.address_string(), format % args)


def run_wsgiref(launch: Launch) -> None:
    """The standard library's server, a thread per request."""
    _exit_on_sigterm()
    with make_server(
        launch.bind_host,
        launch.bind_port,
        launch.app,
        server_class=_ThreadingWSGIServer,
        handler_class=_LoggingHandler,
    ) as httpd:
        address = host_port(launch.bind_host, launch.bind_port)
        logger.info("wsgiref serving on http://%s", address)
        httpd.serve_forever()
