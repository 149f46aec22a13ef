"""WsgiToAsgi sends exactly what the response may carry: Content-Length bytes, and
nothing for HEAD, however the app produces its body."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

import pytest

from adapter._types import Environ, StartResponse
from adapter.wsgi_to_asgi.responder import PULL_BYTES
from tests.wsgi_to_asgi.test_app import Server, http_scope, serve

BIG = 64 * 1024
# (name, chunks): a small body, and one far past a batch, so it streams through the pipe.
SIZES = [("small", [b"abc", b"defg", b"hij"]), ("streamed", [b"x" * BIG] * (PULL_BYTES // BIG * 3))]
KINDS = ["list", "generator", "write", "write then generator"]


class Recorded:
    """A WSGI app of a given body ``kind`` that records close() and how far it got."""

    def __init__(self, kind: str, chunks: list[bytes], content_length: int | None) -> None:
        self.kind = kind
        self.chunks = chunks
        self.content_length = content_length
        self.closed = threading.Event()
        self.produced = 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers = [("Content-Type", "application/octet-stream")]
        if self.content_length is not None:
            headers.append(("Content-Length", str(self.content_length)))
        write = start_response("200 OK", headers)
        if self.kind == "list":
            self.produced = len(self.chunks)
            return Closing(list(self.chunks), self.closed)
        if self.kind.startswith("write"):
            half = len(self.chunks) // 2 if self.kind == "write then generator" else None
            for chunk in self.chunks[:half]:
                write(chunk)
                self.produced += 1
            if half is None:
                return Closing([], self.closed)
            return Closing(self._generate(self.chunks[half:]), self.closed)
        return Closing(self._generate(self.chunks), self.closed)

    def _generate(self, chunks: list[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.produced += 1
            yield chunk


class Closing:
    def __init__(self, body: Iterable[bytes], closed: threading.Event) -> None:
        self._body = body
        self._closed = closed

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        self._closed.set()


def too_long_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("size", "chunks"), SIZES, ids=[name for name, _ in SIZES])
async def test_a_body_longer_than_content_length_is_cut_there(
    kind: str, size: str, chunks: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    whole = b"".join(chunks)
    declared = len(whole) // 2 + 1  # mid-chunk: the cut splits one
    app = Recorded(kind, chunks, declared)
    server = await serve(app)
    assert server.status == 200
    assert server.body == whole[:declared]
    assert server.sent[-1]["more_body"] is False
    assert sum(m["type"] == "http.response.body" and not m["more_body"] for m in server.sent) == 1
    assert app.closed.is_set()
    [warning] = too_long_warnings(caplog)
    assert "longer body than its Content-Length" in warning
    assert "Fix the Content-Length" in warning


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("size", "chunks"), SIZES, ids=[name for name, _ in SIZES])
@pytest.mark.parametrize("declared", ["exact", "none"])
async def test_a_body_within_its_length_goes_whole(
    kind: str, size: str, chunks: list[bytes], declared: str, caplog: pytest.LogCaptureFixture
) -> None:
    whole = b"".join(chunks)
    app = Recorded(kind, chunks, len(whole) if declared == "exact" else None)
    server = await serve(app)
    assert server.body == whole
    assert server.sent[-1]["more_body"] is False
    assert app.closed.is_set()
    assert not too_long_warnings(caplog)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("size", "chunks"), SIZES, ids=[name for name, _ in SIZES])
async def test_head_sends_no_body_but_keeps_the_headers(
    kind: str, size: str, chunks: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    whole = b"".join(chunks)
    app = Recorded(kind, chunks, len(whole))
    server = await serve(app, scope=http_scope(method="HEAD"))
    assert server.status == 200
    assert server.headers[b"content-length"] == str(len(whole)).encode()
    assert server.body == b""
    assert server.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert app.closed.is_set()
    assert not too_long_warnings(caplog)


@pytest.mark.anyio
async def test_head_of_an_error_sends_no_body() -> None:
    def broken(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        raise LookupError("the app failed")

    server = Server()
    with pytest.raises(LookupError):
        await serve(broken, server, scope=http_scope(method="HEAD"))
    assert server.status == 500
    assert server.body == b""
    assert server.headers[b"content-length"] == b"21"


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_an_endless_body_stops_at_its_length(method: str) -> None:
    # Only stopping the iteration lets this request end.
    closed = threading.Event()

    def endless(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", str(3 * BIG + 5))])

        def chunks() -> Iterator[bytes]:
            while True:
                yield b"y" * BIG

        return Closing(chunks(), closed)

    server = await serve(endless, scope=http_scope(method=method))
    assert len(server.body) == (3 * BIG + 5 if method == "GET" else 0)
    assert closed.is_set()
