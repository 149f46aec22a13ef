"""The options of ``python -m adapter serve`` that only some servers honour, each server
started for real: TLS, a Unix socket, ``--root-path``, ``--forwarded-allow-ips``, the
words after ``--``, ``--threads`` (a stream does not block other requests), the servers'
own environment settings, and ``--reload``.

One started server checks several options at once, to keep the real-server tests few.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.cli.servers import SERVERS
from tests.servers import running_server, started_server

pytestmark = pytest.mark.server

REQUEST_TIMEOUT = 20.0
START_TIMEOUT = 30.0

# What each server, given these words after --, shows the app: a root_path, or (uvicorn)
# a response header.
SERVER_ARGS: dict[str, list[str]] = {
    "uvicorn": ["--header", "x-server-option:given"],
    "hypercorn": ["--root-path", "/via-args"],
    "granian": ["--url-path-prefix", "/via-args"],
    "daphne": ["--root-path", "/via-args"],
    "gunicorn": ["--env", "SCRIPT_NAME=/via-args"],
    "waitress": ["--url-prefix=/via-args"],
}

# Whether the server expects the proxy to have taken the prefix off the path already
# (uvicorn adds root_path in front of the path it receives; the others take the path as
# it comes, prefix included).
PREFIX_STRIPPED_BY_PROXY = {"uvicorn"}


def serve(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "adapter", "serve", "--log-level", "warning", *arguments]


def _request_path(server: str, prefix: str) -> str:
    return "/some/path" if server in PREFIX_STRIPPED_BY_PROXY else prefix + "/some/path"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made now: (certificate file, key file)."""
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=127.0.0.1", "-keyout", str(key_file), "-out", str(cert_file)),
            ],
            check=True,
            capture_output=True,
        )
        return str(cert_file), str(key_file)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def _supporting(option: str) -> list[str]:
    return [name for name, server in SERVERS.items() if option in server.options]


@pytest.mark.parametrize("server", _supporting("--ssl-certfile"))
def test_tls_and_the_words_after_double_dash(server: str, certificate: tuple[str, str]) -> None:
    cert_file, key_file = certificate
    command = serve(
        "tests.apps.cli_wsgi:app",
        "--server",
        server,
        "--port",
        "{port}",
        "--ssl-certfile",
        cert_file,
        "--ssl-keyfile",
        key_file,
        "--",
        *SERVER_ARGS[server],
    )
    with running_server(command) as url:
        https = url.replace("http://", "https://")
        response = httpx.get(
            https + _request_path(server, "/via-args"), verify=False, timeout=REQUEST_TIMEOUT
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scheme"] == "https"
    if server == "uvicorn":
        assert response.headers["x-server-option"] == "given"
    else:
        assert body["root_path"] == "/via-args"
        assert body["path"] == "/some/path"


def _socket_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(str(path)) == 0


@contextlib.contextmanager
def running_on_socket(command: list[str], socket_path: Path) -> Iterator[httpx.Client]:
    """Start ``command``, wait until ``socket_path`` answers, yield a client bound to it."""

    def ready() -> bool:
        return socket_path.exists() and _socket_accepts(socket_path)

    with (
        started_server(command, start_timeout=START_TIMEOUT, ready=ready),
        httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url="http://localhost",
            timeout=REQUEST_TIMEOUT,
        ) as client,
    ):
        yield client


@pytest.mark.parametrize("server", _supporting("--uds"))
def test_unix_socket_root_path_and_forwarded_headers(server: str) -> None:
    socket_dir = Path(tempfile.mkdtemp(prefix="adapter-uds-", dir="/tmp"))
    socket_path = socket_dir / "app.sock"
    forwarded = "--forwarded-allow-ips" in SERVERS[server].options
    command = serve(
        "tests.apps.cli_wsgi:app",
        "--server",
        server,
        "--uds",
        str(socket_path),
        "--root-path",
        "/prefix",
        *(["--forwarded-allow-ips", "*"] if forwarded else []),
    )
    try:
        with running_on_socket(command, socket_path) as client:
            response = client.get(
                _request_path(server, "/prefix"),
                headers={"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"},
            )
    finally:
        with contextlib.suppress(OSError):
            socket_path.unlink()
        socket_dir.rmdir()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["root_path"] == "/prefix"
    assert body["path"] == "/some/path"
    assert body["scheme"] == ("https" if forwarded else "http")
    if server in ("uvicorn", "waitress"):  # gunicorn trusts only X-Forwarded-Proto
        assert body["client"] == "203.0.113.7"


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_an_open_event_stream_does_not_block_other_requests(server: str) -> None:
    # gunicorn's sync worker (one thread) would hold the next request until the stream
    # ends; the default --threads serves both.
    with running_server(
        serve("tests.apps.cli_asgi:app", "--server", server, "--port", "{port}")
    ) as url:
        with httpx.stream("GET", url + "/events", timeout=REQUEST_TIMEOUT) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "data: 0"
            other = httpx.get(url + "/", timeout=5.0)
            assert next(lines) in ("", "data: 1")
    assert other.status_code == 200
    assert other.json()["interface"] == "asgi"


@pytest.mark.parametrize(
    ("server", "env"),
    [
        ("uvicorn", {"UVICORN_ROOT_PATH": "/from-env"}),
        ("granian", {"GRANIAN_URL_PATH_PREFIX": "/from-env"}),
        ("gunicorn", {"GUNICORN_CMD_ARGS": "--env SCRIPT_NAME=/from-env"}),
    ],
)
def test_the_servers_own_environment_settings_are_honoured(
    server: str, env: dict[str, str]
) -> None:
    command = serve("tests.apps.cli_wsgi:app", "--server", server, "--port", "{port}")
    with running_server(command, env=env) as url:
        response = httpx.get(url + _request_path(server, "/from-env"), timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["root_path"] == "/from-env"


RELOAD_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{answer}"]
"""


@pytest.mark.parametrize("server", _supporting("--reload"))
def test_reload_serves_the_edited_app(server: str, tmp_path: Path) -> None:
    app_file = tmp_path / "reloaded_app.py"
    app_file.write_text(RELOAD_APP.format(answer="before"))
    command = serve(f"{app_file}:app", "--server", server, "--port", "{port}", "--reload")
    with running_server(command, cwd=tmp_path) as url:
        assert httpx.get(url + "/", timeout=REQUEST_TIMEOUT).text == "before"
        # A server may answer before its file watcher is up (uvicorn's reloader starts
        # watching a moment after it starts the worker), and an edit made before then is
        # never seen.  A person who edits again after a while is served; so is the test:
        # it saves the edit again each second until the new answer comes.
        deadline = time.monotonic() + REQUEST_TIMEOUT
        answer: Any = None
        next_save = 0.0
        while answer != "after":
            assert time.monotonic() < deadline, f"still {answer!r} after the edit"
            if time.monotonic() >= next_save:
                app_file.write_text(RELOAD_APP.format(answer="after"))
                next_save = time.monotonic() + 1.0
            with contextlib.suppress(httpx.TransportError):
                answer = httpx.get(url + "/", timeout=2.0).text
            time.sleep(0.1)
