"""Per-call overhead of adapter's sync_to_async / async_to_sync against asgiref's (issue 4).

Run as is (``python benchmarks/bench_sync.py [--quick] [--calls N] [--rounds R]``): it
prints a table and writes ``benchmarks/results/sync.json``.  Every case calls a function
that does nothing, so the time per call is the helper's own overhead.  Both libraries
are measured in one run on asyncio, in interleaved rounds (ours, asgiref, asgiref,
ours, ...) so that a noisy neighbour on the machine hits both alike.  Each figure is
the best round (as ``timeit`` advises: slower rounds measure the neighbours, not the
code), and the median round is kept beside it.  The goal is a ratio (ours / asgiref)
of at most 0.5; ``ratio`` compares best rounds, ``ratio_median`` medians.  Beside
them, the "floor": the same two thread hand-offs done bare (one byte on a socket pair one
way, ``call_soon_threadsafe`` the other), below which no helper can go on this machine.

Each case runs under two placements, each in its own process: pinned to one CPU
(``os.sched_setaffinity``), and free on every CPU.  The first is what the goal is judged
on: there the figures are the helpers' own work.  Free, on a virtual machine with idle
CPUs, each thread hand-off also waits for the host to wake the other CPU (about 40 us
here), and the floor alone can be over half of asgiref's time; that table is kept beside
the other, with its floor, so the cost of the machine and the cost of the code can be
told apart.

Cases:

- ``sync_to_async thread_sensitive``: ``await sync_to_async(f)()`` on a loop with no
  outer sync thread (the one shared thread, both libraries);
- ``sync_to_async thread_sensitive=False``: worker threads (ours: our pool under anyio's
  default limiter; asgiref: the loop's default executor);
- ``sync_to_async into the outer sync thread``: inside ``async_to_sync``, thread-sensitive
  calls that go back to the thread that called it;
- ``async_to_sync on the outer loop``: inside a ``sync_to_async`` call;
- ``async_to_sync from a plain thread``: a fresh event loop per call (both libraries).
"""

from __future__ import annotations

import asyncio
import collections
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asgiref  # noqa: E402
import asgiref.sync  # noqa: E402

import adapter  # noqa: E402
import adapter.sync  # noqa: E402
from benchmarks import _placements  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "sync.json"
GOAL = 0.5

Measure = Callable[[ModuleType, int], float]


def nothing() -> None:
    return None


async def nothing_async() -> None:
    return None


def time_calls(call: Callable[[], object], calls: int, warmup: int = 10) -> float:
    """Seconds for ``calls`` calls of ``call``, after ``max(calls // 10, warmup)`` unmeasured."""
    for _ in range(max(calls // 10, warmup)):
        call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return time.perf_counter() - started


async def time_awaits(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """The same for awaited calls, on the running loop."""
    for _ in range(max(calls // 10, 10)):
        await call()
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return time.perf_counter() - started


def _timed_awaits(helpers: ModuleType, calls: int, **options: Any) -> float:
    async def main() -> float:
        call = helpers.sync_to_async(nothing, **options)
        return await time_awaits(call, calls)

    return asyncio.run(main())


def sync_to_async_sensitive(helpers: ModuleType, calls: int) -> float:
    return _timed_awaits(helpers, calls)


def sync_to_async_unsensitive(helpers: ModuleType, calls: int) -> float:
    return _timed_awaits(helpers, calls, thread_sensitive=False)


def sync_to_async_outer_thread(helpers: ModuleType, calls: int) -> float:
    async def main() -> float:
        call = helpers.sync_to_async(nothing)
        return await time_awaits(call, calls)

    elapsed: float = helpers.async_to_sync(main)()
    return elapsed


def async_to_sync_outer_loop(helpers: ModuleType, calls: int) -> float:
    def in_thread() -> float:
        return time_calls(helpers.async_to_sync(nothing_async), calls)

    async def main() -> float:
        elapsed: float = await helpers.sync_to_async(in_thread)()
        return elapsed

    return asyncio.run(main())


def async_to_sync_fresh_loop(helpers: ModuleType, calls: int) -> float:
    return time_calls(helpers.async_to_sync(nothing_async), calls, warmup=5)


def floor_loop_to_thread(calls: int) -> float:
    """Two bare hand-offs, loop -> thread -> loop: what any sync_to_async must pay.

    Done the cheapest way we know: a job list and one byte on a socket pair to wake the
    thread, ``call_soon_threadsafe`` back.
    """
    jobs: collections.deque[Callable[[], object] | None] = collections.deque()
    ear, bell = socket.socketpair()

    def serve() -> None:
        while True:
            ear.recv(4096)
            while jobs:
                job = jobs.popleft()
                if job is None:
                    return
                job()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def main() -> float:
        loop = asyncio.get_running_loop()

        async def once() -> None:
            done = loop.create_future()
            jobs.append(lambda: loop.call_soon_threadsafe(done.set_result, None))
            bell.send(b"\0")
            await done

        return await time_awaits(once, calls)

    try:
        return asyncio.run(main())
    finally:
        jobs.append(None)
        bell.send(b"\0")
        thread.join()
        ear.close()
        bell.close()


def floor_thread_to_loop(calls: int) -> float:
    """Two bare hand-offs, thread -> loop (a task) -> thread: what async_to_sync must pay.

    ``call_soon_threadsafe`` to the loop, one byte on a socket pair back.
    """

    def in_thread(loop: asyncio.AbstractEventLoop) -> float:
        ear, bell = socket.socketpair()

        async def task() -> None:
            bell.send(b"\0")

        def start() -> None:
            if sys.version_info >= (3, 12):  # as cheap as a task start can be there
                asyncio.Task(task(), loop=loop, eager_start=True)
            else:
                loop.create_task(task())

        def once() -> None:
            loop.call_soon_threadsafe(start)
            ear.recv(1)

        try:
            return time_calls(once, calls)
        finally:
            ear.close()
            bell.close()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, in_thread, loop)

    return asyncio.run(main())


Floor = Callable[[int], float]

# (name, measure, share of --calls (a fresh loop per call is slow, so it makes fewer),
#  the bare hand-offs the case can not go below, measured alongside)
CASES: list[tuple[str, Measure, float, Floor | None]] = [
    ("sync_to_async thread_sensitive", sync_to_async_sensitive, 1.0, floor_loop_to_thread),
    (
        "sync_to_async thread_sensitive=False",
        sync_to_async_unsensitive,
        1.0,
        floor_loop_to_thread,
    ),
    (
        "sync_to_async into the outer sync thread",
        sync_to_async_outer_thread,
        1.0,
        floor_loop_to_thread,
    ),
    ("async_to_sync on the outer loop", async_to_sync_outer_loop, 1.0, floor_thread_to_loop),
    ("async_to_sync from a plain thread", async_to_sync_fresh_loop, 0.2, None),
]


def run(calls: int, rounds: int) -> dict[str, Any]:
    """Measure every case; return what goes into the JSON."""
    libraries = {"ours": adapter.sync, "asgiref": asgiref.sync}
    rows = []
    for name, measure, share, floor in CASES:
        count = max(int(calls * share), 50)
        samples: dict[str, list[float]] = {"ours": [], "asgiref": [], "floor": []}
        for round_number in range(rounds):
            order = ["ours", "asgiref"] if round_number % 2 == 0 else ["asgiref", "ours"]
            for library in order:
                elapsed = measure(libraries[library], count)
                samples[library].append(elapsed / count * 1e6)
            if floor is not None:
                samples["floor"].append(floor(count) / count * 1e6)
        ours, theirs = min(samples["ours"]), min(samples["asgiref"])
        ours_median = statistics.median(samples["ours"])
        theirs_median = statistics.median(samples["asgiref"])
        bare = min(samples["floor"]) if samples["floor"] else None
        rows.append(
            {
                "name": name,
                "calls_per_round": count,
                "ours_us": round(ours, 2),
                "asgiref_us": round(theirs, 2),
                "ratio": round(ours / theirs, 3),
                "goal_met": ours / theirs <= GOAL,
                "ours_median_us": round(ours_median, 2),
                "asgiref_median_us": round(theirs_median, 2),
                "ratio_median": round(ours_median / theirs_median, 3),
                "floor_us": None if bare is None else round(bare, 2),
                "ours_rounds_us": [round(sample, 2) for sample in samples["ours"]],
                "asgiref_rounds_us": [round(sample, 2) for sample in samples["asgiref"]],
            }
        )
    return {
        "benchmark": "sync helpers, per-call overhead on asyncio (best and median round)",
        "unit": "microseconds per call",
        "goal": f"ours / asgiref <= {GOAL}",
        "rounds": rounds,
        "python": platform.python_version(),
        "asgiref": asgiref.__version__,
        "adapter": adapter.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "rows": rows,
    }


def table(results: dict[str, Any]) -> str:
    """The rows as a fixed-width text table."""
    header = (
        f"{'case':<42} {'ours us':>8} {'asgiref us':>10} {'ratio':>6}  {'goal<=0.5':<9}"
        f" {'median ratio':>12} {'floor us':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in results["rows"]:
        mark = "met" if row["goal_met"] else "MISSED"
        floor = "-" if row["floor_us"] is None else f"{row['floor_us']:.1f}"
        lines.append(
            f"{row['name']:<42} {row['ours_us']:>8.1f} {row['asgiref_us']:>10.1f}"
            f" {row['ratio']:>6.2f}  {mark:<9} {row['ratio_median']:>12.2f} {floor:>8}"
        )
    lines.append(
        "us: microseconds per call, best round; floor: two bare thread hand-offs "
        "(a socket-pair byte + call_soon_threadsafe), the least any helper can cost here"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return _placements.main(
        argv,
        script=__file__,
        description=__doc__.splitlines()[0] if __doc__ else "",
        unit=("calls", 2000, 500),
        rounds=(9, 3),
        output=RESULTS,
        run=run,
        table=table,
    )


if __name__ == "__main__":
    raise SystemExit(main())
