"""A Flask app served by any ASGI server: uvicorn, hypercorn, granian or daphne."""

from __future__ import annotations

from flask import Flask, request, url_for

from adapter import WsgiToAsgi

flask_app = Flask(__name__)


@flask_app.get("/")
def hello() -> dict[str, str]:
    # Behind a mount, url_for() includes the prefix: SCRIPT_NAME is the ASGI root_path.
    return {"hello": request.args.get("name", "world"), "home": url_for("hello")}


@flask_app.post("/echo")
def echo() -> bytes:
    return request.get_data()


# The one line: an ASGI application that runs flask_app in worker threads.
app = WsgiToAsgi(flask_app)
