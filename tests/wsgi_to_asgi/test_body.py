"""WsgiToAsgi: wsgi.input streams from receive(); disconnects and size limits."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pytest

from adapter import ClientDisconnected
from adapter._types import Environ, StartResponse
from adapter.wsgi_to_asgi.streams import READ_AHEAD_BYTES, RequestBodyTooLarge
from tests.wsgi_to_asgi.test_app import BODY_KINDS, Server, body_scope, hello, http_scope, serve

# 3. wsgi.input streams from receive() -------------------------------------------------


@pytest.mark.anyio
async def test_wsgi_input_pulls_from_receive_only_as_the_app_reads() -> None:
    server = Server([bytes([65 + i]) * 1000 for i in range(20)])
    pending: list[int] = []
    whole = b"".join(bytes([65 + i]) * 1000 for i in range(20))

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        pending.append(server.pending())
        head = stream.read(10)
        pending.append(server.pending())
        rest = stream.read()
        start_response("200 OK", [])
        return [head, rest]

    await serve(app, server)
    assert pending == [20, 19]  # nothing before the first read; one message for 10 bytes
    assert server.body == whole


@pytest.mark.anyio
async def test_an_announced_body_is_read_ahead_by_a_bounded_number_of_bytes() -> None:
    piece = 64 * 1024
    pieces = [bytes([65 + i]) * piece for i in range(40)]
    server = Server(pieces)
    received_when_read: list[int] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        head = environ["wsgi.input"].read(10)
        # Whatever the timing, the receiver holds at most READ_AHEAD_BYTES and one
        # message more than the app has read.
        received_when_read.append((40 - server.pending()) * piece)
        rest = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [head, rest]

    await serve(app, server, body_scope("content-length", pieces))
    assert received_when_read[0] <= READ_AHEAD_BYTES + 2 * piece
    assert server.body == b"".join(pieces)


MIXES: list[list[tuple[str, int | None]]] = [
    [("readline", None), ("read", 3), ("readlines", 5), ("read", None)],
    [("read", 1), ("readline", 4), ("readline", -1), ("read", -1)],
    [("readlines", -1)],
    [("read", 0), ("readline", 0), ("read", 7), ("readlines", 1), ("read", 2)],
]


@pytest.mark.anyio
@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("piece", [1, 3, 64])
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_wsgi_input_any_mix_over_small_messages(
    mix: list[tuple[str, int | None]], piece: int, kind: str
) -> None:
    data = b"first line\nsecond\n\nthird line is longer\nno newline at the end"
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    server = Server(pieces)
    results: list[tuple[object, object]] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        oracle = io.BytesIO(data)
        for name, size in mix:
            results.append(
                (getattr(environ["wsgi.input"], name)(size), getattr(oracle, name)(size))
            )
        results.append((list(environ["wsgi.input"]), list(oracle)))
        start_response("200 OK", [])
        return []

    await serve(app, server, body_scope(kind, pieces))
    assert results
    for ours, expected in results:
        assert ours == expected


@pytest.mark.anyio
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_wsgi_input_hands_out_bytes_whatever_buffer_the_server_sent(kind: str) -> None:
    pieces = [bytearray(b"ab"), memoryview(b"cd\nef")]
    server = Server(pieces)  # type: ignore[arg-type]  # what ASGI does not promise
    read: list[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        read.extend([stream.read(1), stream.readline(), stream.read()])
        start_response("200 OK", [])
        return []

    await serve(app, server, body_scope(kind, [b"abcd\nef"]))
    assert read == [b"a", b"bcd\n", b"ef"]
    assert [type(piece) for piece in read] == [bytes] * 3


# 4. Disconnect mid-body, max_request_body --------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_disconnect_mid_body_raises_client_disconnected_in_the_app(kind: str) -> None:
    server = Server([b"part of", b" the body"], complete=False)
    server.disconnect()
    caught: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as exc:
            caught.append(exc)
            raise
        raise AssertionError("a cut-off body must not read as a short body")

    # The request ends quietly: nobody is left to answer.
    await serve(app, server, body_scope(kind, [b"part of the body and more"]))
    assert isinstance(caught[0], OSError)
    assert server.sent == []


@pytest.mark.anyio
async def test_declared_length_over_the_limit_answers_413_without_the_app() -> None:
    called: list[bool] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        called.append(True)
        return hello(environ, start_response)

    scope = http_scope(method="POST", headers=[(b"content-length", b"11")])
    server = await serve(app, Server([b"x" * 11]), scope, max_request_body=10)
    assert (server.status, called) == (413, [])
    assert server.complete


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["undeclared", "chunked"])
async def test_body_without_length_past_the_limit_raises_in_the_read(kind: str) -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            environ["wsgi.input"].read()
        except RequestBodyTooLarge as exc:
            raised.append(exc)
            raise
        return hello(environ, start_response)

    scope = body_scope(kind, [])
    server = await serve(app, Server([b"x" * 6] * 3), scope, max_request_body=10)
    assert len(raised) == 1
    assert server.status == 413
    ok = await serve(app, Server([b"x" * 5] * 2), body_scope(kind, []), max_request_body=10)
    assert ok.status == 200
