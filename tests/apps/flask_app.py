"""A Flask app served through WsgiToAsgi, in memory and by real ASGI servers.

``asgi`` is the wrapped app (``uvicorn tests.apps.flask_app:asgi``).  ``/stats``
reports how many streamed responses were closed and how many uploads were cut short,
so a test in another process can see what a client leaving did to the app.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator

from flask import Flask, Response, abort, jsonify, request, send_file, stream_with_context

from adapter import ClientDisconnected, WsgiToAsgi

app = Flask(__name__)

_lock = threading.Lock()
_closed_streams = 0
_cut_uploads = 0
_uploads_started = 0


@app.get("/json")
def json_view() -> Response:
    """Some JSON, with what the app learnt of where it is mounted."""
    return jsonify(hello="world", path=request.path, script_root=request.script_root)


@app.post("/form")
def form_view() -> Response:
    """Echo a url-encoded or multipart form."""
    return jsonify(dict(request.form))


@app.post("/upload")
def upload_view() -> Response:
    """Digest an uploaded file without keeping it."""
    upload = request.files["file"]
    digest = hashlib.sha256()
    size = 0
    while block := upload.stream.read(65536):
        digest.update(block)
        size += len(block)
    return jsonify(filename=upload.filename, size=size, sha256=digest.hexdigest())


@app.post("/digest")
def digest_view() -> Response:
    """Digest the raw body as it streams in; count uploads cut short in ``/stats``."""
    global _cut_uploads, _uploads_started
    with _lock:
        _uploads_started += 1
    digest = hashlib.sha256()
    size = 0
    try:
        while block := request.stream.read(65536):
            digest.update(block)
            size += len(block)
    except ClientDisconnected:
        with _lock:
            _cut_uploads += 1
        raise
    return jsonify(size=size, sha256=digest.hexdigest())


@app.get("/stream")
def stream_view() -> Response:
    """A streamed body: ``lines`` lines from a generator."""
    lines = int(request.args.get("lines", "10"))

    def generate() -> Iterator[str]:
        for number in range(lines):
            yield f"line {number}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/forever")
def forever_view() -> Response:
    """A body without end; counts its close() in ``/stats``."""

    def generate() -> Iterator[bytes]:
        global _closed_streams
        try:
            for _ in itertools.count():
                yield b"x" * 65536
        finally:
            with _lock:
                _closed_streams += 1

    return Response(generate(), mimetype="application/octet-stream")


@app.get("/stats")
def stats_view() -> Response:
    """How many ``/forever`` streams were closed, uploads started and uploads cut short."""
    return jsonify(
        closed_streams=_closed_streams, cut_uploads=_cut_uploads, uploads_started=_uploads_started
    )


@app.get("/file")
def file_view() -> Response:
    """This module's own source, by ``send_file`` (which uses ``wsgi.file_wrapper``)."""
    return send_file(__file__, mimetype="text/plain")


@app.get("/abort")
def abort_view() -> Response:
    """Abort with 403."""
    abort(403)


@app.get("/error")
def error_view() -> Response:
    """Raise: Flask turns it into its own 500."""
    raise LookupError("the view failed")


asgi = WsgiToAsgi(app)
