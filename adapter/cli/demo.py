"""The built-in demo that ``python -m adapter serve`` runs when no app is named.

A plain WSGI application written with Werkzeug's ``Request`` and ``Response``, so that
what it shows is what any WSGI app would see:

- ``/``: a page saying what is running (server, interface, adapter version);
- ``/events``: server-sent events ticking, a bounded number of ticks, or until the
  client goes (the generator's ``close()`` ends it); ``/events/open`` counts the
  streams running now, so that end can be seen;
- ``/upload`` (POST): reads ``wsgi.input`` in pieces as it streams in and counts them;
- ``/environ``: the environ it was given, as JSON or (``?format=text``) text.

Werkzeug comes with the ``demo`` and ``serve`` extras; the library itself never imports
it, only this module does.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from adapter import __version__

if TYPE_CHECKING:
    # Werkzeug's own annotations use these; the demo is handed to Werkzeug's tools.
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["create_app"]

logger = logging.getLogger("adapter")

UPLOAD_PIECE = 64 * 1024
"""How much of the request body ``/upload`` asks ``wsgi.input`` for at a time."""
MAX_TICKS = 1000
MAX_INTERVAL = 10.0

_ROUTES = Map(
    [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/events", endpoint="events", methods=["GET"]),
        Rule("/events/open", endpoint="open_streams", methods=["GET"]),
        Rule("/upload", endpoint="upload", methods=["POST"]),
        Rule("/environ", endpoint="environ", methods=["GET"]),
    ]
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>adapter demo</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}}
code,pre{{background:#f4f4f4;padding:0 .2em}}#ticks{{height:8em;overflow:auto}}</style></head>
<body>
<h1>adapter demo</h1>
<p>This is a <strong>WSGI</strong> application written with Werkzeug's
<code>Request</code> and <code>Response</code>, {how}.</p>
<table>
<tr><th align="left">server</th><td><code>{server}</code></td></tr>
<tr><th align="left">served through</th><td><code>{through}</code></td></tr>
<tr><th align="left">adapter</th><td><code>{version}</code></td></tr>
<tr><th align="left">Python</th><td><code>{python}</code></td></tr>
<tr><th align="left">process</th><td><code>{pid}</code></td></tr>
</table>
<h2>Server-sent events</h2>
<p><a href="/events?ticks=10&amp;interval=1">/events</a> streams
<code>text/event-stream</code>, one tick a second; each tick is a chunk the app yields.
When the client goes, the server closes the iterable and the stream ends:
<a href="/events/open">/events/open</a> counts the streams running now.</p>
<pre id="ticks"></pre>
<h2>Streamed upload</h2>
<p><code>POST /upload</code> reads <code>wsgi.input</code> {piece} bytes at a time as the body
arrives and answers how many bytes and reads it took.</p>
<p><input type="file" id="file"> <button id="send">upload</button></p><pre id="result"></pre>
<h2>The environ</h2>
<p><a href="/environ">/environ</a> (JSON) or <a href="/environ?format=text">as text</a>:
what the server and adapter handed this app.</p>
<script>
const ticks = document.getElementById("ticks");
const source = new EventSource("/events?ticks=10&interval=1");
source.addEventListener("tick", e => {{ ticks.textContent += e.data + "\\n"; }});
source.addEventListener("done", () => source.close());
document.getElementById("send").onclick = async () => {{
  const file = document.getElementById("file").files[0];
  if (!file) return;
  const answer = await fetch("/upload", {{method: "POST", body: file}});
  document.getElementById("result").textContent = await answer.text();
}};
</script>
</body></html>
"""


def _number(request: Request, name: str, default: float, high: float) -> float:
    """A query parameter as a number between 0 and ``high``."""
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if not 0 <= value <= high:
        raise BadRequest(f"{name} must be between 0 and {high:g}")
    return value


class _OpenStreams:
    """How many event streams are running now, so one can see a stream end with its client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, change: int) -> None:
        with self._lock:
            self.count += change


def _ticks(count: int, interval: float, open_streams: _OpenStreams) -> Iterator[bytes]:
    """The event stream: ``count`` ticks, ``interval`` seconds apart, then ``done``."""
    sent = 0
    open_streams.add(1)
    try:
        for tick in range(1, count + 1):
            if tick > 1:
                time.sleep(interval)
            data = json.dumps({"tick": tick, "of": count, "time": time.time()})
            sent = tick
            # The event-stream format (HTML Living Standard, 9.2): fields, then a blank line.
            yield f"id: {tick}\nevent: tick\ndata: {data}\n\n".encode()
        yield b"event: done\ndata: {}\n\n"
    finally:
        # Reached on the last tick and, through close(), when the client went early.
        open_streams.add(-1)
        logger.info("demo: event stream ended after %d of %d ticks", sent, count)


def _shown(value: Any) -> Any:
    """A JSON-safe form of an environ value: plain values as they are, others as repr."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


class _Demo:
    """The demo application; one instance serves every request."""

    def __init__(self, server: str, wrapped: bool) -> None:
        self.server = server
        self.wrapped = wrapped
        self.open_streams = _OpenStreams()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, _ = _ROUTES.bind_to_environ(environ).match()
            response: Response = getattr(self, f"_{endpoint}")(request)
        except HTTPException as exc:
            return exc(environ, start_response)
        return response(environ, start_response)

    def _index(self, request: Request) -> Response:
        through = "adapter.WsgiToAsgi" if self.wrapped else "nothing: the server speaks WSGI"
        how = (
            f"running on the ASGI server <strong>{html.escape(self.server)}</strong> "
            "through <code>adapter.WsgiToAsgi</code>"
            if self.wrapped
            else f"running directly on the WSGI server <strong>{html.escape(self.server)}</strong>"
        )
        page = _PAGE.format(
            how=how,
            server=html.escape(self.server),
            through=html.escape(through),
            version=html.escape(__version__),
            python=html.escape(sys.version.split()[0]),
            pid=os.getpid(),
            piece=UPLOAD_PIECE,
        )
        return Response(page, content_type="text/html; charset=utf-8")

    def _events(self, request: Request) -> Response:
        count = int(_number(request, "ticks", 10, MAX_TICKS))
        interval = _number(request, "interval", 1.0, MAX_INTERVAL)
        return Response(
            _ticks(count, interval, self.open_streams),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _open_streams(self, request: Request) -> Response:
        body = json.dumps({"open": self.open_streams.count, "pid": os.getpid()})
        return Response(body, content_type="application/json")

    def _upload(self, request: Request) -> Response:
        # request.stream is wsgi.input, limited to CONTENT_LENGTH when there is one
        # (PEP 3333: an app must not read past it) or read to the end when the server
        # says the input is terminated (wsgi.input_terminated).
        total = reads = 0
        digest = hashlib.sha256()
        while piece := request.stream.read(UPLOAD_PIECE):
            total += len(piece)
            reads += 1
            digest.update(piece)
        result = {
            "bytes": total,
            "reads": reads,
            "sha256": digest.hexdigest(),
            "content_length": request.content_length,
        }
        return Response(json.dumps(result), content_type="application/json")

    def _environ(self, request: Request) -> Response:
        items = sorted(request.environ.items())
        if request.args.get("format") == "text":
            text = "".join(f"{key} = {value!r}\n" for key, value in items)
            return Response(text, content_type="text/plain; charset=utf-8")
        shown = {key: _shown(value) for key, value in items}
        return Response(json.dumps(shown, indent=2), content_type="application/json")


def create_app(*, server: str = "an unnamed server", wrapped: bool = False) -> WSGIApplication:
    """Build the demo application.

    :param server: the name of the server it runs on, for the page.
    :param wrapped: whether it is served through :class:`adapter.WsgiToAsgi`.
    """
    return _Demo(server, wrapped)
