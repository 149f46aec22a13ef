"""WsgiToAsgi with real frameworks and real servers.

Flask and Django through ``httpx.ASGITransport`` (asyncio and trio), then the same
Flask app on uvicorn and on hypercorn's asyncio and trio workers, started as
subprocesses on free loopback ports and stopped by process id.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapter._types import ASGIApp, Message, Receive, Scope, Send
from tests.apps import flask_app
from tests.servers import running_server

UPLOAD = os.urandom(3 * 1024 * 1024 + 17)
FLASK_APP_SOURCE = Path(flask_app.__file__).read_bytes()


def drained(app: ASGIApp) -> ASGIApp:
    """``app``, then whatever request body it left unread is received.

    A GET needs no ``receive()`` (WsgiToAsgi calls it only when the app reads the
    body), but httpx's ASGITransport feeds the body from an async generator that, left
    unfinished, trio reports as a ResourceWarning when it is collected.  Real servers
    have no such generator; this only keeps the test client tidy.
    """

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        body_complete = False

        async def tracking_receive() -> Message:
            nonlocal body_complete
            message = await receive()
            body_complete = body_complete or not message.get("more_body", False)
            return message

        await app(scope, tracking_receive, send)
        while not body_complete:
            await tracking_receive()

    return wrapper


@pytest.fixture
async def flask_client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=drained(flask_app.asgi), root_path="/mnt")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.anyio
async def test_flask_json(flask_client: httpx.AsyncClient) -> None:
    response = await flask_client.get("/mnt/json")
    assert response.status_code == 200
    assert response.json() == {"hello": "world", "path": "/json", "script_root": "/mnt"}


@pytest.mark.anyio
async def test_flask_form_post(flask_client: httpx.AsyncClient) -> None:
    response = await flask_client.post("/mnt/form", data={"name": "Zoë", "n": "1"})
    assert response.json() == {"name": "Zoë", "n": "1"}


@pytest.mark.anyio
async def test_flask_file_upload(flask_client: httpx.AsyncClient) -> None:
    response = await flask_client.post(
        "/mnt/upload", files={"file": ("data.bin", UPLOAD, "application/octet-stream")}
    )
    assert response.json() == {
        "filename": "data.bin",
        "size": len(UPLOAD),
        "sha256": hashlib.sha256(UPLOAD).hexdigest(),
    }


@pytest.mark.anyio
async def test_flask_streaming_generator(flask_client: httpx.AsyncClient) -> None:
    async with flask_client.stream("GET", "/mnt/stream?lines=2000") as response:
        lines = [line async for line in response.aiter_lines()]
    assert lines == [f"line {n}" for n in range(2000)]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "status"), [("/mnt/nowhere", 404), ("/mnt/abort", 403)])
async def test_flask_404_and_abort(flask_client: httpx.AsyncClient, path: str, status: int) -> None:
    assert (await flask_client.get(path)).status_code == status


@pytest.mark.anyio
async def test_flask_send_file(flask_client: httpx.AsyncClient) -> None:
    response = await flask_client.get("/mnt/file")
    assert response.content == FLASK_APP_SOURCE


@pytest.mark.anyio
async def test_flask_error_is_flasks_own_500(flask_client: httpx.AsyncClient) -> None:
    assert (await flask_client.get("/mnt/error")).status_code == 500


@pytest.fixture
async def django_client() -> AsyncIterator[httpx.AsyncClient]:
    # Imported here: it configures Django's process-wide settings, which only these
    # tests should pay for.
    from tests.apps import django_app

    transport = httpx.ASGITransport(app=drained(django_app.asgi))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.mark.anyio
async def test_django_json_form_and_stream(django_client: httpx.AsyncClient) -> None:
    hello = await django_client.get("/hello")
    assert hello.json() == {"hello": "django", "path": "/hello", "path_info": "/hello"}
    echo = await django_client.post("/echo?q=1", data={"a": "b"})
    assert echo.json() == {"form": {"a": "b"}, "query": {"q": "1"}}
    stream = await django_client.get("/stream")
    assert stream.text == "".join(f"chunk {n}\n" for n in range(5))
    assert (await django_client.get("/missing")).status_code == 404


# Real servers --------------------------------------------------------------------------

SERVERS = {
    "uvicorn": [
        "uvicorn",
        "tests.apps.flask_app:asgi",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ],
    "hypercorn-asyncio": [
        "hypercorn",
        "tests.apps.flask_app:asgi",
        "--bind",
        "127.0.0.1:{port}",
        "-k",
        "asyncio",
    ],
    "hypercorn-trio": [
        "hypercorn",
        "tests.apps.flask_app:asgi",
        "--bind",
        "127.0.0.1:{port}",
        "-k",
        "trio",
    ],
    # Offers http.response.pathsend: send_file goes out by path.
    "granian": [
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
        "tests.apps.flask_app:asgi",
    ],
}


def stat(client: httpx.Client, name: str) -> int:
    count: int = client.get("/stats").json()[name]
    return count


def wait_for_stat(client: httpx.Client, name: str, above: int, what: str) -> None:
    deadline = time.monotonic() + 10
    while stat(client, name) <= above:
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def upload_cut_short(base_url: str, client: httpx.Client) -> None:
    """Announce a megabyte, send a kilobyte, and go once the app is reading it."""
    started = stat(client, "uploads_started")
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /digest HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000
        )
        wait_for_stat(client, "uploads_started", started, "the upload did not start")


def websocket_handshake_status(base_url: str) -> bytes:
    """The status line a server answers a websocket handshake with."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        return sock.recv(4096).split(b"\r\n", 1)[0]


@pytest.mark.server
@pytest.mark.parametrize("server", list(SERVERS))
def test_flask_on_a_real_server(server: str) -> None:
    with (
        running_server(SERVERS[server]) as base_url,
        httpx.Client(base_url=base_url, timeout=10) as client,
    ):
        assert client.get("/json").json()["hello"] == "world"
        assert client.post("/form", data={"k": "v"}).json() == {"k": "v"}
        uploaded = client.post("/upload", files={"file": ("u.bin", UPLOAD)}).json()
        assert uploaded["sha256"] == hashlib.sha256(UPLOAD).hexdigest()
        # A chunked upload (no Content-Length) arrives whole.
        digest = client.post("/digest", content=iter([UPLOAD[:1000], UPLOAD[1000:]])).json()
        assert digest == {"size": len(UPLOAD), "sha256": hashlib.sha256(UPLOAD).hexdigest()}
        streamed = client.get("/stream?lines=20000")
        assert streamed.text.splitlines() == [f"line {n}" for n in range(20000)]
        assert client.get("/nowhere").status_code == 404
        # send_file: through http.response.pathsend where the server offers it
        # (granian), in blocks otherwise (uvicorn, hypercorn).
        assert client.get("/file").content == FLASK_APP_SOURCE
        assert client.get("/abort").status_code == 403
        # A WSGI app can not take a websocket: refused before accept (403), nothing hangs.
        assert websocket_handshake_status(base_url).split()[1] == b"403"

        # A client that leaves mid-stream: the server notices, the generator is closed.
        before = stat(client, "closed_streams")
        with httpx.Client(base_url=base_url, timeout=10) as leaving:
            with leaving.stream("GET", "/forever") as response:
                assert len(next(response.iter_bytes())) > 0
        wait_for_stat(client, "closed_streams", before, "the stream was not closed")

        # A client that leaves mid-upload: the app's read raises ClientDisconnected.
        before = stat(client, "cut_uploads")
        upload_cut_short(base_url, client)
        wait_for_stat(client, "cut_uploads", before, "the cut upload read as complete")
