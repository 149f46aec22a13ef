"""The built-in demo (``adapter/cli/demo.py``): in memory under Werkzeug's lint, then for real.

The real runs are the README's main-job command, ``python -m adapter serve``, given a
free port: the demo through ``WsgiToAsgi`` on uvicorn, and directly on a WSGI server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, create_environ, run_wsgi_app

from adapter import __version__
from adapter.cli.demo import UPLOAD_PIECE, create_app
from tests.servers import running_server

REQUEST_TIMEOUT = 20.0
TICK_TIMEOUT = 10.0
"""Seconds to wait for the next tick of a stream that ticks every 0.05 s."""


def lint_client(*, server: str = "uvicorn", wrapped: bool = True) -> Client:
    return Client(LintMiddleware(create_app(server=server, wrapped=wrapped)))


def events_of(text: str) -> list[dict[str, str]]:
    """Parse an event stream into its events (each a dict of its fields)."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            events.append(dict(line.split(": ", 1) for line in block.splitlines()))
    return events


# --- in memory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrapped", "says"),
    [(True, "through <code>adapter.WsgiToAsgi</code>"), (False, "directly on the WSGI server")],
)
def test_index_says_what_is_running(wrapped: bool, says: str) -> None:
    response = lint_client(server="granian", wrapped=wrapped).get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert says in page
    assert "<strong>granian</strong>" in page
    assert __version__ in page
    for endpoint in ("/events", "/upload", "/environ"):
        assert endpoint in page


def test_events_tick_a_bounded_number_of_times() -> None:
    response = lint_client().get("/events", query_string={"ticks": "3", "interval": "0"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = events_of(response.get_data(as_text=True))
    assert [event["event"] for event in events] == ["tick", "tick", "tick", "done"]
    assert [json.loads(event["data"])["tick"] for event in events[:3]] == [1, 2, 3]


@pytest.mark.parametrize(
    "query", [{"ticks": "many"}, {"ticks": "100000"}, {"interval": "-1"}, {"interval": "60"}]
)
def test_events_refuse_bad_parameters(query: dict[str, str]) -> None:
    assert lint_client().get("/events", query_string=query).status_code == 400


def test_events_stop_when_the_client_goes(caplog: pytest.LogCaptureFixture) -> None:
    # A server calls close() on the iterable when the client goes (PEP 3333); the demo's
    # stream must end there, not tick on.
    app = create_app()
    client = Client(app)
    environ = create_environ("/events", query_string={"ticks": "1000", "interval": "0"})
    caplog.set_level(logging.INFO, logger="adapter")
    body, status, _ = run_wsgi_app(app, environ)
    assert status == "200 OK"
    chunks = iter(body)
    assert b"tick" in next(chunks)
    assert b"tick" in next(chunks)
    assert client.get("/events/open").get_json()["open"] == 1
    close = getattr(body, "close")  # noqa: B009 - a ClosingIterator's close
    close()
    assert "event stream ended after 2 of 1000 ticks" in caplog.text
    assert client.get("/events/open").get_json()["open"] == 0


def test_upload_counts_bytes_as_they_stream() -> None:
    payload = bytes(range(256)) * 1000  # 256000 bytes: several pieces
    response = lint_client().post("/upload", data=payload)
    assert response.status_code == 200
    result = response.get_json()
    assert result["bytes"] == len(payload)
    assert result["reads"] >= len(payload) // UPLOAD_PIECE
    assert result["sha256"] == hashlib.sha256(payload).hexdigest()
    assert result["content_length"] == len(payload)


def test_upload_is_post_only() -> None:
    response = lint_client().get("/upload")
    assert response.status_code == 405


def test_environ_as_json_shows_what_cannot_be_serialised_as_repr() -> None:
    response = lint_client().get("/environ", query_string={"x": "1"})
    assert response.status_code == 200
    environ = response.get_json()
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["QUERY_STRING"] == "x=1"
    assert isinstance(environ["wsgi.input"], str)  # an object, shown as its repr
    assert isinstance(environ["wsgi.version"], str)  # a tuple, shown as its repr


def test_environ_as_text() -> None:
    response = lint_client().get("/environ", query_string={"format": "text"})
    assert response.mimetype == "text/plain"
    assert "REQUEST_METHOD = 'GET'\n" in response.get_data(as_text=True)


def test_unknown_path_is_404() -> None:
    assert lint_client().get("/nothing-here").status_code == 404


# --- for real: the README's command ---------------------------------------------------------


def demo_command(*options: str) -> list[str]:
    """``python -m adapter serve`` (the README's main-job command) on the test's port."""
    return [sys.executable, "-m", "adapter", "serve", *options, "--port", "{port}"]


def _pieces(total: int, size: int) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def _stream_events(client: httpx.Client, url: str) -> list[dict[str, str]]:
    with client.stream("GET", url, timeout=REQUEST_TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    return events_of(text)


def _ticks_until_the_client_goes(client: httpx.Client) -> None:
    """A long stream ticks while it runs, and ends in the server when the client goes."""
    # 1000 ticks 0.05 s apart would take 50 s: seeing three within the read timeout
    # shows each tick is sent as it is yielded, not collected until the end.
    url = "/events?ticks=1000&interval=0.05"
    with client.stream("GET", url, timeout=TICK_TIMEOUT) as response:
        # Kept while the count is asked for: a generator left behind would close the
        # response (and the stream with it) when it is collected.
        lines = response.iter_lines()
        ticks = 0
        while ticks < 3:
            ticks += next(lines) == "event: tick"
        assert client.get("/events/open", timeout=REQUEST_TIMEOUT).json()["open"] == 1
        del lines
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while client.get("/events/open", timeout=REQUEST_TIMEOUT).json()["open"]:
        assert time.monotonic() < deadline, "the stream ticked on after the client went"
        time.sleep(0.05)


@pytest.mark.server
def test_the_demo_on_uvicorn_through_wsgi_to_asgi() -> None:
    with running_server(demo_command()) as url, httpx.Client(base_url=url) as client:
        page = client.get("/", timeout=REQUEST_TIMEOUT)
        assert page.status_code == 200
        assert "uvicorn" in page.headers["server"]
        assert "<strong>uvicorn</strong>" in page.text
        assert "adapter.WsgiToAsgi" in page.text

        events = _stream_events(client, "/events?ticks=5&interval=0.01")
        assert [event["event"] for event in events] == ["tick"] * 5 + ["done"]

        size = 3 * UPLOAD_PIECE + 123
        # A generator body goes out chunked, with no content-length: the demo still
        # reads it to the end (the server marks wsgi.input as terminated).
        chunked = client.post("/upload", content=_pieces(size, 10_000), timeout=REQUEST_TIMEOUT)
        assert chunked.json()["bytes"] == size
        assert chunked.json()["content_length"] is None
        sized = client.post("/upload", content=b"y" * size, timeout=REQUEST_TIMEOUT)
        assert sized.json()["bytes"] == size
        assert sized.json()["reads"] >= 4

        environ: dict[str, Any] = client.get("/environ", timeout=REQUEST_TIMEOUT).json()
        assert environ["SERVER_PORT"] == url.rsplit(":", 1)[1]
        assert "'type': 'http'" in environ["asgi.scope"]

        _ticks_until_the_client_goes(client)


@pytest.mark.server
@pytest.mark.parametrize(
    ("server", "wrapped"),
    [
        ("hypercorn", True),
        ("granian", True),
        ("daphne", True),
        ("gunicorn", False),
        ("waitress", False),
        ("wsgiref", False),
    ],
)
def test_the_demo_on_each_server(server: str, wrapped: bool) -> None:
    command = demo_command("--server", server, "--log-level", "warning")
    with running_server(command) as url, httpx.Client(base_url=url) as client:
        page = client.get("/", timeout=REQUEST_TIMEOUT)
        assert f"<strong>{server}</strong>" in page.text
        assert ("through <code>adapter.WsgiToAsgi</code>" in page.text) is wrapped
        events = _stream_events(client, "/events?ticks=2&interval=0")
        assert [event["event"] for event in events] == ["tick", "tick", "done"]
        upload = client.post("/upload", content=b"z" * 100_000, timeout=REQUEST_TIMEOUT)
        assert upload.json()["bytes"] == 100_000
        environ = client.get("/environ", timeout=REQUEST_TIMEOUT).json()
        assert ("asgi.scope" in environ) is wrapped
        if server != "gunicorn":  # gunicorn's sync worker serves one request at a time
            _ticks_until_the_client_goes(client)
