"""The load: wrk for requests per second, raw sockets for the big transfers.

The transfer clients are plain HTTP/1.1 over one socket, reading into one preallocated
buffer and sending from one, so the client costs next to nothing beside the server on a
2-core machine (httpx would spend more CPU than some of the servers under test).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Set
from dataclasses import dataclass

from benchmarks._placements import pinned_to

RECV_BUFFER = 1024 * 1024
SEND_BLOCK = 1024 * 1024
IO_TIMEOUT = 30.0


class TransferFailed(RuntimeError):
    """A transfer got a wrong answer, lost its connection, or ran out of time."""


@dataclass
class Transfer:
    """One timed transfer: bytes moved, seconds from the first byte sent to the last read."""

    nbytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10**6 bytes)."""
        return self.nbytes / self.seconds / 1e6


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_head(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """Read up to the blank line; return the status, lower-cased headers, and body bytes read."""
    data = b""
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline:
            raise TransferFailed("no response head before the deadline")
        piece = sock.recv(65536)
        if not piece:
            raise TransferFailed(f"connection closed before the response head: {data[:200]!r}")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, rest


def _read_body(sock: socket.socket, headers: dict[str, str], already: bytes, limit: int) -> bytes:
    """A small body: up to Content-Length, else to the close (at most ``limit`` bytes)."""
    length = int(headers.get("content-length", limit))
    body = already
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return body[:length]


def get(port: int, path: str = "/", timeout: float = IO_TIMEOUT) -> tuple[int, bytes]:
    """One ``GET`` on a fresh connection; return the status and body.

    :raises TransferFailed: when no complete head arrives in ``timeout`` seconds.
    :raises OSError: when the connection fails.
    """
    with _connect(port) as sock:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode("ascii"))
        status, headers, rest = _read_head(sock, time.monotonic() + timeout)
        return status, _read_body(sock, headers, rest, 1 << 20)


def download(port: int, size: int, time_limit: float) -> Transfer:
    """``GET /stream?size=SIZE`` and read it all into one reused buffer.

    :raises TransferFailed: on a status other than 200, a short body, or past ``time_limit``.
    """
    buffer = bytearray(RECV_BUFFER)
    with _connect(port) as sock:
        start = time.perf_counter()
        deadline = time.monotonic() + time_limit
        request = f"GET /stream?size={size} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sock.sendall(request.encode("ascii"))
        status, _, rest = _read_head(sock, deadline)
        if status != 200:
            raise TransferFailed(f"status {status}")
        received = len(rest)
        while received < size:
            if time.monotonic() > deadline:
                raise TransferFailed(f"{received} of {size} bytes after {time_limit}s")
            count = sock.recv_into(buffer)
            if not count:
                raise TransferFailed(f"connection closed after {received} of {size} bytes")
            received += count
        return Transfer(received, time.perf_counter() - start)


def upload(port: int, size: int, time_limit: float) -> Transfer:
    """``POST /upload`` of ``size`` bytes with a Content-Length; check the count answered.

    :raises TransferFailed: on a wrong status or count, or past ``time_limit``.
    """
    block = memoryview(b"u" * SEND_BLOCK)
    with _connect(port) as sock:
        start = time.perf_counter()
        deadline = time.monotonic() + time_limit
        head = (
            "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
        )
        sock.sendall(head.encode("ascii"))
        sent = 0
        while sent < size:
            if time.monotonic() > deadline:
                raise TransferFailed(f"{sent} of {size} bytes sent after {time_limit}s")
            piece = block[: min(SEND_BLOCK, size - sent)]
            sock.sendall(piece)
            sent += len(piece)
        status, headers, rest = _read_head(sock, deadline)
        body = _read_body(sock, headers, rest, 64)
        seconds = time.perf_counter() - start
    if status != 200 or body != str(size).encode("ascii"):
        raise TransferFailed(f"status {status}, app counted {body[:40]!r} of {size} bytes")
    return Transfer(size, seconds)


_EVENT = re.compile(rb"data: (\d+\.\d+)\n\n")


def event_lateness(port: int, count: int, gap: float, time_limit: float) -> list[float]:
    """``GET /sse``: for each of ``count`` events, how late it arrived, in seconds.

    The app writes ``time.monotonic()`` into each event as it yields it; the client reads
    the same clock (one system-wide clock on Linux) when the event's last byte arrives.
    The events are found in the raw bytes, whatever the chunked framing around them.

    :raises TransferFailed: on a status other than 200, or fewer events than ``count``
        before the connection closes or ``time_limit`` passes.
    """
    with _connect(port) as sock:
        deadline = time.monotonic() + time_limit
        request = (
            f"GET /sse?events={count}&gap={gap} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(request.encode("ascii"))
        status, _, pending = _read_head(sock, deadline)
        if status != 200:
            raise TransferFailed(f"status {status}")
        lateness: list[float] = []
        while True:
            arrived = time.monotonic()
            while (found := _EVENT.search(pending)) is not None:
                lateness.append(arrived - float(found.group(1)))
                pending = pending[found.end() :]
            if len(lateness) >= count:
                return lateness
            if arrived > deadline:
                raise TransferFailed(f"{len(lateness)} of {count} events after {time_limit}s")
            piece = sock.recv(65536)
            if not piece:
                raise TransferFailed(f"connection closed after {len(lateness)} of {count} events")
            pending += piece


# wrk


@dataclass
class WrkResult:
    """What one wrk run reported."""

    requests_per_s: float
    requests: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    non_2xx: int
    socket_errors: int
    #: CPU seconds the server's app process used during the run, when measured
    cpu_seconds: float | None = None


def wrk_path() -> str | None:
    """The wrk executable, or ``None`` when it is not installed."""
    return shutil.which("wrk")


def wrk_version(executable: str) -> str:
    """``wrk`` and its version, from what it prints about itself."""
    done = subprocess.run([executable, "-v"], capture_output=True, text=True, timeout=10)
    text = (done.stdout + done.stderr).strip()
    found = re.search(r"wrk\s+\S*?(\d+\.\d+\.\d+)", text)
    return f"wrk {found.group(1)}" if found else text.splitlines()[0]


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
    return float(number) * scale


def parse_wrk(text: str) -> WrkResult:
    """Read wrk's ``--latency`` report.

    :raises ValueError: when the report has no ``Requests/sec`` line.
    """
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if rate is None or total is None:
        raise ValueError(f"unexpected wrk output: {text[-500:]!r}")
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", text)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    # A server that closes after each response (gunicorn's sync worker) shows up as
    # "read" errors in wrk; only connect/write/timeout errors mean requests were lost.
    lost = sum(int(errors.group(index)) for index in (1, 3, 4)) if errors else 0
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        latency_p50_ms=_milliseconds(p50.group(1)) if p50 else None,
        latency_p99_ms=_milliseconds(p99.group(1)) if p99 else None,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=lost,
    )


def run_wrk(
    executable: str,
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: float,
    cpus: Set[int] | None = None,
) -> WrkResult:
    """Run wrk against ``url`` for ``seconds`` and parse its report.

    :param cpus: the CPUs wrk may run on (default: any).
    :raises subprocess.TimeoutExpired: when wrk runs 30 seconds past its duration.
    :raises ValueError: when its report can not be read.
    """
    argv = [
        executable,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        url,
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 30, preexec_fn=pinned_to(cpus)
    )
    return parse_wrk(done.stdout + done.stderr)
