"""The subprocess-server harness itself: it starts, serves and always stops."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import ServerFailed, free_port, running_server

pytestmark = pytest.mark.server

HELLO = (
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '2')\n"
    "        self.end_headers(); self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


def test_running_server_serves_then_is_stopped() -> None:
    with running_server([sys.executable, "-c", HELLO, "{port}"]) as base_url:
        with urllib.request.urlopen(base_url + "/") as response:
            assert response.read() == b"ok"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base_url + "/", timeout=2)


def test_running_server_reports_a_failed_start() -> None:
    with (
        pytest.raises(ServerFailed, match="exited with 3"),
        running_server([sys.executable, "-c", "print('boom'); raise SystemExit(3)"]),
    ):
        pass  # pragma: no cover


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_running_server_is_stopped_by_group(tmp_path: Path) -> None:
    # A server that forks a worker: both must be gone after the block.
    pid_file = tmp_path / "worker.pid"
    forking = (
        "import os, sys, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(3600)\n"
    ) + HELLO
    with running_server([sys.executable, "-c", forking, "{port}"]) as base_url:
        with urllib.request.urlopen(base_url + "/") as response:
            assert response.read() == b"ok"
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        worker = int(pid_file.read_text())
        assert _alive(worker)
    deadline = time.monotonic() + 10
    while _alive(worker):
        assert time.monotonic() < deadline, "the forked worker outlived the server"
        time.sleep(0.01)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base_url + "/", timeout=2)
