"""Starlette and FastAPI apps through AsgiToWsgi (issue 3 points 2, 9 and 10).

In memory through ``werkzeug.test.Client`` and ``LintMiddleware`` on asyncio and trio;
then for real under gunicorn (sync and gthread workers, and ``--preload`` with two
workers for fork safety) and waitress, started by ``tests.servers.running_server`` on
free loopback ports and stopped by process id.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from adapter import AsgiToWsgi
from tests.apps import fastapi_app, starlette_app
from tests.asgi_to_wsgi.test_app import backend
from tests.servers import running_server

__all__ = ["backend"]  # the fixture, re-used

UPLOAD = bytes(range(256)) * 1200  # 300 KiB: several body pieces


def fetch(app: AsgiToWsgi, path: str, method: str = "GET", **kwargs: Any) -> Any:
    """One request through LintMiddleware; returns the response, read and closed."""
    response = Client(LintMiddleware(app)).open(path, method=method, **kwargs)
    try:
        response.get_data()
    finally:
        response.close()
    return response


@pytest.fixture
def starlette(backend: str) -> Iterator[AsgiToWsgi]:
    app = AsgiToWsgi(starlette_app.app, backend=backend)
    yield app
    app.close()


@pytest.fixture
def fastapi(backend: str) -> Iterator[AsgiToWsgi]:
    app = AsgiToWsgi(fastapi_app.app, backend=backend)
    yield app
    app.close()


# ---- in memory -------------------------------------------------------------------------


def test_starlette_in_memory(starlette: AsgiToWsgi) -> None:
    hello = fetch(starlette, "/")
    assert (hello.status_code, hello.data) == (200, b"hello")
    assert hello.headers["x-middleware"] == "yes"  # BaseHTTPMiddleware
    assert fetch(starlette, "/stream").data == b"0\n1\n2\n3\n4\n"
    assert fetch(starlette, "/file").data == starlette_app.FILE.read_bytes()
    assert fetch(starlette, "/state").json["started_in"] == fetch(starlette, "/state").json["pid"]


def test_starlette_background_task_runs(starlette: AsgiToWsgi) -> None:
    assert fetch(starlette, "/background?item=in-memory", method="POST").data == b"queued"
    assert "in-memory" in fetch(starlette, "/background").json


@pytest.mark.parametrize("chunked", [False, True])
def test_starlette_request_body(starlette: AsgiToWsgi, chunked: bool) -> None:
    if chunked:  # no length; the server says the input ends with the body
        response = fetch(
            starlette,
            "/echo",
            method="POST",
            input_stream=io.BytesIO(UPLOAD),
            environ_overrides={"wsgi.input_terminated": True},
        )
    else:
        response = fetch(starlette, "/echo", method="POST", data=UPLOAD)
    assert response.data == UPLOAD


def test_starlette_error_is_a_500_and_reaches_the_server(starlette: AsgiToWsgi) -> None:
    # Starlette's ServerErrorMiddleware sends the 500 itself, then re-raises: the
    # exception reaches the WSGI server when it closes the response.
    response = Client(LintMiddleware(starlette)).get("/error")
    assert response.status_code == 500
    response.get_data()
    with pytest.raises(RuntimeError, match="the endpoint broke"):
        response.close()


def test_fastapi_in_memory(fastapi: AsgiToWsgi) -> None:
    root = fetch(fastapi, "/").json
    assert root["greeting"] == "hello from lifespan"
    assert fetch(fastapi, "/items", method="POST", json={"name": "a", "quantity": 21}).json == {
        "name": "a",
        "total": 42,
    }
    upload = fetch(fastapi, "/upload", method="POST", data={"file": (io.BytesIO(UPLOAD), "u.bin")})
    assert upload.json == {
        "filename": "u.bin",
        "size": len(UPLOAD),
        "sha256": hashlib.sha256(UPLOAD).hexdigest(),
    }
    assert fetch(fastapi, "/sync").json == {"ran": "in a worker thread"}
    invalid = fetch(fastapi, "/items", method="POST", json={"name": "a"})
    assert invalid.status_code == 422


# ---- real servers ------------------------------------------------------------------------

SERVERS = {
    "gunicorn-sync": ["gunicorn", "-w", "1", "-k", "sync", "-b", "127.0.0.1:{port}", "{app}"],
    "gunicorn-gthread": [
        *["gunicorn", "-w", "1", "-k", "gthread", "--threads", "4"],
        *["-b", "127.0.0.1:{port}", "{app}"],
    ],
    "waitress": ["waitress-serve", "--listen=127.0.0.1:{port}", "{app}"],
}


def server_command(server: str, app: str) -> list[str]:
    return [part.replace("{app}", app) for part in SERVERS[server]]


def chunked(data: bytes, size: int = 50_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.server
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_starlette_on_a_real_server(server: str) -> None:
    with (
        running_server(server_command(server, "tests.apps.starlette_app:application")) as url,
        httpx.Client(base_url=url, timeout=20) as client,
    ):
        hello = client.get("/")
        assert (hello.status_code, hello.text) == (200, "hello")
        assert hello.headers["x-middleware"] == "yes"
        assert client.get("/stream").content == b"0\n1\n2\n3\n4\n"
        assert client.get("/file").content == starlette_app.FILE.read_bytes()
        assert client.post("/echo", content=UPLOAD).content == UPLOAD
        # A chunked upload (no Content-Length) arrives whole, not empty.
        assert client.post("/echo", content=chunked(UPLOAD)).content == UPLOAD
        assert client.post("/background", params={"item": server}).text == "queued"
        assert server in client.get("/background").json()
        state = client.get("/state").json()
        assert state["started_in"] == state["pid"]  # lifespan ran in the worker
        assert client.get("/error").status_code == 500


@pytest.mark.server
@pytest.mark.parametrize("server", ["gunicorn-sync", "waitress"])
def test_fastapi_on_a_real_server(server: str) -> None:
    with (
        running_server(server_command(server, "tests.apps.fastapi_app:application")) as url,
        httpx.Client(base_url=url, timeout=20) as client,
    ):
        assert client.get("/").json()["greeting"] == "hello from lifespan"
        assert client.post("/items", json={"name": "b", "quantity": 4}).json()["total"] == 8
        upload = client.post("/upload", files={"file": ("u.bin", UPLOAD)}).json()
        assert upload["sha256"] == hashlib.sha256(UPLOAD).hexdigest()
        assert client.get("/sync").json() == {"ran": "in a worker thread"}


@pytest.mark.server
def test_gunicorn_preload_two_workers_fork_safety(tmp_path: Path) -> None:
    # The master builds the app and serves a request with it (loop thread and lifespan
    # running), then forks two sync workers: each must serve with its own loop.
    flag = tmp_path / "release"
    command = [
        *["gunicorn", "--preload", "-w", "2", "-k", "sync", "-b", "127.0.0.1:{port}"],
        "tests.apps.starlette_app:used_in_parent()",
    ]
    with running_server(command) as url, httpx.Client(base_url=url, timeout=30) as client:
        held: list[httpx.Response] = []
        holder = threading.Thread(
            target=lambda: held.append(client.get("/hold", params={"flag": str(flag)}))
        )
        holder.start()
        held_marker = tmp_path / "release.held"
        deadline = time.monotonic() + 20
        while not held_marker.exists() and time.monotonic() < deadline:  # an event, polled
            time.sleep(0.01)
        assert held_marker.exists(), "no worker took the held request"
        try:
            # A sync worker serves one request at a time: while one worker holds
            # /hold, the other worker must answer these.
            states = [client.get("/state", headers={"Connection": "close"}).json()]
        finally:
            flag.touch()
            holder.join(30)
        assert held, "the held request never finished"
        assert held[0].status_code == 200
        other_pid = held[0].json()["pid"]
        assert all(state["pid"] != other_pid for state in states)
        for state in states:
            assert state["started_in"] == state["pid"]  # its own lifespan, not the master's
        assert client.get("/").text == "hello"


@pytest.mark.server
@pytest.mark.parametrize("server", ["gunicorn-sync", "gunicorn-gthread"])
def test_server_sent_events_arrive_one_by_one_on_a_real_server(server: str, tmp_path: Path) -> None:
    # waitress is left out: it holds output back until 18000 bytes are buffered.
    ack = str(tmp_path / "ack")
    with (
        running_server(server_command(server, "tests.apps.starlette_app:application")) as url,
        httpx.Client(base_url=url, timeout=20) as client,
        client.stream("GET", "/events", params={"ack": ack}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        for number in range(3):
            expected = b"data: %d\n\n" % number
            received = b""
            while len(received) < len(expected):  # the app waits for our ack: no more
                received += next(chunks)
            assert received == expected
            Path(f"{ack}-{number}").touch()
        assert b"".join(chunks) == b""


@pytest.mark.server
def test_lifespan_shutdown_runs_when_gunicorn_stops_its_worker(tmp_path: Path) -> None:
    command = server_command("gunicorn-sync", "tests.apps.starlette_app:application")
    env = {"STARLETTE_APP_SHUTDOWN_DIR": str(tmp_path)}
    with running_server(command, env=env) as url, httpx.Client(base_url=url) as client:
        worker_pid = client.get("/state").json()["pid"]
    # running_server stopped gunicorn (SIGTERM): the worker exited normally, and the
    # interpreter-exit hook ran the app's lifespan shutdown in it.
    assert (tmp_path / f"shutdown-{worker_pid}").exists()


def read_response(
    sock: socket.socket, buffered: bytes, *, to_head: bool = False
) -> tuple[bytes, bytes, bytes]:
    """One HTTP/1.1 response off ``sock``: (status line and headers, body, bytes after).

    ``to_head``: the response to a HEAD request, which has no body whatever its
    Content-Length says (RFC 9110 9.3.2).
    """
    while b"\r\n\r\n" not in buffered:
        data = sock.recv(65536)
        assert data, f"the connection closed mid-response: {buffered!r}"
        buffered += data
    head, _, rest = buffered.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if to_head:
        length = 0
    while len(rest) < length:
        data = sock.recv(65536)
        assert data, f"the connection closed mid-body: {rest!r}"
        rest += data
    return head, rest[:length], rest[length:]


@pytest.mark.server
def test_head_then_get_on_one_waitress_connection(tmp_path: Path) -> None:
    # waitress writes out what the app yields, even for HEAD: a body there would be
    # read as the start of the next response on the connection.
    command = server_command("waitress", "tests.apps.fastapi_app:application")
    with running_server(command) as url:
        host, port = url.rsplit("/", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=15) as sock:
            sock.sendall(b"HEAD /items HTTP/1.1\r\nHost: x\r\n\r\n")  # 405, a JSON body
            head, _, rest = read_response(sock, b"", to_head=True)
            assert head.startswith(b"HTTP/1.1 405 ")
            assert b"content-length:" in head.lower()  # kept: what GET would send
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body, rest = read_response(sock, rest)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert json.loads(body)["greeting"] == "hello from lifespan"
            assert rest == b""
