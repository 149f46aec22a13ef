"""AsgiToWsgi's own cost per request, in-process, with no server (issue 3, the why).

Run as is (``python benchmarks/bench_asgi.py [--quick] [--requests N] [--rounds R]``): it
prints a table per placement and writes ``benchmarks/results/asgi-inprocess.json``.

The requests/s goals of issue 3 are judged behind gunicorn (``benchmarks/run.py``, the
``asgi`` section), where gunicorn's own work per request, the client and the network
stack are in every figure.  This script calls each WSGI app directly, as a server would,
with the environ gunicorn builds for ``GET /`` (an empty ``wsgi.input``), so that what is
left is the app and its bridge:

- ``plain``: the plain WSGI hello world (a few microseconds: the reference);
- ``floor``: the same plus one bare round trip to an event loop thread (a socket-pair
  byte back), the least that any bridge running the ASGI app on a loop thread pays;
- ``ours bare``: ``AsgiToWsgi`` around a bare ASGI hello (the adapter's own cost);
- ``ours starlette`` and ``a2wsgi starlette``: both bridges around a Starlette hello.

Each figure is microseconds per request: wall time (best round, and the median round),
the process's CPU time (user + system, all threads) and its context switches, over the
median round.  Rounds are interleaved (plain, floor, ours, ..., then again) so that a
noisy neighbour hits every contender alike.

Two placements, each in its own process, as in ``bench_sync.py``: every thread pinned to
one CPU, and free on all CPUs.  Free, the request thread and the loop thread run on
different CPUs, and on a virtual machine each hand-off waits for the host to wake the
other CPU and runs there with cold caches: compare the two tables to tell the cost of the
code from the cost of the placement.
"""

from __future__ import annotations

import io
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapter._types import WSGIApp  # noqa: E402
from benchmarks import _placements, apps  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "asgi-inprocess.json"

CONTENDERS: dict[str, Callable[[], WSGIApp]] = {
    "plain": lambda: apps.wsgi_app,
    "floor": apps.wsgi_app_with_loop_hop,
    "ours bare": apps.ours_asgi_to_wsgi_bare,
    "least starlette": apps.least_asgi_to_wsgi,
    "ours starlette": apps.ours_asgi_to_wsgi,
    "a2wsgi starlette": apps.a2wsgi_asgi_middleware,
}


def environ() -> dict[str, Any]:
    """What gunicorn's sync worker passes for ``GET /`` from wrk, less its own objects."""
    return {
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.input": io.BytesIO(b""),
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "",
        "RAW_URI": "/",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "PATH_INFO": "/",
        "SCRIPT_NAME": "",
        "wsgi.url_scheme": "http",
    }


def _start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
) -> Callable[[bytes], object]:
    return _write


def _write(data: bytes) -> None:
    return None


def serve(app: WSGIApp, requests: int) -> tuple[float, float, float]:
    """Seconds of wall time and of CPU time, and context switches, for ``requests``."""
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(requests):
        body = app(environ(), _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    switches = (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw)
    return elapsed, cpu, switches


def run(requests: int, rounds: int) -> dict[str, Any]:
    """Measure every contender; return what goes into the JSON."""
    made = {name: build() for name, build in CONTENDERS.items()}
    for app in made.values():
        serve(app, max(requests // 10, 50))  # warm: loop threads started, lifespan run
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in made}
    for round_number in range(rounds):
        order = list(made) if round_number % 2 == 0 else list(reversed(made))
        for name in order:
            wall, cpu, switches = serve(made[name], requests)
            samples[name].append((wall / requests * 1e6, cpu / requests * 1e6, switches / requests))
    rows = []
    for name, taken in samples.items():
        median_round = sorted(taken)[len(taken) // 2]
        rows.append(
            {
                "name": name,
                "wall_us": round(min(wall for wall, _, _ in taken), 1),
                "wall_median_us": round(statistics.median(wall for wall, _, _ in taken), 1),
                "cpu_us": round(median_round[1], 1),
                "switches": round(median_round[2], 2),
                "wall_rounds_us": [round(wall, 1) for wall, _, _ in taken],
            }
        )
    return {
        "benchmark": "AsgiToWsgi in-process, per request (no server)",
        "unit": "microseconds per request",
        "requests_per_round": requests,
        "rounds": rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "rows": rows,
    }


def table(results: dict[str, Any]) -> str:
    """The rows as a fixed-width text table."""
    header = f"{'contender':<18} {'wall us':>8} {'median':>8} {'cpu us':>8} {'switches':>9}"
    lines = [header, "-" * len(header)]
    for row in results["rows"]:
        lines.append(
            f"{row['name']:<18} {row['wall_us']:>8.1f} {row['wall_median_us']:>8.1f}"
            f" {row['cpu_us']:>8.1f} {row['switches']:>9.2f}"
        )
    lines.append(
        "wall: best round; median: median round; cpu (user + system, every thread) and "
        "switches (context switches of the process): per request, in the median round"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return _placements.main(
        argv,
        script=__file__,
        description=__doc__.splitlines()[0] if __doc__ else "",
        unit=("requests", 3000, 500),
        rounds=(7, 3),
        output=RESULTS,
        run=run,
        table=table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
