"""WsgiToAsgi: PEP 3333 response semantics, write(), validation, wsgi.file_wrapper."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from adapter._types import Environ, StartResponse
from adapter.wsgi_to_asgi.responder import PULL_BYTES
from tests.wsgi_to_asgi.test_app import Server, http_scope, serve

# 5. PEP 3333 response semantics -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fail_at", ["call", "first-iteration", "after-empty-chunks"])
async def test_an_error_before_the_first_chunk_is_a_complete_500_then_raised(fail_at: str) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-Never", "sent")])
        if fail_at == "call":
            raise LookupError("boom")

        def body() -> Iterable[bytes]:
            if fail_at == "after-empty-chunks":
                yield b""
                yield b""
            raise LookupError("boom")

        return body()

    server = Server()
    with pytest.raises(LookupError, match="boom"):
        await serve(app, server)
    assert server.status == 500
    assert b"x-never" not in server.headers
    assert server.body == b"Internal Server Error"
    assert server.complete


@pytest.mark.anyio
async def test_exc_info_replaces_headers_before_they_are_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("late")
        except ValueError:
            start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    server = await serve(app)
    assert (server.status, server.headers, server.body) == (503, {b"x-second": b"2"}, b"sorry")


@pytest.mark.anyio
async def test_exc_info_after_headers_were_sent_re_raises_and_aborts() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])

        def body() -> Iterable[bytes]:
            yield b"started"
            try:
                raise ValueError("too late")
            except ValueError:
                start_response("500 Oops", [], sys.exc_info())
            yield b"never"

        return body()

    server = Server()
    with pytest.raises(ValueError, match="too late"):
        await serve(app, server)
    assert server.status == 200
    assert server.body == b"started"
    assert not server.complete  # aborted: the server cuts the connection


@pytest.mark.anyio
async def test_a_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        start_response("200 OK", [])
        return []

    server = Server()
    with pytest.raises(RuntimeError, match="second time without exc_info"):
        await serve(app, server)
    assert server.status == 500


@pytest.mark.anyio
async def test_write_buffers_a_little_then_sends_before_it_returns() -> None:
    sent_when_write_returned: list[int] = []
    server = Server()
    big = b"b" * PULL_BYTES

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [("X-A", "1")])
        write(b"one ")
        # PEP 3333 lets write() buffer while the app goes on: small writes wait for
        # the step to end, in order with the body.
        sent_when_write_returned.append(len(server.sent))
        write(big)
        # A full buffer is sent before write() returns: the start and one chunk each.
        sent_when_write_returned.append(len(server.sent))
        write(b" two ")
        return [b"three"]

    await serve(app, server)
    assert sent_when_write_returned == [0, 3]
    assert (server.status, server.body) == (200, b"one " + big + b" two three")
    assert server.headers == {b"x-a": b"1"}
    assert server.complete


@pytest.mark.anyio
async def test_write_while_streaming_keeps_the_order() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        write = start_response("200 OK", [])

        def body() -> Iterable[bytes]:
            for number in range(200):
                yield b"<%d" % number + b"." * 4000
                write(b"|%d>" % number)

        return body()

    server = await serve(app)
    expected = b"".join(b"<%d" % n + b"." * 4000 + b"|%d>" % n for n in range(200))
    assert server.body == expected
    assert server.complete


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")]),
        ("200 OK", [("X-Evil", "a\nb")]),
        ("200 OK", [("X-Evil", "a\0b")]),
        ("200 OK", [("X-Snow", "\u2603")]),
        ("200 OK\r\nX-Evil: 1", []),
        ("OK", []),
    ],
)
async def test_bad_status_or_headers_are_refused_never_sent(
    status: str, headers: list[tuple[str, str]]
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(status, headers)
        return [b"body"]

    server = Server()
    with pytest.raises(RuntimeError, match="start_response"):
        await serve(app, server)
    assert server.status == 500
    assert list(server.headers) == [b"content-type", b"content-length"]


@pytest.mark.anyio
async def test_latin1_header_values_and_empty_body() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("204 No Content", [("X-Caf", "caf\u00e9")])
        return iter([b"", b""])

    server = await serve(app)
    assert server.status == 204
    assert server.headers == {b"x-caf": b"caf\xe9"}
    assert server.sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.anyio
async def test_str_body_is_refused() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return ["text"]  # type: ignore[list-item]

    server = Server()
    with pytest.raises(RuntimeError, match="requires bytes"):
        await serve(app, server)
    assert server.status == 500


# 8. wsgi.file_wrapper ---------------------------------------------------------------


def file_app(path: Path, *, skip: int = 0) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        file = path.open("rb")
        file.read(skip)
        result: Iterable[bytes] = environ["wsgi.file_wrapper"](file, 4096)
        return result

    return app


@pytest.mark.anyio
async def test_file_wrapper_goes_out_by_pathsend_when_offered(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"z" * 10_000)
    scope = http_scope(extensions={"http.response.pathsend": {}})
    server = await serve(file_app(path), scope=scope)
    assert server.sent[1] == {"type": "http.response.pathsend", "path": str(path)}


@pytest.mark.anyio
@pytest.mark.parametrize(("pathsend", "skip"), [(False, 0), (True, 100)])
async def test_file_wrapper_streams_in_blocks_otherwise(
    tmp_path: Path, pathsend: bool, skip: int
) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 40)
    scope = http_scope(extensions={"http.response.pathsend": {}} if pathsend else {})
    server = await serve(file_app(path, skip=skip), scope=scope)
    assert server.body == path.read_bytes()[skip:]
    assert all(m["type"] != "http.response.pathsend" for m in server.sent)
    assert server.complete
