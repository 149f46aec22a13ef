"""The command line's options: ``python -m adapter --help`` and ``serve --help``.

:func:`build_parser` is the one place every option is declared and documented; the
docs' command-line page shows its ``--help`` output as it is.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from adapter import __version__
from adapter.cli.launchers import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_THREADS
from adapter.cli.servers import SERVERS

__all__ = ["CONFIG_ENV", "PROG", "build_parser"]

PROG = "python -m adapter"
CONFIG_ENV = "ADAPTER_SERVE"
"""The environment variable through which worker processes learn what to serve."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to look), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 1 and 65535, got {value}")
    return value


_SERVER_LINES = "\n".join(
    f"  {name:<10} {server.protocol.upper()}"
    + ("" if server.module is None else f"   {server.install_hint}")
    for name, server in SERVERS.items()
)

_SERVE_EPILOG = f"""\
servers (each is an optional extra; uvicorn comes with [serve]):
{_SERVER_LINES}

options marked with a server list are refused, in one line, by the other servers; the
servers' own environment settings (UVICORN_*, GRANIAN_*, GUNICORN_CMD_ARGS) are honoured
where an option above is not given, and everything after -- goes to the server as it is.

examples:
  {PROG} serve                                         the built-in demo on uvicorn
  {PROG} serve legacy.wsgi:application                 a Django WSGI app on uvicorn
  {PROG} serve main:app --server gunicorn --workers 4  a FastAPI app on gunicorn
  {PROG} serve app.py:create_app --factory             build the app by calling create_app()
  {PROG} serve main:app --reload                       restart on code changes
  {PROG} serve main:app --uds /run/app.sock --root-path /api --forwarded-allow-ips '*'
  {PROG} serve main:app -- --timeout-keep-alive 30     a uvicorn option, as it is

Worker processes that a server starts by import string (uvicorn --workers, hypercorn,
granian) import adapter.cli:worker_app, which rebuilds the same app from the
{CONFIG_ENV} environment variable this command sets.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``python -m adapter``: every option documented in ``--help``."""
    parser = _Parser(
        prog=PROG,
        description="adapter: WSGI apps on ASGI servers, ASGI apps on WSGI servers.",
    )
    parser.add_argument("--version", action="version", version=f"adapter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser(
        "serve",
        help="serve a WSGI or ASGI app (or the built-in demo) on a server of your choice",
        description="Serve APP on a server, wrapping it when the server speaks the other\n"
        "protocol: a WSGI app on an ASGI server through adapter.WsgiToAsgi, an ASGI app\n"
        "on a WSGI server through adapter.AsgiToWsgi.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = serve_parser.add_argument
    add(
        "app",
        nargs="?",
        metavar="APP",
        help="the app: 'module:attribute' or "
        "'path/to/file.py:attribute' (default: the built-in demo)",
    )
    add(
        "--server",
        default="uvicorn",
        choices=list(SERVERS),
        metavar="SERVER",
        help=f"the server to run: {', '.join(SERVERS)} (default: %(default)s)",
    )
    add(
        "--interface",
        default="auto",
        choices=["auto", "wsgi", "asgi"],
        help="the app's protocol; auto: an 'async def' call is ASGI, a plain callable "
        "taking (environ, start_response) WSGI (default: %(default)s)",
    )
    add(
        "--factory",
        action="store_true",
        help="APP names a callable taking no arguments that returns the app",
    )
    add("--host", help=f"the address to listen on (default: {DEFAULT_HOST})")
    add("--port", type=_port, help=f"the port to listen on (default: {DEFAULT_PORT})")
    add(
        "--workers",
        type=_positive,
        metavar="N",
        help="worker processes, for uvicorn, hypercorn, granian and gunicorn (default: 1)",
    )
    add(
        "--threads",
        type=_positive,
        metavar="N",
        help="threads per process on gunicorn (gthread worker; 1: the sync worker) and "
        f"waitress; each open stream holds one (default: {DEFAULT_THREADS})",
    )
    add(
        "--reload",
        action="store_true",
        help="restart when the app's files change, for development (uvicorn, hypercorn, granian)",
    )
    add(
        "--root-path",
        metavar="PATH",
        help="the prefix the app is mounted under behind a proxy, e.g. /api: the app's "
        "SCRIPT_NAME / root_path",
    )
    add(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="trust X-Forwarded-For/-Proto from these proxy addresses (comma separated, * "
        "for any), as behind nginx (uvicorn, gunicorn, waitress)",
    )
    add("--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    add("--ssl-keyfile", metavar="FILE", help="the private key of --ssl-certfile (PEM)")
    add(
        "--uds",
        metavar="PATH",
        help="listen on this Unix domain socket instead of --host/--port",
    )
    add(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the server's and adapter's log level (default: %(default)s)",
    )
    return parser
