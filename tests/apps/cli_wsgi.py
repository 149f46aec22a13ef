"""A plain PEP 3333 app for the command-line tests: ``app``, and ``create_app`` to build one."""

from __future__ import annotations

from collections.abc import Iterable

from adapter._types import Environ, StartResponse, WSGIApp
from tests.apps.cli_common import answer


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer JSON saying it is WSGI, its pid, and whether it runs behind WsgiToAsgi."""
    body = answer(
        "wsgi",
        environ["PATH_INFO"],
        environ.get("QUERY_STRING", ""),
        "asgi.scope" in environ,
        root_path=environ.get("SCRIPT_NAME", ""),
        client=environ.get("REMOTE_ADDR"),
        scheme=environ["wsgi.url_scheme"],
    )
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def create_app() -> WSGIApp:
    """A factory, for ``--factory``."""
    return app
