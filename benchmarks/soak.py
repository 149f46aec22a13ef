"""A bounded soak of AsgiToWsgi on gunicorn: does the worker's memory settle or grow?

It runs a Starlette hello world through :class:`adapter.AsgiToWsgi` on gunicorn's
``gthread`` worker (one worker), loads it with wrk (one thread) plus a client that
makes about one request in five end early (it closes before reading the answer, sends
half a declared body and goes, or cuts a streamed answer short), and samples the
worker's resident set (``VmRSS`` in ``/proc/PID/status``) after each round.  With
``--counts`` the app also answers ``/_soak/counts`` with what only the worker can see:
live asyncio tasks on adapter's loop, threads, objects the garbage collector tracks
(total, and by type), and, with ``--tracemalloc``, the top allocation sites grown since
the first sample.  The counts request is made after each round, with the load paused.

Everything stays on 127.0.0.1; the run stops by itself after ``--seconds`` or
``--max-requests``, whichever comes first, and stops its server by pid::

    python -m benchmarks.soak --seconds 600 --counts
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import os
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks._clients import get, run_wrk, wrk_path
from benchmarks._servers import memory_kib, running

COUNTS_PATH = "/_soak/counts"
#: Set in the worker's environment by ``--counts``: the app then answers COUNTS_PATH.
COUNTS_ENV = "ADAPTER_SOAK_COUNTS"
#: Set by ``--tracemalloc``: the worker traces allocations (slower) for the counts.
TRACEMALLOC_ENV = "ADAPTER_SOAK_TRACEMALLOC"
STREAM_CHUNKS = 64
STREAM_CHUNK = b"x" * 16384


# -- the app, in the worker ------------------------------------------------------------


def soak_app() -> Any:
    """The WSGI app gunicorn serves: AsgiToWsgi around a Starlette hello world.

    ``/`` says hello, ``/stream`` streams 1 MiB (for clients that cut it short), and
    with ``ADAPTER_SOAK_COUNTS`` set, ``/_soak/counts`` reports the worker's counts.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    from adapter import AsgiToWsgi

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, world!")

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            for _ in range(STREAM_CHUNKS):
                yield STREAM_CHUNK

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    routes = [Route("/", hello, methods=["GET", "POST"]), Route("/stream", stream)]
    if os.environ.get(COUNTS_ENV):
        if os.environ.get(TRACEMALLOC_ENV):
            import tracemalloc

            tracemalloc.start(8)
        routes.append(Route(COUNTS_PATH, _counts_endpoint()))
    return AsgiToWsgi(Starlette(routes=routes))


def _counts_endpoint() -> Any:
    import asyncio
    import tracemalloc

    from starlette.requests import Request
    from starlette.responses import JSONResponse

    first_snapshot: list[tracemalloc.Snapshot] = []

    async def counts(request: Request) -> JSONResponse:
        gc.collect()
        objects = gc.get_objects()
        by_type = collections.Counter(type(thing).__qualname__ for thing in objects)
        report: dict[str, Any] = {
            # This request's own task is one of them.
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "gc_objects": len(objects),
            "by_type": dict(by_type.most_common(25)),
        }
        del objects
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            if not first_snapshot:
                first_snapshot.append(snapshot)
            grown = snapshot.compare_to(first_snapshot[0], "traceback")[:10]
            report["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
            report["grown"] = [
                {
                    "kib": stat.size_diff / 1024,
                    "blocks": stat.count_diff,
                    "at": stat.traceback.format()[-6:],
                }
                for stat in grown
            ]
        return JSONResponse(report)

    return counts


# -- the clients, in this process ------------------------------------------------------


@dataclass
class EarlyClosers:
    """Requests that end early, made in a loop until :meth:`stop`; counted by kind."""

    port: int
    made: collections.Counter[str] = field(default_factory=collections.Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _paused: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._paused.set()  # until the first round starts

    def run(self, per_second: float) -> None:
        kinds = [self._no_read, self._half_body, self._cut_stream]
        turn = threading.get_ident()  # client threads start on different kinds
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.05)
                continue
            started = time.monotonic()
            kind = kinds[turn % len(kinds)]
            turn += 1
            with contextlib.suppress(OSError):
                kind()
                with self._lock:
                    self.made[kind.__name__.strip("_")] += 1
            # Pace the requests: this client adds load, it does not compete with wrk.
            self._stop.wait(max(0.0, 1.0 / per_second - (time.monotonic() - started)))

    def pause(self, paused: bool) -> None:
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def stop(self) -> None:
        self._stop.set()

    def _connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def _no_read(self) -> None:
        # The request is complete; the client goes without reading the answer.
        with self._connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")

    def _half_body(self) -> None:
        # A body with a declared length (never a malformed chunked one), cut in half.
        with self._connect() as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: soak\r\nContent-Length: 2000\r\n"
                b"Content-Type: text/plain\r\n\r\n" + b"y" * 1000
            )

    def _cut_stream(self) -> None:
        # Reads the head of a 1 MiB answer, then closes: the server's write fails.
        with self._connect() as sock:
            sock.sendall(b"GET /stream HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            sock.recv(4096)
            # Linger 0: the close resets the connection, as a client that crashed would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# -- the run -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="run time at most")
    parser.add_argument(
        "--max-requests", type=int, default=1_000_000, help="stop after this many requests"
    )
    parser.add_argument("--round", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn gthread threads")
    parser.add_argument(
        "--early-share", type=float, default=0.2, help="share of requests that end early"
    )
    parser.add_argument(
        "--closer-threads", type=int, default=3, help="client threads for early closers"
    )
    parser.add_argument("--counts", action="store_true", help="ask the worker for counts")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="trace allocations in the worker (slow)"
    )
    parser.add_argument("--json", help="also write the samples to this file")
    options = parser.parse_args(argv)
    wrk = wrk_path()
    if wrk is None:
        print("wrk is needed: install it (https://github.com/wg/wrk)", file=sys.stderr)
        return 2
    if options.counts:
        os.environ[COUNTS_ENV] = "1"
    if options.tracemalloc:
        os.environ[COUNTS_ENV] = os.environ[TRACEMALLOC_ENV] = "1"
    command = [
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        str(options.threads),
        "--bind",
        "127.0.0.1:{port}",
        "--log-level",
        "warning",
        "benchmarks.soak:soak_app()",
    ]
    samples: list[dict[str, Any]] = []
    with running("gunicorn gthread, AsgiToWsgi(Starlette)", command, forks_worker=True) as server:
        pid = server.app_pid()
        get(server.port, "/")  # the first request starts adapter's loop and lifespan
        closers = EarlyClosers(server.port)
        closer_threads: list[threading.Thread] = []
        started = time.monotonic()
        served = 0
        samples.append(_sample(0.0, served, closers, pid, server.port, options.counts))
        _print(samples[-1])
        try:
            while server.alive() and served < options.max_requests:
                left = options.seconds - (time.monotonic() - started)
                if left < 1:
                    break
                closers.pause(False)
                result = run_wrk(
                    wrk,
                    server.base_url + "/",
                    threads=1,
                    connections=options.connections,
                    seconds=min(options.round, left),
                )
                closers.pause(True)
                served += result.requests
                if not closer_threads:
                    # From the second round on, early closers at their share of what
                    # wrk managed in the first, spread over a few client threads.
                    share = options.early_share / (1 - options.early_share)
                    rate = max(1.0, result.requests_per_s * share) / options.closer_threads
                    for _ in range(options.closer_threads):
                        thread = threading.Thread(target=closers.run, args=(rate,), daemon=True)
                        thread.start()
                        closer_threads.append(thread)
                samples.append(
                    _sample(
                        time.monotonic() - started,
                        served + sum(closers.made.values()),
                        closers,
                        pid,
                        server.port,
                        options.counts,
                    )
                )
                _print(samples[-1])
        finally:
            closers.stop()
            for thread in closer_threads:
                thread.join()
        if not server.alive():
            print("the server died:\n" + server.output_tail(), file=sys.stderr)
            return 1
    _summary(samples)
    if options.json:
        with open(options.json, "w") as out:
            json.dump(samples, out, indent=1)
    return 0


def _sample(
    elapsed: float,
    served: int,
    closers: EarlyClosers,
    pid: int,
    port: int,
    counts: bool,
) -> dict[str, Any]:
    sample: dict[str, Any] = {
        "seconds": round(elapsed, 1),
        "requests": served,
        "early": dict(closers.made),
        "rss_kib": memory_kib(pid).get("VmRSS"),
    }
    if counts:
        status, body = get(port, COUNTS_PATH, timeout=60)
        if status == 200:
            sample["counts"] = json.loads(body)
    return sample


def _print(sample: dict[str, Any]) -> None:
    line = (
        f"{sample['seconds']:7.1f} s  {sample['requests']:9,d} requests  "
        f"RSS {sample['rss_kib'] / 1024:7.2f} MiB"
    )
    counts = sample.get("counts")
    if counts:
        line += (
            f"  tasks {counts['tasks']}  threads {counts['threads']}"
            f"  gc objects {counts['gc_objects']:,d}"
        )
        if "traced_kib" in counts:
            line += f"  traced {counts['traced_kib']:,d} KiB"
    print(line, flush=True)


def _summary(samples: list[dict[str, Any]]) -> None:
    if len(samples) < 3:
        return
    first, second, last = samples[0], samples[1], samples[-1]
    requests = last["requests"] - second["requests"]
    grown = (last["rss_kib"] - second["rss_kib"]) * 1024
    print(
        f"after the first round: {requests:,d} requests, RSS "
        f"{second['rss_kib'] / 1024:.2f} -> {last['rss_kib'] / 1024:.2f} MiB, "
        f"{grown / max(1, requests):.1f} bytes per request "
        f"(start {first['rss_kib'] / 1024:.2f} MiB)"
    )
    early = sum(last["early"].values())
    print(
        f"ended early: {early:,d} of {last['requests']:,d} requests "
        f"({100 * early / max(1, last['requests']):.1f}%): {last['early']}"
    )
    half = samples[len(samples) // 2]
    late = last["requests"] - half["requests"]
    if late > 0:
        print(
            f"second half only: {late:,d} requests, "
            f"{(last['rss_kib'] - half['rss_kib']) * 1024 / late:.1f} bytes per request"
        )
    if "counts" in last and "counts" in second:
        before, after = second["counts"]["by_type"], last["counts"]["by_type"]
        grew = {
            name: after[name] - before.get(name, 0)
            for name in after
            if after[name] - before.get(name, 0) > 0
        }
        print(f"gc-tracked types that grew since the first round: {grew}")
        for stat in last["counts"].get("grown", [])[:5]:
            print(f"  {stat['kib']:+.1f} KiB {stat['blocks']:+d} blocks at {stat['at'][-2:]}")


if __name__ == "__main__":
    sys.exit(main())
