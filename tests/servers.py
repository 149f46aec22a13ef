"""Real servers in subprocesses, on free loopback ports, always stopped by process id.

Usage in a test::

    with running_server(["uvicorn", "tests.apps.flask_app:asgi"]) as base_url:
        httpx.get(base_url + "/")

``running_server`` appends nothing to the command: put ``{port}`` where the port goes
(``["uvicorn", "mod:app", "--port", "{port}"]``), and it is filled in with a free port.
The process is started in its own session so that a server's forked workers are
stopped with it (by the process group id of the process we started), and its output
is kept so a failing start shows why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = [
    "ServerFailed",
    "StartedServer",
    "free_port",
    "port_accepts",
    "run_python",
    "running_server",
    "started_server",
    "stop_process_group",
]

ROOT = Path(__file__).resolve().parent.parent


class ServerFailed(RuntimeError):
    """The server exited or did not listen in time; the message holds its output."""


def run_python(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run the interpreter running the tests with ``args`` to its end; its text output.

    A non-zero exit is returned, not raised: the caller asserts on it, with stderr.
    """
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_process_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop the process we started and its workers: SIGTERM to its group, then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)
    # Workers the server forked may outlive it for a moment; they share its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class StartedServer:
    """A server a test started: where it listens, and what it printed.

    ``output`` holds everything it printed once it has been stopped; while it runs,
    :meth:`output_so_far` reads it.
    """

    def __init__(self, port: int, log: IO[bytes]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = ""
        self._log = log

    def output_so_far(self) -> str:
        """What the server has printed until now."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")


@contextlib.contextmanager
def started_server(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    start_timeout: float = 30.0,
    ready: Callable[[], bool] | None = None,
) -> Iterator[StartedServer]:
    """Start ``command`` (with ``{port}`` filled in), wait until it is ready, yield it.

    A bare executable name (``"uvicorn"``) is run from the interpreter's own
    ``bin`` directory when it is there, so the test uses the servers installed beside
    the interpreter running the tests.  The server is stopped by its process group id
    when the block ends, however it ends.

    :param ready: says when the server is ready (default: its port accepts connections),
        for a server that listens elsewhere (a Unix socket).
    :raises ServerFailed: when the server exits or is not ready within
        ``start_timeout`` seconds; the message carries its output.
    """
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    local = Path(sys.executable).parent / argv[0]
    if os.sep not in argv[0] and local.exists():
        argv[0] = str(local)
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    is_ready = ready or (lambda: port_accepts(port))
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            argv,
            cwd=cwd or ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = StartedServer(port, output)

        def failure(reason: str) -> ServerFailed:
            return ServerFailed(
                f"{' '.join(argv)}: {reason}\n--- output ---\n{started.output_so_far()}"
            )

        try:
            deadline = time.monotonic() + start_timeout
            while not is_ready():
                if proc.poll() is not None:
                    raise failure(f"exited with {proc.returncode} before it was ready")
                if time.monotonic() > deadline:
                    raise failure(f"not ready after {start_timeout}s")
                time.sleep(0.05)
            yield started
            if proc.poll() is not None:
                raise failure(f"exited with {proc.returncode} while the test ran")
        finally:
            stop_process_group(proc)
            started.output = started.output_so_far()


@contextlib.contextmanager
def running_server(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    start_timeout: float = 30.0,
) -> Iterator[str]:
    """Start ``command`` (with ``{port}`` filled in) and yield its base URL
    (:func:`started_server`, for a test that needs only the URL)."""
    with started_server(command, env=env, cwd=cwd, start_timeout=start_timeout) as started:
        yield started.url
