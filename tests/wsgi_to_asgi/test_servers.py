"""WsgiToAsgi on real ASGI servers, for what only a real server shows.

Each server runs in a subprocess on a free loopback port and is stopped by its
process id; its output is read after it stopped, for the tracebacks it logged.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import h11
import httpx
import pytest

from tests.servers import ROOT, StartedServer, run_python, started_server

pytestmark = pytest.mark.server

REQUEST_TIMEOUT = 20.0


@contextlib.contextmanager
def server(command: Sequence[str], *, env: dict[str, str] | None = None) -> Iterator[StartedServer]:
    """Start ``command`` (``{port}`` filled in); its ``output`` is there once it stopped."""
    with started_server(command, env=env) as started:
        yield started


# ---- A: Django's cookies on uvicorn's h11 ------------------------------------------------


def test_django_admin_login_and_csrf_form_on_uvicorn_h11(tmp_path: Path) -> None:
    # Django writes "Set-Cookie: ' csrftoken=...'" (a leading space); h11 refused the
    # whole response until WsgiToAsgi stripped header values (RFC 9110 5.5).
    env = {"DJANGO_ADMIN_DB": str(tmp_path / "db.sqlite3")}
    setup = run_python(
        "-c",
        "from tests.apps.django_admin_app import prepare_database; "
        "prepare_database('admin', 'secret-pw')",
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
    )
    assert setup.returncode == 0, setup.stderr
    command = ["uvicorn", "tests.apps.django_admin_app:asgi", "--http", "h11"]
    with (
        server([*command, "--port", "{port}"], env=env) as running,
        httpx.Client(base_url=running.url, timeout=REQUEST_TIMEOUT) as client,
    ):
        page = client.get("/form/")
        assert page.status_code == 200
        token = re.search(r'value="([^"]+)"', page.text)
        assert token is not None
        assert "csrftoken" in client.cookies
        posted = client.post("/form/", data={"csrfmiddlewaretoken": token[1], "name": "ada"})
        assert (posted.status_code, posted.text) == (200, "posted ada")

        login = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token is not None
        logged_in = client.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token[1], "username": "admin", "password": "secret-pw"},
        )
        assert logged_in.status_code == 302, logged_in.text
        assert "sessionid" in client.cookies
        home = client.get("/admin/")
        assert home.status_code == 200
        assert "Site administration" in home.text
    assert "Traceback" not in running.output, running.output


# ---- B: a client that leaves is not an error ---------------------------------------------


def leave_mid_response(port: int, connections: int, rounds: int, pipelined: int = 1) -> None:
    """Keep ``connections`` sockets busy with GETs (``pipelined`` of them back to back on
    each), then reset them all, ``rounds`` times (what wrk does at the end of a run)."""
    request = b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n"
    for _ in range(rounds):
        sockets = [
            socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(connections)
        ]
        for sock in sockets:
            sock.sendall(request * pipelined)
        for sock in sockets:
            sock.recv(1)  # the server is answering: leave now, with a reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


def test_clients_leaving_leave_no_traceback_on_uvicorn_uvloop_httptools() -> None:
    command = ["uvicorn", "tests.apps.flask_app:asgi", "--loop", "uvloop", "--http", "httptools"]
    with server([*command, "--port", "{port}"]) as running:
        leave_mid_response(running.port, connections=64, rounds=20)
        assert httpx.get(running.url + "/json", timeout=REQUEST_TIMEOUT).status_code == 200
    assert "Traceback" not in running.output, running.output
    # Nor uvicorn's own complaint about a response cut short: the client left.
    assert "returned without completing response" not in running.output, running.output


def test_pipelining_clients_leaving_leave_no_traceback_on_uvicorn_uvloop_httptools() -> None:
    # uvicorn (httptools) tells only the newest pipelined request of a connection that it
    # was lost, so the one being answered learns it from send() failing, and uvicorn then
    # logs "ASGI callable returned without completing response" for it (documented in
    # how-it-works).  No traceback, and the server goes on serving.
    command = ["uvicorn", "tests.apps.flask_app:asgi", "--loop", "uvloop", "--http", "httptools"]
    with server([*command, "--port", "{port}"]) as running:
        leave_mid_response(running.port, connections=64, rounds=20, pipelined=4)
        assert httpx.get(running.url + "/json", timeout=REQUEST_TIMEOUT).status_code == 200
    assert "Traceback" not in running.output, running.output


# ---- C and D: exactly the body the response may carry --------------------------------------


def exchange(port: int, requests: bytes, methods: list[str]) -> list[tuple[int, bytes]]:
    """Send ``requests`` on one connection; parse one response per method with h11."""
    connection = h11.Connection(our_role=h11.CLIENT)
    responses: list[tuple[int, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(requests)
        for method in methods:
            # h11 must know the method to know a HEAD response has no body.
            connection.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
            connection.send(h11.EndOfMessage())
            status, body = 0, b""
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    assert data, f"the connection closed before the {method} response ended"
                    connection.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            responses.append((status, body))
            connection.start_next_cycle()
    return responses


def test_a_body_past_its_length_does_not_cost_the_next_pipelined_request() -> None:
    command = ["uvicorn", "tests.apps.wsgi_lengths:asgi", "--http", "h11", "--port", "{port}"]
    with server(command) as running:
        responses = exchange(
            running.port,
            b"GET /too-long HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n",
            ["GET", "GET"],
        )
    assert responses == [(200, b"12345"), (200, b"ok")]
    assert "longer body than its Content-Length" in running.output
    assert "Traceback" not in running.output, running.output


def test_head_then_get_on_one_connection_on_daphne_with_django() -> None:
    command = ["daphne", "-b", "127.0.0.1", "-p", "{port}", "tests.apps.django_app:asgi"]
    with server(command) as running:
        head, get = exchange(
            running.port,
            b"HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
            ["HEAD", "GET"],
        )
    assert head == (200, b"")
    assert get[0] == 200
    assert b'"hello": "django"' in get[1]
    assert "Traceback" not in running.output, running.output
