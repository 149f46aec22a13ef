"""``python -m adapter serve APP`` on every server, each started for real in a subprocess.

Every server serves a native app at least once, and an app of the other protocol
through ``WsgiToAsgi`` / ``AsgiToWsgi``; ``--workers 2`` is shown to start two
processes that both answer, by holding one worker busy and seeing another one answer.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import running_server

pytestmark = pytest.mark.server

REQUEST_TIMEOUT = 20.0


def serve(*arguments: str) -> list[str]:
    """The command line for ``python -m adapter serve ARGUMENTS`` on the test's address."""
    return [
        sys.executable,
        "-m",
        "adapter",
        "serve",
        *arguments,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]


def get_json(url: str, **params: str) -> tuple[httpx.Response, dict[str, Any]]:
    # A new connection per request, so that each one may reach any worker.
    response = httpx.get(url, params=params, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return response, body


# server, APP and its options, the interface the app reports, whether WsgiToAsgi wraps it,
# and what the Server header names.
CASES = [
    # Native: the app speaks the server's protocol.
    ("uvicorn", ["tests.apps.cli_asgi:app"], "asgi", False, "uvicorn"),
    ("hypercorn", ["tests.apps.cli_asgi:create_app", "--factory"], "asgi", False, "hypercorn"),
    ("granian", ["tests.apps.cli_asgi:application"], "asgi", False, "granian"),
    ("daphne", ["tests/apps/cli_asgi.py:app"], "asgi", False, "daphne"),
    ("gunicorn", ["tests.apps.cli_wsgi:app"], "wsgi", False, "gunicorn"),
    ("waitress", ["tests/apps/cli_wsgi.py:create_app", "--factory"], "wsgi", False, "waitress"),
    ("wsgiref", ["tests.apps.cli_wsgi:app", "--interface", "wsgi"], "wsgi", False, "wsgiserver"),
    # Across: a WSGI app on an ASGI server, an ASGI app on a WSGI server.
    ("uvicorn", ["tests.apps.cli_flask:app"], "wsgi", True, "uvicorn"),
    ("hypercorn", ["tests.apps.cli_wsgi:app"], "wsgi", True, "hypercorn"),
    ("granian", ["tests.apps.cli_wsgi:create_app", "--factory"], "wsgi", True, "granian"),
    ("daphne", ["tests.apps.cli_wsgi:app"], "wsgi", True, "daphne"),
    ("gunicorn", ["tests.apps.cli_fastapi:app"], "asgi", False, "gunicorn"),
    (
        "waitress",
        ["tests.apps.cli_asgi:application", "--interface", "asgi"],
        "asgi",
        False,
        "waitress",
    ),
    ("wsgiref", ["tests/apps/cli_asgi.py:app"], "asgi", False, "wsgiserver"),
]


@pytest.mark.parametrize(
    ("server", "app", "interface", "wrapped", "server_header"),
    CASES,
    ids=[f"{case[2]}-on-{case[0]}-{case[1][0].rsplit('.', 1)[-1]}" for case in CASES],
)
def test_serves_the_app(
    server: str, app: list[str], interface: str, wrapped: bool, server_header: str
) -> None:
    with running_server(serve(*app, "--server", server, "--log-level", "warning")) as url:
        response, body = get_json(url + "/some/path", q="1")
    assert body["interface"] == interface
    assert body["path"] == "/some/path"
    assert body["wrapped"] is wrapped
    assert server_header in response.headers.get("server", "").lower()


def _wait_for(path: Path, limit: float = REQUEST_TIMEOUT) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def _pids_of_two_requests(url: str, tmp_path: Path) -> tuple[int, int]:
    """Hold one worker busy with /hold; the next request must be answered by another."""
    started, release = tmp_path / "started", tmp_path / "release"
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(get_json, url + "/hold", started=str(started), release=str(release))
        try:
            _wait_for(started)
            _, other = get_json(url + "/")
        finally:
            release.touch()
        _, first = held.result(timeout=REQUEST_TIMEOUT)
    return first["pid"], other["pid"]


@pytest.mark.parametrize(
    ("server", "app"),
    [
        ("uvicorn", "tests.apps.cli_asgi:app"),
        ("hypercorn", "tests.apps.cli_asgi:app"),
        ("gunicorn", "tests.apps.cli_wsgi:app"),
        # The issue's "FastAPI on gunicorn --workers": AsgiToWsgi in forked workers.
        ("gunicorn", "tests.apps.cli_fastapi:app"),
    ],
)
def test_workers_pass_through_and_each_answers(server: str, app: str, tmp_path: Path) -> None:
    command = serve(app, "--server", server, "--workers", "2", "--log-level", "warning")
    if server == "gunicorn":
        # One thread per worker (the sync worker), so a busy worker can not answer.
        command += ["--threads", "1"]
    with running_server(command) as url:
        first, other = _pids_of_two_requests(url, tmp_path)
    assert first != other


def test_wsgi_app_on_uvicorn_workers(tmp_path: Path) -> None:
    # uvicorn's workers import adapter.cli:worker_app, which wraps the app in each of them.
    command = serve("tests.apps.cli_wsgi:app", "--workers", "2", "--log-level", "warning")
    with running_server(command) as url:
        _, body = get_json(url + "/")
    assert body["interface"] == "wsgi"
    assert body["wrapped"] is True


def test_the_issues_first_example_django_wsgi_on_uvicorn() -> None:
    # `python -m adapter serve legacy.wsgi:application`: Django's WSGI handler is an object
    # with a plain __call__(environ, start_response), told apart as WSGI and wrapped.
    with running_server(serve("tests.apps.django_app:application")) as url:
        response = httpx.get(url + "/hello", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200
    assert response.json()["hello"] == "django"
    assert "uvicorn" in response.headers["server"]
