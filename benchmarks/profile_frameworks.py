"""Where a Flask or Django request's time goes through each WSGI-to-ASGI adapter, in process.

No server and no network: a small ASGI driver calls the adapter (``adapter.WsgiToAsgi``
or a2wsgi's ``WSGIMiddleware``) around the framework app of the benchmarks
(:mod:`benchmarks.framework_apps`, or the plain hello world of :mod:`benchmarks.apps`)
for a number of ``GET`` requests on uvloop (as uvicorn runs it), and measures in ways a
busy machine does not move much:

- ``instructions``: the CPU instructions per request of the whole process, every
  thread, counted by valgrind's callgrind: the run is made twice, with ``--requests``
  and with ten times as many, and the difference is divided by the difference in
  requests, so start-up and imports cancel out.  Needs ``valgrind``.
- ``profile``: cProfile in every thread (the event loop's and each worker's), merged:
  Python function calls per request, and the functions with the most own time, so the
  paths a request takes can be compared (how many hops to a worker, whether the body
  streams through a pipe and a task group).
- ``workers``: requests run 64 at a time through ``adapter.WsgiToAsgi`` with
  ``max_workers`` of 1, 2, 4, 8 and 40 on a CPU-bound page (``/page``) and an I/O-bound
  view (``/io``, 20 ms in ``time.sleep``): wall time and the process's CPU time per
  request, and throughput relative to the first setting.

Contender ``ours_listed`` is ``adapter.WsgiToAsgi`` around the app with its response
body collected into a list in the worker (and the iterable closed there): what the
adapter's one-hop path costs for the same response, since it takes that path only for a
list or tuple body, against ``ours``, where Werkzeug's ``ClosingIterator`` or Django's
``HttpResponse`` is an iterable of another type.

Usage::

    python benchmarks/profile_frameworks.py instructions [--requests 200]
    python benchmarks/profile_frameworks.py profile [--requests 2000] [--top 25]
    python benchmarks/profile_frameworks.py workers [--requests 640] [--rounds 3]
    python benchmarks/profile_frameworks.py drive --app flask --contender ours --path /

``drive`` is the single measured run the other commands start in a fresh process.
Results are printed, and also written as JSON with ``--output``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from adapter._types import ASGIApp, Environ, Message, StartResponse, WSGIApp  # noqa: E402
from benchmarks.apps import WSGI_APPS  # noqa: E402

CONTENDERS = ("ours", "ours_listed", "a2wsgi")
APPS = ("flask", "django", "plain")
WORKER_SETTINGS = (1, 2, 4, 8, 40)


def listed(app: WSGIApp) -> WSGIApp:
    """``app`` with its body collected into a list, and its iterable closed, in the call."""

    def wrapper(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        iterable = app(environ, start_response)
        try:
            return list(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    return wrapper


def build(app_name: str, contender: str, max_workers: int | None = None) -> ASGIApp:
    """The ASGI app under measure: ``contender`` around the WSGI app ``app_name``."""
    wsgi = WSGI_APPS[app_name]()
    if contender == "a2wsgi":
        from a2wsgi import WSGIMiddleware

        asgi: ASGIApp = WSGIMiddleware(wsgi)  # type: ignore[arg-type, assignment]
        return asgi
    from adapter import WsgiToAsgi

    if contender == "ours_listed":
        wsgi = listed(wsgi)
    if max_workers is None:
        return WsgiToAsgi(wsgi)
    return WsgiToAsgi(wsgi, max_workers=max_workers)


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _one_request(app: ASGIApp, path: str) -> int:
    """One ``GET path`` as uvicorn makes it; the number of body bytes answered."""
    finished = asyncio.Event()
    asked = False
    received = 0

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()  # as a server does: disconnect only once the response ended
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal received
        if message["type"] == "http.response.body":
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    await app(_scope(path), receive, send)
    finished.set()
    return received


async def drive(app: ASGIApp, path: str, requests: int, concurrency: int) -> None:
    """Make ``requests`` requests, ``concurrency`` at a time.

    :raises RuntimeError: when a response has an empty body (the app broke).
    """
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if not await _one_request(app, path):
                raise RuntimeError(f"GET {path} answered an empty body")

    await asyncio.gather(*(client() for _ in range(concurrency)))


def _run_loop(main: Callable[[], Any]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
        return
    uvloop.run(main())


def _thread_profiles() -> list[cProfile.Profile]:
    """Profile every thread started from now on (and this one) with its own cProfile."""
    profiles: list[cProfile.Profile] = []

    def start(frame: Any, event: str, arg: Any) -> None:
        # The first event in a new thread: replace this hook by a profiler of its own.
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    here = cProfile.Profile()
    profiles.append(here)
    here.enable()
    return profiles


def command_drive(options: argparse.Namespace) -> dict[str, Any]:
    """One measured run in this process (what ``instructions`` runs under valgrind)."""
    app = build(options.app, options.contender, options.max_workers)
    # Profiling starts before the first thread does, so every worker has its profiler.
    profiles = _thread_profiles() if options.profile else []
    # Some requests first: imports, the template cache and the thread pool warm up;
    # then what they left in the profiles is dropped (the threads are idle by then).
    _run_loop(lambda: drive(app, options.path, options.concurrency * 4, options.concurrency))
    for profile in profiles:
        profile.clear()
    cpu = time.process_time()
    wall = time.perf_counter()
    _run_loop(lambda: drive(app, options.path, options.requests, options.concurrency))
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    threading.setprofile(None)
    # Stats are read while the workers' profilers still run: they are idle now, and a
    # profiler can be disabled only from its own thread.
    result: dict[str, Any] = {
        "app": options.app,
        "contender": options.contender,
        "path": options.path,
        "requests": options.requests,
        "concurrency": options.concurrency,
        "max_workers": options.max_workers,
        "wall_us": wall / options.requests * 1e6,
        "cpu_us": cpu / options.requests * 1e6,
        "threads_seen": threading.active_count(),
    }
    if profiles:
        result.update(_summarise_profiles(profiles, options.requests, options.top))
    if options.output:
        Path(options.output).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _summarise_profiles(
    profiles: list[cProfile.Profile], requests: int, top: int
) -> dict[str, Any]:
    # The first profiler is the event loop's thread (the driver's), the others workers'.
    per_thread = []
    for profile in profiles:
        profile.create_stats()
        collected: dict[Any, Any] = profile.stats
        per_thread.append(sum(entry[1] for entry in collected.values()) / requests)
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    calls = sum(entry[1] for entry in table.values())
    rows = []
    for (filename, line, name), (_, primitive, own, cumulative, _) in table.items():
        short = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        rows.append({
            "function": f"{short}:{line}({name})",
            "calls_per_request": primitive / requests,
            "own_us": own / requests * 1e6,
            "cumulative_us": cumulative / requests * 1e6,
        })  # fmt: skip
    rows.sort(key=lambda row: row["own_us"], reverse=True)
    marks = ("pump", "ChunkPipe", "create_task_group", "WorkerHop.run", "first", "_respond")
    paths = [row for row in rows if any(mark in row["function"] for mark in marks)]
    return {
        "python_calls_per_request": calls / requests,
        "threads_profiled": len(profiles),
        "loop_thread_calls_per_request": per_thread[0],
        "worker_calls_per_request": sum(per_thread[1:]),
        "top": rows[:top],
        "marks": paths[:40],
    }


def _self(*args: str, valgrind: list[str] | None = None) -> list[str]:
    return [*(valgrind or []), sys.executable, str(Path(__file__).resolve()), *args]


def _instructions_of(args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        done = subprocess.run(
            _self(*args, valgrind=valgrind), capture_output=True, text=True, timeout=1800
        )
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run failed: {done.stderr[-2000:]}")
        return int(found.group(1))


def command_instructions(options: argparse.Namespace) -> list[dict[str, Any]]:
    """Instructions per request for each app and contender (callgrind, two run sizes)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    found = []
    small, large = options.requests, options.requests * 10
    for app in options.apps:
        for contender in options.contenders:
            base = ["drive", "--app", app, "--contender", contender, "--path", options.path,
                    "--concurrency", str(options.concurrency)]  # fmt: skip
            counts = [_instructions_of([*base, "--requests", str(n)]) for n in (small, large)]
            per_request = (counts[1] - counts[0]) / (large - small)
            row = {"app": app, "contender": contender, "instructions": round(per_request)}
            sys.stdout.write(f"{app:8} {contender:12} {per_request / 1e3:10.1f} k instr/request\n")
            sys.stdout.flush()
            found.append(row)
    return found


def _in_fresh_process(args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "run.json"
        subprocess.run(_self(*args, "--output", str(out)), check=True, timeout=1800)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def command_profile(options: argparse.Namespace) -> list[dict[str, Any]]:
    """cProfile of every thread, per app and contender, each in a fresh process."""
    found = []
    for app in options.apps:
        for contender in options.contenders:
            result = _in_fresh_process(
                ["drive", "--app", app, "--contender", contender, "--path", options.path,
                 "--requests", str(options.requests), "--concurrency", str(options.concurrency),
                 "--profile", "--top", str(options.top)]
            )  # fmt: skip
            sys.stdout.write(
                f"\n== {app} {contender}: {result['python_calls_per_request']:.0f} Python calls"
                f" per request ({result['loop_thread_calls_per_request']:.0f} on the loop's "
                f"thread, {result['worker_calls_per_request']:.0f} in workers), "
                f"{result['cpu_us']:.0f} us CPU per request (profiled)\n"
            )
            for row in result["top"]:
                sys.stdout.write(
                    f"  {row['own_us']:8.1f} us own {row['cumulative_us']:8.1f} us cum "
                    f"{row['calls_per_request']:6.2f}/req  {row['function']}\n"
                )
            sys.stdout.write("  adapter paths taken (calls per request):\n")
            for row in result["marks"]:
                if row["function"].startswith("adapter/"):
                    sys.stdout.write(f"    {row['calls_per_request']:6.2f}  {row['function']}\n")
            found.append(result)
    return found


def command_workers(options: argparse.Namespace) -> list[dict[str, Any]]:
    """``max_workers`` against a CPU-bound page and an I/O-bound view, 64 at a time.

    The settings are interleaved over ``--rounds`` rounds (1 2 4 8 40, 1 2 4 8 40, ...),
    each run in a fresh process; the figures are the medians.
    """
    found = []
    cases = [("flask", "/page"), ("plain", "/io")]
    for app, path in cases:
        runs: dict[int, list[dict[str, Any]]] = {workers: [] for workers in WORKER_SETTINGS}
        for _ in range(options.rounds):
            for workers in WORKER_SETTINGS:
                runs[workers].append(_in_fresh_process(
                    ["drive", "--app", app, "--contender", "ours", "--path", path,
                     "--requests", str(options.requests), "--concurrency", "64",
                     "--max-workers", str(workers)]
                ))  # fmt: skip
        first: float | None = None
        for workers in WORKER_SETTINGS:
            rate = statistics.median(1e6 / run["wall_us"] for run in runs[workers])
            cpu = statistics.median(run["cpu_us"] for run in runs[workers])
            first = first or rate
            sys.stdout.write(
                f"{app:6} {path:6} max_workers={workers:3}: {rate:8.0f} req/s "
                f"({rate / first:5.2f}x of max_workers=1), {cpu:7.0f} us CPU/request\n"
            )
            found.append({"app": app, "path": path, "max_workers": workers,
                          "requests_per_s": rate, "relative": rate / first, "cpu_us": cpu,
                          "rounds": runs[workers]})  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=("instructions", "profile", "workers", "drive"))
    parser.add_argument("--app", choices=APPS, default="flask")
    parser.add_argument("--apps", default="flask,django,plain")
    parser.add_argument("--contender", choices=CONTENDERS, default="ours")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--path", default="/")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-workers", type=int)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3, help="workers: interleaved rounds")
    parser.add_argument("--output")
    options = parser.parse_args(argv)
    options.apps = [name for name in options.apps.split(",") if name]
    options.contenders = [name for name in options.contenders.split(",") if name]
    defaults = {"instructions": 200, "profile": 2000, "workers": 640, "drive": 1000}
    options.requests = options.requests or defaults[options.command]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if options.command == "drive":
        result: Any = command_drive(options)
        if not options.output:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return 0
    run = {"instructions": command_instructions, "profile": command_profile,
           "workers": command_workers}[options.command]  # fmt: skip
    result = run(options)
    if options.output:
        Path(options.output).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
