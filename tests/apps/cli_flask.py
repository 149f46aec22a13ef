"""A Flask app for the command-line tests, as a legacy WSGI app moved onto an ASGI server."""

from __future__ import annotations

from flask import Flask, Response, request

from tests.apps.cli_common import answer

app = Flask(__name__)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def everything(path: str) -> Response:
    """Answer what the shared test apps answer."""
    body = answer(
        "wsgi",
        request.path,
        request.query_string.decode("latin-1"),
        "asgi.scope" in request.environ,
    )
    return Response(body, mimetype="application/json")
