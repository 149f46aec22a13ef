"""Servers as subprocesses on free loopback ports, measured through /proc, stopped by pid.

Each server is started in its own session, so the worker processes it forks (gunicorn's)
share its process group and are stopped with it. Memory is read from
``/proc/PID/status`` of the process that runs the app: ``VmHWM`` is the kernel's record of
the peak resident set, so nothing has to be polled while a transfer runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from benchmarks._placements import pinned_to

# One harness for tests and benchmarks: free ports, readiness, the start-failure error.
from tests.servers import ServerFailed as ServerFailed  # re-exported for _scenarios
from tests.servers import free_port, stop_process_group
from tests.servers import port_accepts as _accepts

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_GRACE = 5.0


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (read from /proc, no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # The command name (field 2) may hold spaces; the ppid follows its ")".
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of ``pid`` in KiB; empty when the process is gone."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` (all its threads) has used, or None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields 14 and 15 (utime, stime), counted after the ")" that ends field 2.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running server: its URL, the process we started, and the one that runs the app."""

    name: str
    argv: list[str]
    port: int
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    forks_worker: bool

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def app_pid(self) -> int:
        """The pid running the app: the single worker of a pre-fork server, else the server."""
        if self.forks_worker:
            children = _children(self.process.pid)
            if children:
                return children[0]
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process we started still runs."""
        return self.process.poll() is None

    def output_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters the server wrote (stdout and stderr)."""
        self.output.flush()
        self.output.seek(0)
        text = self.output.read().decode("utf-8", "replace")
        return text[-limit:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    stop_process_group(process, STOP_GRACE)


@contextlib.contextmanager
def running(
    name: str,
    command: Sequence[str],
    *,
    forks_worker: bool = False,
    cpus: Set[int] | None = None,
    env: Mapping[str, str] | None = None,
    first_on_path: Path | None = None,
) -> Iterator[Server]:
    """Start ``command`` (``{port}`` filled in with a free port) and yield it once it listens.

    A bare executable name is taken from the running interpreter's ``bin`` directory, so
    the servers are the ones installed beside it. The repository root is put on
    ``PYTHONPATH`` so ``benchmarks.apps`` imports.

    :param name: a label for messages.
    :param command: the argv, with ``{port}`` where the port goes.
    :param forks_worker: true for a pre-fork server whose single child runs the app.
    :param cpus: the CPUs the server (and every process and thread it starts) may run
        on; default any.
    :param env: variables added to this process's environment for the server.
    :param first_on_path: a directory to import before the repository root (an older
        ``adapter``: see ``benchmarks/_baseline.py``); it is also the server's working
        directory, since uvicorn and gunicorn put theirs first on ``sys.path``.
    :raises ServerFailed: when the server exits or does not listen within 30 seconds.
    """
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    local = Path(sys.executable).parent / argv[0]
    if os.sep not in argv[0] and local.exists():
        argv[0] = str(local)
    env = {**os.environ, **(env or {})}
    first = [str(first_on_path)] if first_on_path is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*first, str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            argv,
            cwd=first_on_path or ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pinned_to(cpus),
        )
        server = Server(name, argv, port, process, output, forks_worker)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _accepts(port):
                if process.poll() is not None:
                    raise ServerFailed(
                        f"{name}: exited with {process.returncode} before listening\n"
                        + server.output_tail()
                    )
                if time.monotonic() > deadline:
                    raise ServerFailed(f"{name}: not listening after {START_TIMEOUT}s")
                time.sleep(0.05)
            yield server
        finally:
            _stop(process)
