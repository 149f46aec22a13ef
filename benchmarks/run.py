"""Run every benchmark in one go on this machine and write the results.

Usage::

    python benchmarks/run.py                  # full run (about 10 minutes)
    python benchmarks/run.py --quick          # smoke run (about a minute)
    python benchmarks/run.py --only rps,asgi  # some sections only
    python benchmarks/run.py --baseline f6f3436  # also adapter as it was at f6f3436

Sections, framework rows first (they are what users run): ``flask`` and ``django`` (a
Flask and a Django hello world behind uvicorn through each adapter, and natively on
gunicorn's sync worker), ``flask_page`` and ``django_page`` (a realistic page: 50 rows
from SQLite rendered through a template of about 17 KiB, with requests per CPU second of
the server process), ``io`` (a view waiting 20 ms, 64 connections, beside the ideal
rate), ``rps`` (a bare WSGI hello world), ``stream`` (a 1 GiB streamed response),
``upload`` (a 512 MiB upload, with the server's peak memory), ``sse`` (how late
server-sent events reach the client), ``asgi`` (a Starlette hello world behind
gunicorn's sync worker through each adapter, and a plain WSGI hello world there),
``asgi_split`` (the same, with every server pinned to one CPU and wrk to the other: a
server with a core of its own, as with one gunicorn worker per core, and without the
host's cross-CPU wake-ups between the worker and the loop thread), ``sync``
(``benchmarks/bench_sync.py``: the sync helpers against asgiref's).

A full run writes ``benchmarks/results/latest.json`` and ``latest.md`` (and bench_sync.py's
``sync.json``), then the docs (``docs/benchmarks/``) through ``benchmarks/report.py``; a
quick or partial run writes ``partial.json``, ``partial.md`` and ``sync-partial.json`` so
it never replaces a full run.
Every server is a single process (uvicorn without workers, gunicorn with one sync worker)
so that server and load generator each get about one of two cores.

With ``--baseline REV``, each of adapter's own contenders has a twin serving adapter as it
was at the git revision ``REV`` (``benchmarks/_baseline.py``), measured in the same rounds
and labelled ``... @ REV``; the report adds a table of ours now against ours then.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import _baseline, _clients, _scenarios, report  # noqa: E402
from benchmarks.apps import IO_WAIT  # noqa: E402

log = logging.getLogger("adapter.benchmarks")

SECTIONS = (
    "flask", "django", "flask_page", "django_page", "io",
    "rps", "stream", "upload", "sse", "asgi", "asgi_split", "sync",
)  # fmt: skip


def _wsgi_keys(app: str) -> list[str]:
    return [f"{app}:{contender}" for contender in ("ours", "a2wsgi", "asgiref", "gunicorn")]


# A section measured on its own servers: its contenders and the path wrk requests.
WSGI_RPS_SECTIONS: dict[str, tuple[list[str], str]] = {
    "flask": (_wsgi_keys("flask"), "/"),
    "django": (_wsgi_keys("django"), "/"),
    "flask_page": (_wsgi_keys("flask"), "/page"),
    "django_page": (_wsgi_keys("django"), "/page"),
    "io": (["ours", "a2wsgi", "asgiref", "gunicorn"], "/io"),
}
RESULTS = ROOT / "benchmarks" / "results"
PACKAGES = (
    "wsgi-asgi-adapter", "a2wsgi", "asgiref", "anyio", "uvicorn", "gunicorn", "starlette",
    "uvloop", "httptools", "h11", "trio", "flask", "django", "jinja2",
)  # fmt: skip
SINGLE_PROCESS_NOTE = (
    "Each server runs as a single process (uvicorn without workers, gunicorn with one sync "
    "worker) on 127.0.0.1, so that on this machine the server and the load "
    "generator each get about one core. gunicorn's sync worker closes the connection after "
    "every response (no keep-alive); uvicorn keeps connections alive."
)


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def settings_for(quick: bool) -> _scenarios.Settings:
    """The conditions of a full or a quick run."""
    return _scenarios.Settings(
        uvicorn_loop="uvloop" if _importable("uvloop") else "asyncio",
        uvicorn_http="httptools" if _importable("httptools") else "h11",
        wrk_threads=1,
        wrk_connections=16,
        wrk_seconds=2 if quick else 6,
        warmup_seconds=1 if quick else 2,
        rounds=1 if quick else 5,
        transfer_repeats=1 if quick else 5,
        stream_bytes=(64 if quick else 1024) << 20,
        upload_bytes=(32 if quick else 512) << 20,
        transfer_time_limit=30.0 if quick else 120.0,
        io_connections=64,
        sse_events=10,
        sse_gap=0.05,
    )


def _command(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.SubprocessError) as error:
        return f"unavailable ({error})"
    return done.stdout.strip()


def machine(wrk: str | None) -> dict[str, Any]:
    """What the figures were measured on: CPU, memory, Python, package versions, commit."""
    cpu_model = ""
    memory_total = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.partition(":")[2].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory_total = line.partition(":")[2].strip()
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_total": memory_total,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
        "wrk": _clients.wrk_version(wrk) if wrk else None,
        "git_commit": _command(["git", "rev-parse", "HEAD"]),
        "git_dirty_adapter": _command(["git", "status", "--porcelain", "adapter"]) != "",
    }


def run_sync(quick: bool, output: Path) -> dict[str, Any]:
    """Run ``benchmarks/bench_sync.py`` (owned by the sync helpers' engineer) if present.

    :param quick: pass ``--quick`` to it.
    :param output: where it writes its JSON (``--output``), read back here.
    """
    script = ROOT / "benchmarks" / "bench_sync.py"
    if not script.exists():
        return {"status": "unavailable", "error": "benchmarks/bench_sync.py does not exist yet"}
    argv = [sys.executable, str(script), "--output", str(output)]
    if quick:
        argv.append("--quick")
    started = time.time()
    log.info("running %s", " ".join(argv))
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=120 if quick else 300, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"status": "unavailable", "error": "bench_sync.py ran past its time limit"}
    tail = (done.stdout + done.stderr)[-3000:]
    if done.returncode != 0:
        last = tail.strip().splitlines()[-1:] or ["no output"]
        return {
            "status": "unavailable",
            "error": f"bench_sync.py exited {done.returncode}: {last[0][:300]}",
            "output": tail,
        }
    if not output.exists() or output.stat().st_mtime < started:
        return {
            "status": "unavailable",
            "error": "bench_sync.py wrote no sync.json",
            "output": tail,
        }
    return {"status": "ok", "data": json.loads(output.read_text()), "output": tail}


def _with_twins(keys: list[str], everyone: dict[str, _scenarios.Target]) -> list[str]:
    """``keys`` with each contender's baseline twin, where there is one, right after it."""
    twins = [(key, _baseline.key_of(key)) for key in keys]
    return [key for pair in twins for key in pair if key in everyone]


def run(
    chosen: list[str],
    quick: bool,
    sync_output: Path,
    baseline: _baseline.Baseline | None = None,
) -> dict[str, Any]:
    """Measure the ``chosen`` sections; return everything that goes into the JSON.

    :param baseline: the old adapter whose twins of our contenders run beside them.
    """
    settings = settings_for(quick)
    wrk = _clients.wrk_path()
    if wrk is None and {"rps", "asgi", *WSGI_RPS_SECTIONS} & set(chosen):
        log.error("wrk is not installed: the requests/s sections can not be measured "
                  "(apt-get install wrk)")  # fmt: skip
    started = datetime.datetime.now(datetime.timezone.utc)
    results: dict[str, Any] = {
        "schema": 1,
        "mode": "quick" if quick else "full",
        "sections_run": chosen,
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(wrk),
        "conditions": {**vars(settings), "note": SINGLE_PROCESS_NOTE},
        "load_average_start": _scenarios.load_average(),
        "sections": {},
    }
    if baseline is not None:
        results["baseline"] = {"rev": baseline.rev, "commit": baseline.commit}
    everyone = _scenarios.targets(settings, baseline)
    for name, (keys, path) in WSGI_RPS_SECTIONS.items():
        if name not in chosen:
            continue
        load = _scenarios.load_average()
        keys = _with_twins(keys, everyone)
        pool = [everyone[key] for key in keys]
        connections = settings.io_connections if name == "io" else settings.wrk_connections
        rows = _scenarios.measure_rps(pool, settings, wrk, path=path, connections=connections)
        if name == "io":
            _scenarios.add_ideal(rows, pool, connections, IO_WAIT)
        results["sections"][name] = {
            "rows": [rows[key] for key in keys],
            "path": path,
            "connections": connections,
            "load_average": load,
        }
    wanted = {
        "rps": _with_twins(
            ["ours", "a2wsgi", "asgiref", "gunicorn", "thread_hop", "raw_asgi"], everyone
        ),
        "asgi": _with_twins(
            ["ours_asgi", "a2wsgi_asgi", "gunicorn", "ours_asgi_bare", "least_asgi", "loop_hop"],
            everyone,
        ),
    }
    rps_keys = [key for name in ("rps", "asgi") if name in chosen for key in wanted[name]]
    if rps_keys:
        # One pool of servers for both requests/s sections: the plain WSGI app on gunicorn
        # is the reference of both, and is measured once, interleaved with the rest.
        pool = [everyone[key] for key in dict.fromkeys(rps_keys)]
        load = _scenarios.load_average()
        rows = _scenarios.measure_rps(pool, settings, wrk)
        for name in ("rps", "asgi"):
            if name in chosen:
                results["sections"][name] = {
                    "rows": [rows[key] for key in wanted[name]],
                    "load_average": load,
                }
    if "asgi_split" in chosen:
        split = _scenarios.split_cpus()
        load = _scenarios.load_average()
        pool = [everyone[key] for key in wanted["asgi"]]
        if split is None:
            rows = {target.key: _scenarios.unavailable_row(target, "needs two usable CPUs")
                    for target in pool}  # fmt: skip
        else:
            rows = _scenarios.measure_rps(pool, settings, wrk, split)
        results["sections"]["asgi_split"] = {
            "rows": [rows[key] for key in wanted["asgi"]],
            "load_average": load,
            "cpus": None if split is None else [sorted(split[0]), sorted(split[1])],
        }
    transfers = {"stream": (_clients.download, settings.stream_bytes),
                 "upload": (_clients.upload, settings.upload_bytes)}  # fmt: skip
    for name, (transfer, size) in transfers.items():
        if name in chosen:
            load = _scenarios.load_average()
            keys = _with_twins(["ours", "a2wsgi", "asgiref", "gunicorn", "raw_asgi"], everyone)
            pool = [everyone[key] for key in keys]
            rows = _scenarios.measure_transfer(pool, settings, transfer, size)
            results["sections"][name] = {
                "rows": list(rows.values()),
                "bytes": size,
                "load_average": load,
            }
    if "sse" in chosen:
        load = _scenarios.load_average()
        keys = _with_twins(["ours", "a2wsgi", "asgiref", "gunicorn"], everyone)
        pool = [everyone[key] for key in keys]
        rows = _scenarios.measure_events(pool, settings)
        results["sections"]["sse"] = {
            "rows": list(rows.values()),
            "events": settings.sse_events,
            "gap_s": settings.sse_gap,
            "load_average": load,
        }
    if "sync" in chosen:
        results["sync"] = run_sync(quick, sync_output)
    finished = datetime.datetime.now(datetime.timezone.utc)
    results["finished"] = finished.isoformat(timespec="seconds")
    results["duration_s"] = round((finished - started).total_seconds(), 1)
    results["load_average_end"] = _scenarios.load_average()
    results["goals"] = report.goals(results)
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0 also when some rows are unavailable)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}"
    )
    parser.add_argument("--output", type=Path, help="where to write the JSON")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure adapter's own contenders as they were at this git revision "
        "(e.g. f6f3436), in the same rounds, as rows labelled '... @ REV'",
    )
    options = parser.parse_args(argv)
    chosen = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    complete = not options.quick and set(chosen) == set(SECTIONS)
    output = options.output or RESULTS / ("latest.json" if complete else "partial.json")
    sync_output = output.with_name("sync.json" if complete else "sync-partial.json")
    with contextlib.ExitStack() as stack:
        baseline = None
        if options.baseline:
            try:
                baseline = stack.enter_context(_baseline.extracted(options.baseline))
            except _baseline.BaselineError as error:
                parser.error(str(error))
            log.info("baseline %s (%s) extracted to %s", baseline.rev,
                     baseline.commit[:12], baseline.directory)  # fmt: skip
        results = run(chosen, options.quick, sync_output, baseline)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    output.with_suffix(".md").write_text(markdown)
    if complete and options.output is None:
        report.write_docs(results)
    sys.stdout.write(markdown)
    log.info("wrote %s and %s", output, output.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
