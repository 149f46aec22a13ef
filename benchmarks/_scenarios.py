"""The contenders and how each section measures them.

A contender that cannot be measured (its adapter not written yet, a crash, a wrong
answer) becomes a row with ``status: "unavailable"`` and the error, and the run goes on;
one that answers under load but with failures keeps its figures with ``status: "errors"``.
Every loop here is bounded in count, and every wait in time.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import statistics
import subprocess
from collections.abc import Callable, Set
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import _baseline, _clients, _servers
from benchmarks.apps import ADAPTER_DIR_VARIABLE, APP_VARIABLE, HELLO
from benchmarks.framework_apps import PAGE_END

log = logging.getLogger("adapter.benchmarks")

Row = dict[str, Any]
CHECK_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """One contender: an app on a server, started by ``command``."""

    key: str
    label: str
    server: str
    command: tuple[str, ...]
    forks_worker: bool
    #: the WSGI app it serves (``ADAPTER_BENCH_APP``: plain, flask or django)
    app: str = "plain"
    #: how many calls of the WSGI app it runs at once (its thread pool), when known
    threads: int | None = None
    #: a directory imported before the repository root: an older ``adapter`` (--baseline)
    pythonpath: Path | None = None

    def environment(self) -> dict[str, str]:
        """The variables its server runs with: the app to serve, the adapter to import."""
        env = {APP_VARIABLE: self.app}
        if self.pythonpath is not None:
            env[ADAPTER_DIR_VARIABLE] = str(self.pythonpath)
        return env


@dataclass(frozen=True)
class Settings:
    """The conditions of one run, recorded beside its figures."""

    uvicorn_loop: str
    uvicorn_http: str
    wrk_threads: int
    wrk_connections: int
    wrk_seconds: float
    warmup_seconds: float
    rounds: int
    transfer_repeats: int
    stream_bytes: int
    upload_bytes: int
    transfer_time_limit: float
    io_connections: int
    sse_events: int
    sse_gap: float


def _uvicorn(
    key: str,
    label: str,
    factory: str,
    settings: Settings,
    app: str = "plain",
    threads: int | None = None,
) -> Target:
    command = (
        "uvicorn", "--factory", f"benchmarks.apps:{factory}",
        "--host", "127.0.0.1", "--port", "{port}",
        "--loop", settings.uvicorn_loop, "--http", settings.uvicorn_http,
        "--lifespan", "off", "--no-access-log", "--log-level", "warning",
    )  # fmt: skip
    return Target(key, label, "uvicorn", command, False, app, threads)


def _gunicorn(key: str, label: str, factory: str, app: str = "plain") -> Target:
    # One sync worker: one request at a time in one process, gunicorn's default model.
    command = (
        "gunicorn", "--workers", "1", "--worker-class", "sync",
        "--bind", "127.0.0.1:{port}", "--log-level", "warning",
        "--graceful-timeout", "2", f"benchmarks.apps:{factory}",
    )  # fmt: skip
    return Target(key, label, "gunicorn sync", command, True, app, threads=1)


def _default_of(dotted: str, parameter: str) -> int | None:
    """The default of ``parameter`` of the class ``dotted`` names, or None if unimportable."""
    module, _, name = dotted.rpartition(".")
    try:
        found = getattr(__import__(module, fromlist=[name]), name)
    except ImportError:
        return None
    default = inspect.signature(found).parameters[parameter].default
    return default if isinstance(default, int) else None


def _wsgi_contenders(app: str, settings: Settings) -> list[Target]:
    """The WSGI app ``app`` through each adapter on uvicorn, and natively on gunicorn."""
    prefix = "" if app == "plain" else f"{app}:"
    name = {"plain": "plain WSGI", "flask": "Flask", "django": "Django"}[app]
    around = "" if app == "plain" else f" + {name}"
    ours = _default_of("adapter.WsgiToAsgi", "max_workers")
    theirs = _default_of("a2wsgi.WSGIMiddleware", "workers")
    return [
        _uvicorn(f"{prefix}ours", "adapter.WsgiToAsgi" + around,
                 "ours_wsgi_to_asgi", settings, app, ours),
        _uvicorn(f"{prefix}a2wsgi",
                 "a2wsgi WSGIMiddleware" + around,
                 "a2wsgi_wsgi_middleware", settings, app, theirs),
        # asgiref's WsgiToAsgi runs every call on one thread (SyncToAsync's default).
        _uvicorn(f"{prefix}asgiref", "asgiref WsgiToAsgi" + around,
                 "asgiref_wsgi_to_asgi", settings, app, 1),
        _gunicorn(f"{prefix}gunicorn", f"{name} (native)", "selected_wsgi_app()", app),
    ]  # fmt: skip


#: adapter's own contenders: those with a twin at the baseline revision (--baseline)
OURS = ("ours", "flask:ours", "django:ours", "ours_asgi", "ours_asgi_bare")


def _at_baseline(target: Target, baseline: _baseline.Baseline) -> Target:
    """``target`` served by the adapter of ``baseline`` (key ``...@baseline``)."""
    threads = target.threads
    if target.server == "uvicorn":
        threads = _baseline.default_of(baseline, "adapter.WsgiToAsgi", "max_workers")
    return replace(
        target,
        key=_baseline.key_of(target.key),
        label=f"{target.label} @ {baseline.rev}",
        threads=threads,
        pythonpath=baseline.directory,
    )


def targets(settings: Settings, baseline: _baseline.Baseline | None = None) -> dict[str, Target]:
    """Every contender by key; the sections pick from these.

    :param baseline: the old adapter; each of :data:`OURS` then has a twin that imports it,
        keyed ``KEY@baseline``.
    """
    found = [
        *_wsgi_contenders("plain", settings),
        *_wsgi_contenders("flask", settings),
        *_wsgi_contenders("django", settings),
        _uvicorn("raw_asgi", "bare ASGI app, no adapter (ceiling)", "raw_asgi_app", settings),
        _uvicorn(
            "thread_hop",
            "plain WSGI + one bare round trip to a worker thread (floor)",
            "thread_hop_asgi_app",
            settings,
        ),
        _gunicorn("ours_asgi", "adapter.AsgiToWsgi + Starlette", "ours_asgi_to_wsgi()"),
        _gunicorn("a2wsgi_asgi", "a2wsgi ASGIMiddleware + Starlette", "a2wsgi_asgi_middleware()"),
        _gunicorn(
            "ours_asgi_bare", "adapter.AsgiToWsgi + bare ASGI hello", "ours_asgi_to_wsgi_bare()"
        ),
        _gunicorn(
            "least_asgi",
            "the least shared-loop bridge + Starlette (measuring stick)",
            "least_asgi_to_wsgi()",
        ),
        _gunicorn(
            "loop_hop",
            "plain WSGI + one bare round trip to a loop thread (floor)",
            "wsgi_app_with_loop_hop()",
        ),
    ]
    if baseline is not None:
        found += [_at_baseline(target, baseline) for target in found if target.key in OURS]
    return {target.key: target for target in found}


def _base_row(target: Target) -> Row:
    return {
        "key": target.key,
        "label": target.label,
        "server": target.server,
        "status": "ok",
        "error": None,
    }


def _unavailable(row: Row, error: BaseException | str, server: _servers.Server | None) -> Row:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines() or ["unknown"]
    summary = lines[0]
    tail = server.output_tail(1500) if server is not None else "\n".join(lines[1:])
    # The last line a server printed is usually the exception that broke the app.
    last = [line for line in tail.strip().splitlines() if line.strip()][-1:]
    if last and "Error" in last[0] and last[0].strip() not in summary:
        summary = f"{summary} (server: {last[0].strip()})"
    row["status"] = "unavailable"
    row["error"] = summary[:400]
    if tail:
        row["server_output"] = tail
    log.warning("%s on %s: %s", row["label"], row["server"], row["error"])
    return row


def unavailable_row(target: Target, why: str) -> Row:
    """The row of a contender that was not measured, and why."""
    return _unavailable(_base_row(target), why, None)


def _check_answer(server: _servers.Server, path: str) -> str | None:
    """``None`` when ``GET path`` answers as it should, else what went wrong.

    ``/page`` must end with :data:`~benchmarks.framework_apps.PAGE_END`; every other
    path checked answers the hello world.
    """
    try:
        status, body = _clients.get(server.port, path, timeout=CHECK_TIMEOUT)
    except (OSError, _clients.TransferFailed) as error:
        return f"check request failed: {type(error).__name__}: {error}"
    right = body.rstrip().endswith(PAGE_END.encode()) if path == "/page" else body == HELLO
    if status != 200 or not right:
        return f"check request {path} answered {status} {body[:80]!r}"
    return None


def _memory_row(server: _servers.Server) -> Row:
    memory = _servers.memory_kib(server.app_pid())
    return {
        "rss_mib": round(memory.get("VmRSS", 0) / 1024, 1),
        "peak_rss_mib": round(memory.get("VmHWM", 0) / 1024, 1),
    }


def _start_all(
    chosen: list[Target],
    rows: dict[str, Row],
    stack: contextlib.ExitStack,
    cpus: Set[int] | None = None,
    check_path: str = "/",
) -> dict[str, _servers.Server]:
    """Start every target (stopped when ``stack`` closes); those that answer the check."""
    live: dict[str, _servers.Server] = {}
    for target in chosen:
        try:
            server = stack.enter_context(
                _servers.running(
                    target.key,
                    target.command,
                    forks_worker=target.forks_worker,
                    cpus=cpus,
                    env=target.environment(),
                    first_on_path=target.pythonpath,
                )
            )
        except _servers.ServerFailed as error:
            _unavailable(rows[target.key], str(error), None)
            continue
        problem = _check_answer(server, check_path)
        if problem is not None:
            _unavailable(rows[target.key], problem, server)
            continue
        live[target.key] = server
    return live


def split_cpus() -> tuple[frozenset[int], frozenset[int]] | None:
    """One usable CPU for the server and the others for the load generator, if there are two."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None
    return frozenset(usable[:1]), frozenset(usable[1:])


def measure_rps(
    chosen: list[Target],
    settings: Settings,
    wrk: str | None,
    split: tuple[Set[int], Set[int]] | None = None,
    *,
    path: str = "/",
    connections: int | None = None,
) -> dict[str, Row]:
    """Requests/s of ``GET path`` for each target: all servers up, rounds interleaved.

    Interleaving (A B C, A B C, ...) and taking the median spreads the noise of a shared
    machine over every contender instead of landing on whichever ran during a spike.
    Around every round the CPU time of the process running the app is read
    (``/proc/PID/stat``: user plus system, all its threads), which gives requests per
    CPU second: the throughput per core, whatever else the machine was doing.

    :param split: the CPUs for the servers and those for wrk; default: all CPUs for both,
        left to the scheduler.
    :param path: the path requested (``/``, ``/page``, ``/io``).
    :param connections: wrk's connections; default the settings' ``wrk_connections``.
    """
    server_cpus, client_cpus = split if split is not None else (None, None)
    rows = {target.key: _base_row(target) for target in chosen}
    if wrk is None:
        for row in rows.values():
            _unavailable(row, "wrk is not installed (apt-get install wrk)", None)
        return rows
    with contextlib.ExitStack() as stack:
        live = _start_all(chosen, rows, stack, server_cpus, path)
        runs: dict[str, list[_clients.WrkResult]] = {key: [] for key in live}

        def one_run(key: str, seconds: float) -> _clients.WrkResult | None:
            server = live[key]
            pid = server.app_pid()
            before = _servers.cpu_seconds(pid)
            try:
                result = _clients.run_wrk(
                    wrk,
                    server.base_url + path,
                    threads=settings.wrk_threads,
                    connections=connections or settings.wrk_connections,
                    seconds=seconds,
                    cpus=client_cpus,
                )
            except (OSError, ValueError, subprocess.SubprocessError) as error:
                _unavailable(rows[key], error, server)
                return None
            after = _servers.cpu_seconds(pid)
            if before is not None and after is not None:
                result.cpu_seconds = after - before
            return result

        for key in list(live):
            log.info("warm-up %s (%ss)", key, settings.warmup_seconds)
            if one_run(key, settings.warmup_seconds) is None:
                del live[key]
        for round_index in range(settings.rounds):
            for key in list(live):
                result = one_run(key, settings.wrk_seconds)
                if result is None or not live[key].alive():
                    live.pop(key)
                    continue
                log.info("round %d %s: %.0f req/s", round_index + 1, key, result.requests_per_s)
                runs[key].append(result)
        for key, server in live.items():
            rows[key].update(_summarise(runs[key]))
            rows[key].update(_memory_row(server))
            if rows[key]["non_2xx"] or rows[key]["socket_errors"]:
                # Measured, but not a fair figure: failed answers are cheap answers.
                total = sum(result.requests for result in runs[key])
                _unavailable(
                    rows[key],
                    f"{rows[key]['non_2xx']} of {total} answers non-2xx, "
                    f"{rows[key]['socket_errors']} requests lost",
                    server,
                )
                rows[key]["status"] = "errors"
    return rows


def _summarise(results: list[_clients.WrkResult]) -> Row:
    ordered = sorted(results, key=lambda result: result.requests_per_s)
    middle = ordered[len(ordered) // 2]
    timed = [result for result in results if result.cpu_seconds]
    cpu = sum(result.cpu_seconds or 0.0 for result in timed)
    requests = sum(result.requests for result in timed)
    wall = sum(result.requests / result.requests_per_s for result in timed if result.requests_per_s)
    return {
        "requests_per_s": round(statistics.median(r.requests_per_s for r in results), 1),
        "rounds_requests_per_s": [round(r.requests_per_s, 1) for r in results],
        "latency_p50_ms": middle.latency_p50_ms,
        "latency_p99_ms": middle.latency_p99_ms,
        "non_2xx": sum(r.non_2xx for r in results),
        "socket_errors": sum(r.socket_errors for r in results),
        # Over every round: requests answered per second of CPU the app's process used,
        # and how many CPUs it kept busy on average.
        "requests_per_cpu_s": round(requests / cpu, 1) if cpu else None,
        "cpu_busy": round(cpu / wall, 2) if wall else None,
    }


def add_ideal(rows: dict[str, Row], chosen: list[Target], connections: int, wait: float) -> None:
    """Give each row of the I/O-bound section its ideal: connections / wait, capped by pool.

    A view that waits ``wait`` seconds answers at best ``min(connections, threads) / wait``
    requests a second, ``threads`` being how many calls the contender runs at once.
    """
    for target in chosen:
        row = rows[target.key]
        row["threads"] = target.threads
        if target.threads is None:
            row["ideal_requests_per_s"] = None
            continue
        ideal = min(connections, target.threads) / wait
        row["ideal_requests_per_s"] = round(ideal, 1)
        if row["status"] == "ok":
            row["of_ideal"] = round(row["requests_per_s"] / ideal, 3)


def measure_transfer(
    chosen: list[Target],
    settings: Settings,
    transfer: Callable[[int, int, float], _clients.Transfer],
    size: int,
) -> dict[str, Row]:
    """Transfers of ``size`` bytes per target, interleaved across targets; the median.

    Each target is its own server process, so the peak memory recorded is its own; the
    servers of one section serve nothing else.
    """
    rows = {target.key: _base_row(target) for target in chosen}
    with contextlib.ExitStack() as stack:
        live = _start_all(chosen, rows, stack)
        for key, server in live.items():
            rows[key]["start_rss_mib"] = _memory_row(server)["rss_mib"]
        results: dict[str, list[_clients.Transfer]] = {key: [] for key in live}
        for repeat in range(settings.transfer_repeats):
            for key in list(live):
                server = live[key]
                try:
                    result = transfer(server.port, size, settings.transfer_time_limit)
                except (OSError, _clients.TransferFailed) as error:
                    _unavailable(rows[key], error, server)
                    rows[key].update(_memory_row(server))
                    del live[key]
                    continue
                log.info("%s %d %s: %.1f MB/s", transfer.__name__, repeat + 1, key,
                         result.mb_per_s)  # fmt: skip
                results[key].append(result)
        for key, server in live.items():
            row = rows[key]
            row.update(_memory_row(server))
            ordered = sorted(results[key], key=lambda result: result.seconds)
            middle = ordered[len(ordered) // 2]
            row["bytes"] = middle.nbytes
            row["seconds"] = round(middle.seconds, 3)
            row["mb_per_s"] = round(middle.mb_per_s, 1)
            row["repeats_mb_per_s"] = [round(result.mb_per_s, 1) for result in results[key]]
    return rows


def measure_events(chosen: list[Target], settings: Settings) -> dict[str, Row]:
    """Server-sent events: how late each event reaches the client, per target.

    Each target streams ``settings.transfer_repeats`` responses of ``sse_events`` events,
    ``sse_gap`` seconds apart, interleaved across targets; the row holds the median and
    the largest lateness over every event, in milliseconds.
    """
    rows = {target.key: _base_row(target) for target in chosen}
    limit = settings.sse_events * settings.sse_gap + CHECK_TIMEOUT
    with contextlib.ExitStack() as stack:
        live = _start_all(chosen, rows, stack)
        lateness: dict[str, list[float]] = {key: [] for key in live}
        for repeat in range(settings.transfer_repeats):
            for key in list(live):
                try:
                    found = _clients.event_lateness(
                        live[key].port, settings.sse_events, settings.sse_gap, limit
                    )
                except (OSError, _clients.TransferFailed) as error:
                    _unavailable(rows[key], error, live.pop(key))
                    continue
                log.info("events %d %s: max %.2f ms late", repeat + 1, key, max(found) * 1e3)
                lateness[key] += found
        for key in live:
            found = lateness[key]
            rows[key].update(
                events=len(found),
                lateness_p50_ms=round(statistics.median(found) * 1e3, 2),
                lateness_max_ms=round(max(found) * 1e3, 2),
            )
    return rows


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was."""
    return [round(value, 2) for value in os.getloadavg()]
