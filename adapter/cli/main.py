"""The command line: ``python -m adapter serve [APP]``, from an app to a running server.

``serve`` imports ``APP`` (``module:attribute`` or ``path/to/file.py:attribute``), tells
whether it is WSGI or ASGI, wraps it with :class:`adapter.WsgiToAsgi` or
:class:`adapter.AsgiToWsgi` when the chosen server speaks the other protocol, and starts
the server (:mod:`adapter.cli.servers`; loading and detection are in
:mod:`adapter.cli.loading`).  With no ``APP`` it serves the built-in demo
(:mod:`adapter.cli.demo`).

Worker processes.  Servers that start workers by import string (uvicorn with
``--workers``, hypercorn, granian) import :func:`worker_app` in each worker.  It reads
the JSON the command line put in the ``ADAPTER_SERVE`` environment variable (the app,
``--factory``, the interface already detected, the server, the import path), imports the
app again the same way, and wraps it the same way, so every worker serves what the
command line checked.  A mistake in the input is reported once, by the command line,
before any server starts: one line on stderr and exit status 1 (2 for a misused option),
never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapter.cli.loading import CommandError, detect_interface, load_app, one_line
from adapter.cli.options import CONFIG_ENV, PROG, build_parser
from adapter.cli.servers import OPTIONS, SERVERS, Launch, Protocol, Server, host_port, served_app

__all__ = [
    "CONFIG_ENV",
    "CommandError",
    "configure_logging",
    "detect_interface",
    "load_app",
    "main",
    "worker_app",
]

logger = logging.getLogger("adapter")


@dataclass(frozen=True)
class ServeConfig:
    """What a worker process needs to rebuild the served app; travels as JSON."""

    app: str | None
    factory: bool
    interface: Protocol
    server: str
    import_path: list[str]
    reload: bool = False


def _load_demo(server: Server) -> Any:
    try:
        import adapter.cli.demo as demo
    except ModuleNotFoundError as exc:
        if exc.name != "werkzeug":
            raise
        raise CommandError(
            "the built-in demo needs Werkzeug: pip install 'wsgi-asgi-adapter[demo]'"
        ) from None
    return demo.create_app(server=server.name, wrapped=server.protocol == "asgi")


def _build(config: ServeConfig) -> Any:
    """The app ``config`` names, wrapped for its server."""
    server = SERVERS[config.server]
    if config.app is None:
        return served_app(_load_demo(server), "wsgi", server.protocol)
    app, _ = load_app(config.app, factory=config.factory)
    return served_app(app, config.interface, server.protocol)


def worker_app() -> Any:
    """Build the served app in a server's worker process (``adapter.cli:worker_app``).

    Servers that import their app by string in each worker are given this factory.

    :raises RuntimeError: when ``ADAPTER_SERVE`` is not set, that is, when the server
        was not started by ``python -m adapter serve``.
    :raises CommandError: when the app no longer loads as it did in the command line.
    """
    raw = os.environ.get(CONFIG_ENV)
    if raw is None:
        raise RuntimeError(
            f"adapter.cli:worker_app serves what `{PROG} serve` chose, and the "
            f"{CONFIG_ENV} environment variable it sets is missing: start the server "
            f"with `{PROG} serve APP`"
        )
    config = ServeConfig(**json.loads(raw))
    for entry in reversed(config.import_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if config.reload:
        _forget_project_modules(config.import_path)
    return _build(config)


def _forget_project_modules(import_path: list[str]) -> None:
    """Drop the project's modules a forked worker inherited, so it imports the edited code.

    With ``--reload``, granian and hypercorn start each new worker from a process that
    imported the app before the files changed.
    """
    roots = [Path(entry).resolve() for entry in import_path]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file is None or name == "adapter" or name.startswith("adapter."):
            continue
        if "site-packages" in Path(file).parts:  # a virtualenv inside the project
            continue
        if any(root in Path(file).resolve().parents for root in roots):
            del sys.modules[name]


def _ensure_installed(server: Server) -> None:
    if server.module is None:
        return
    try:
        importlib.import_module(server.module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == server.module:
            raise CommandError(f"{server.name} is not installed: {server.install_hint}") from None
        raise CommandError(f"{server.name} does not import: {one_line(exc)}") from None
    except Exception as exc:
        raise CommandError(f"{server.name} does not import: {one_line(exc)}") from None


def _ensure_port_free(host: str, port: int) -> None:
    """Refuse a busy port before the server starts, rather than in its log."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        # As the servers do, so that a port in TIME_WAIT does not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {port} on {host} is already in use; choose another with --port"
                ) from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(args: argparse.Namespace) -> int:
    """Run ``serve`` with parsed arguments; return the exit status.

    :param args: the namespace :func:`build_parser` produced.
    :raises CommandError: for any mistake in the input, before a server starts.
    """
    server = SERVERS[args.server]
    if args.app is None and (args.factory or args.interface != "auto"):
        raise CommandError("--factory and --interface need an APP (the demo is WSGI)")
    if args.workers is not None and args.workers > 1 and not server.multiprocess:
        several = ", ".join(name for name, other in SERVERS.items() if other.multiprocess)
        raise CommandError(
            f"{server.name} runs one process: --workers {args.workers} needs one of {several}"
        )
    _check_server_options(server, args)
    _ensure_installed(server)
    if args.app is None:
        interface: Protocol = "wsgi"
        app, import_path = _load_demo(server), str(Path.cwd())
        what = "the built-in demo (WSGI, Werkzeug)"
    else:
        app, import_path = load_app(args.app, factory=args.factory)
        interface = detect_interface(app, args.interface, args.app)
        what = f"{args.app} ({interface.upper()})"
    launch = Launch(
        served_app(app, interface, server.protocol),
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        threads=args.threads,
        reload=args.reload,
        reload_dirs=(import_path,),
        root_path=args.root_path,
        forwarded_allow_ips=args.forwarded_allow_ips,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        uds=args.uds,
        server_args=tuple(args.server_args),
    )
    # The server's own settings (its environment, the words after --) may move it
    # elsewhere; only the address this command chose is checked here.
    if launch.uds is None and not _server_settings_given(server, launch):
        _ensure_port_free(launch.bind_host, launch.bind_port)
    config = ServeConfig(
        args.app, args.factory, interface, server.name, [import_path], reload=args.reload
    )
    os.environ[CONFIG_ENV] = json.dumps(asdict(config))
    wrapper = {
        ("wsgi", "asgi"): " through adapter.WsgiToAsgi",
        ("asgi", "wsgi"): " through adapter.AsgiToWsgi",
    }.get((interface, server.protocol), "")
    scheme = "https" if launch.ssl_certfile else "http"
    where = (
        f"the Unix socket {launch.uds}"
        if launch.uds
        else f"{scheme}://{host_port(launch.bind_host, launch.bind_port)}{args.root_path or ''}/"
    )
    logger.info("serving %s%s on %s, %s", what, wrapper, server.name, where)
    server.run(launch)
    return 0


# The environment variables through which each server reads its own settings.
_SERVER_ENVIRONMENT = {
    "uvicorn": "UVICORN_",
    "granian": "GRANIAN_",
    "gunicorn": "GUNICORN_CMD_ARGS",
}


def _server_settings_given(server: Server, launch: Launch) -> bool:
    prefix = _SERVER_ENVIRONMENT.get(server.name)
    in_environment = prefix is not None and any(name.startswith(prefix) for name in os.environ)
    return in_environment or bool(launch.server_args)


def _check_server_options(server: Server, args: argparse.Namespace) -> None:
    """Refuse, in one line, an option the chosen server does not honour."""
    for option, field in OPTIONS.items():
        value = getattr(args, field)
        if value in (None, False, []) or option in server.options:
            continue
        others = ", ".join(name for name, other in SERVERS.items() if option in other.options)
        shown = "arguments after --" if option == "--" else option
        raise CommandError(f"{server.name} does not support {shown}; {others} do")
    if args.ssl_keyfile and not args.ssl_certfile:
        raise CommandError("--ssl-keyfile needs --ssl-certfile (the certificate it goes with)")
    if args.ssl_certfile and not args.ssl_keyfile and server.name in ("daphne", "hypercorn"):
        raise CommandError(f"{server.name} needs --ssl-keyfile beside --ssl-certfile")
    if args.uds and (args.host is not None or args.port is not None):
        raise CommandError("--uds listens on a Unix socket: leave out --host and --port")
    if args.root_path and not args.root_path.startswith("/"):
        raise CommandError(f"--root-path must start with '/', got {args.root_path!r}")
    if args.root_path and args.root_path.endswith("/"):
        raise CommandError(f"--root-path must not end with '/', got {args.root_path!r}")
    if server.name == "waitress" and args.forwarded_allow_ips and "," in args.forwarded_allow_ips:
        raise CommandError(
            "waitress trusts one proxy: --forwarded-allow-ips takes one address or *"
        )


LOG_FORMAT = "%(levelname)s:     %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Give the ``adapter`` logger a handler on stderr at ``level``, and nothing else.

    The root logger is left alone: an app that configures its own logging (Django does)
    would otherwise see each of its records twice, once through its handler and once
    through one the command line added to the root.  The ``adapter`` logger does not
    propagate, so a root handler the app adds does not repeat adapter's lines either.

    :param level: a level name (``--log-level``), in any case.
    """
    adapter_logger = logging.getLogger("adapter")
    adapter_logger.setLevel(level.upper())
    adapter_logger.propagate = False
    if not any(getattr(h, "name", None) == PROG for h in adapter_logger.handlers):
        handler = logging.StreamHandler()
        handler.set_name(PROG)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        adapter_logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Everything after the first ``--`` goes to the server as it is.

    :param argv: the arguments after the program name (default: ``sys.argv[1:]``).
    """
    words = list(sys.argv[1:] if argv is None else argv)
    server_args = words[words.index("--") + 1 :] if "--" in words else []
    ours = words[: words.index("--")] if "--" in words else words
    args = build_parser().parse_args(ours)
    args.server_args = server_args
    configure_logging(args.log_level)
    try:
        return serve(args)
    except CommandError as exc:
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0
