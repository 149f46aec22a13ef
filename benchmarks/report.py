"""Turn the runner's JSON into the goals, a markdown table, and the docs page with plots.

Usage::

    python benchmarks/report.py [benchmarks/results/latest.json]

writes the markdown beside the JSON and, for a full run's ``latest.json``,
``docs/benchmarks/results.rst`` and the SVG plots beside it, all from the JSON alone, so
the docs show exactly what the runner measured.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import _baseline, _plots  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks"
LATEST = ROOT / "benchmarks" / "results" / "latest.json"

Results = dict[str, Any]
Row = dict[str, Any]

# section -> (title, key of our row, figure, unit); framework sections first, in the
# order of the report.  A title may name fields of the section's data in braces.
SECTIONS: dict[str, tuple[str, str, str, str]] = {
    "flask": ("Flask hello world behind uvicorn (and natively on gunicorn)", "flask:ours",
              "requests_per_s", "req/s"),
    "django": ("Django hello world, startproject's middleware, behind uvicorn (and natively "
               "on gunicorn)", "django:ours", "requests_per_s", "req/s"),
    "flask_page": ("Flask page: 50 rows from SQLite through a 17 KiB Jinja template",
                   "flask:ours", "requests_per_s", "req/s"),
    "django_page": ("Django page: 50 rows from SQLite through a 17 KiB template",
                    "django:ours", "requests_per_s", "req/s"),
    "io": ("I/O-bound view (time.sleep(0.02) per request), {connections} connections",
           "ours", "requests_per_s", "req/s"),
    "rps": ("WSGI hello world behind uvicorn (and natively on gunicorn)", "ours",
            "requests_per_s", "req/s"),
    "stream": ("{size} streamed response (WSGI generator of 64 KiB chunks)", "ours",
               "mb_per_s", "MB/s"),
    "upload": ("{size} upload (Content-Length, read in 64 KiB pieces)", "ours",
               "mb_per_s", "MB/s"),
    "sse": ("Server-sent events: how late each of {events} events, yielded {gap_ms} ms "
            "apart, reaches the client", "ours", "lateness_max_ms", "ms late (max)"),
    "asgi": ("Starlette hello world behind gunicorn's sync worker (and plain WSGI there)",
             "ours_asgi", "requests_per_s", "req/s"),
    "asgi_split": ("The same, each server pinned to one CPU and wrk to the other",
                   "ours_asgi", "requests_per_s", "req/s"),
}  # fmt: skip


@dataclass(frozen=True)
class Goal:
    """One performance goal, judged from a run.

    With ``theirs``, the goal is the ratio of our row's ``figure`` to that row's, at least
    ``target``.  Without, it is our row's own ``figure``: at least ``target`` when
    ``at_least``, else below it.
    """

    issue: str
    section: str
    ours: str
    theirs: str | None
    figure: str
    target: float
    text: str
    unit: str = "x"
    at_least: bool = True


GOALS: list[Goal] = [
    Goal("14", "flask", "flask:ours", "flask:a2wsgi", "requests_per_s", 1.5,
         "Flask hello req/s >= 1.5x a2wsgi"),
    Goal("14", "django", "django:ours", "django:a2wsgi", "requests_per_s", 1.5,
         "Django hello req/s >= 1.5x a2wsgi"),
    Goal("14", "flask_page", "flask:ours", "flask:a2wsgi", "requests_per_s", 1.2,
         "Flask page req/s >= 1.2x a2wsgi"),
    Goal("14", "flask_page", "flask:ours", "flask:gunicorn", "requests_per_cpu_s", 0.9,
         "Flask page requests per CPU second >= 90% of gunicorn sync's"),
    Goal("14", "django_page", "django:ours", "django:a2wsgi", "requests_per_s", 1.2,
         "Django page req/s >= 1.2x a2wsgi"),
    Goal("14", "django_page", "django:ours", "django:gunicorn", "requests_per_cpu_s", 0.9,
         "Django page requests per CPU second >= 90% of gunicorn sync's"),
    Goal("14", "io", "ours", "a2wsgi", "requests_per_s", 1.0,
         "I/O-bound view req/s >= a2wsgi"),
    Goal("14", "io", "ours", None, "of_ideal", 0.9,
         "I/O-bound view req/s >= 90% of the ideal (connections / 20 ms, capped by the pool)",
         unit="x of ideal"),
    Goal("2, 14", "rps", "ours", "a2wsgi", "requests_per_s", 3.0, "hello req/s >= 3x a2wsgi"),
    Goal("2, 14", "rps", "ours", "gunicorn", "requests_per_s", 1.0,
         "hello req/s >= gunicorn sync"),
    Goal("14", "stream", "ours", "raw_asgi", "mb_per_s", 0.75,
         "1 GiB stream MB/s >= 0.75x native ASGI on uvicorn"),
    Goal("2", "stream", "ours", "a2wsgi", "mb_per_s", 3.0, "1 GiB stream MB/s >= 3x a2wsgi"),
    Goal("14", "upload", "ours", "raw_asgi", "mb_per_s", 0.75,
         "512 MiB upload MB/s >= 0.75x native ASGI (receive()) on uvicorn"),
    Goal("2", "upload", "ours", "a2wsgi", "mb_per_s", 2.0, "512 MiB upload MB/s >= 2x a2wsgi"),
    Goal("2, 14", "upload", "ours", None, "peak_rss_mib", 64.0, "upload peak RSS < 64 MiB",
         unit="MiB", at_least=False),
    Goal("14", "sse", "ours", None, "lateness_max_ms", 5.0,
         "server-sent events: every event reaches the client < 5 ms after it is yielded",
         unit="ms late at most", at_least=False),
    Goal("3, 14", "asgi", "ours_asgi", "a2wsgi_asgi", "requests_per_s", 2.0,
         "Starlette hello req/s >= 2x a2wsgi ASGIMiddleware"),
    Goal("14", "asgi", "ours_asgi", "loop_hop", "requests_per_s", 0.85,
         "Starlette hello req/s >= 85% of the floor (plain WSGI + one loop round trip)"),
    Goal("3, 14", "asgi_split", "ours_asgi", "a2wsgi_asgi", "requests_per_s", 2.0,
         "the same, server on its own CPU: >= 2x a2wsgi"),
    Goal("14", "asgi_split", "ours_asgi", "loop_hop", "requests_per_s", 0.85,
         "the same, server on its own CPU: >= 85% of the floor"),
]  # fmt: skip


def title(results: Results, section: str) -> str:
    """The section's heading, with the sizes and counts it was measured with."""
    data = results["sections"][section]
    size = data.get("bytes", 0)
    shown = f"{size >> 30} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
    return SECTIONS[section][0].format(
        size=shown,
        connections=data.get("connections", "?"),
        events=data.get("events", "?"),
        gap_ms=round(data.get("gap_s", 0) * 1000),
    )


def _row(results: Results, section: str, key: str) -> Row | None:
    for row in results.get("sections", {}).get(section, {}).get("rows", []):
        if row["key"] == key and row["status"] == "ok":
            found: Row = row
            return found
    return None


def goals(results: Results) -> list[dict[str, Any]]:
    """Each goal of issues 2, 3 and 14 with its measured ratio (or figure), and if it is met."""
    found = []
    for goal in GOALS:
        if goal.section not in results.get("sections", {}):
            continue
        ours = _row(results, goal.section, goal.ours)
        theirs = _row(results, goal.section, goal.theirs) if goal.theirs else None
        measured: float | None = None
        if goal.theirs is None and ours is not None:
            measured = ours.get(goal.figure)
        elif ours is not None and theirs is not None and theirs.get(goal.figure):
            mine = ours.get(goal.figure)
            measured = None if mine is None else round(mine / theirs[goal.figure], 2)
        if measured is None:
            met = None
        else:
            met = measured >= goal.target if goal.at_least else measured < goal.target
        found.append(
            {"issue": goal.issue, "goal": goal.text, "section": goal.section,
             "measured": measured, "target": goal.target, "ratio": goal.theirs is not None,
             "unit": goal.unit, "met": met}
        )  # fmt: skip
    found.extend(_sync_goals(results))
    return found


def _sync_goals(results: Results) -> list[dict[str, Any]]:
    """Issue 4's goal, when bench_sync.py reported a ratio for it (pinned to one CPU),
    for this run's Python and for each separate run on another Python."""
    sync = results.get("sync") or {}
    data = sync.get("data") if sync.get("status") == "ok" else None
    runs = [data] if isinstance(data, dict) else []
    runs += [json.loads(path.read_text()) for path in sorted(LATEST.parent.glob("sync-py*.json"))]
    found = []
    for run in runs:
        python = ".".join(str(run.get("python", "?")).split(".")[:2])
        where = "one CPU" if run.get("placement") == "one_cpu" else "free"
        for row in run.get("rows", []):
            ratio = row.get("ratio")
            if isinstance(ratio, (int, float)):
                found.append(
                    {"issue": 4,
                     "goal": f"{row.get('name', 'helper')} time/call <= 0.5x asgiref "
                             f"(Python {python}, {where})",
                     "section": "sync", "measured": round(ratio, 2), "target": 0.5,
                     "ratio": True, "unit": "x", "met": ratio <= 0.5}
                )  # fmt: skip
    return found


def _number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio_text(ours: Row | None, row: Row, figure: str) -> str:
    if ours is None or row["status"] != "ok" or not row.get(figure):
        return "n/a"
    return f"{ours[figure] / row[figure]:.2f}x"


def _figure_cells(section: str, row: Row) -> list[str]:
    """The cells of one measured row after its label and server, by kind of section."""
    if section == "sse":
        return [_number(row["lateness_max_ms"], 2), _number(row["lateness_p50_ms"], 2),
                str(row["events"])]  # fmt: skip
    if SECTIONS[section][2] == "mb_per_s":
        return [_number(row["mb_per_s"], 1), _number(row["seconds"], 2),
                _number(row["peak_rss_mib"], 1), _number(row.get("start_rss_mib"), 1)]  # fmt: skip
    rounds = ", ".join(f"{value:,.0f}" for value in row["rounds_requests_per_s"])
    cells = [_number(row["requests_per_s"]), rounds, _number(row["latency_p50_ms"], 2),
             _number(row.get("requests_per_cpu_s")), _number(row.get("cpu_busy"), 2)]  # fmt: skip
    if section == "io":
        of_ideal = row.get("of_ideal")
        cells += [_number(row.get("ideal_requests_per_s")),
                  "n/a" if of_ideal is None else f"{of_ideal:.2f}x"]  # fmt: skip
    return cells


def _figure_header(section: str) -> list[str]:
    if section == "sse":
        return ["max ms late", "p50 ms late", "events"]
    if SECTIONS[section][2] == "mb_per_s":
        return ["MB/s", "seconds", "peak RSS MiB", "RSS at start MiB"]
    header = ["req/s", "rounds", "p50 ms", "req per CPU s", "CPUs busy"]
    if section == "io":
        header += ["ideal req/s (threads)", "of ideal"]
    return header


def section_table(results: Results, section: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of one section's table, as text cells."""
    _, ours_key, figure, _ = SECTIONS[section]
    data = results["sections"][section]
    ours = _row(results, section, ours_key)
    figures = _figure_header(section)
    # A ratio of latenesses says little (lower is better, and near zero is noise).
    with_ratio = section != "sse"
    header = ["contender", "server", *figures] + (["ours / this"] if with_ratio else [])
    rows = []
    for row in data["rows"]:
        cells = [row["label"], row["server"]]
        if row["status"] == "errors":
            cells.append(f"{_number(row[figure])} with errors: {row['error']}")
            cells += [""] * (len(figures) - 1)
        elif row["status"] != "ok":
            cells.append(f"unavailable ({row['error']})")
            cells += [""] * (len(figures) - 1)
        else:
            cells += _figure_cells(section, row)
        if section == "io" and row["status"] == "ok" and row.get("threads") is not None:
            cells[-2] = f"{cells[-2]} ({row['threads']})"
        if with_ratio:
            cells.append(_ratio_text(ours, row, figure))
        rows.append(cells)
    return header, rows


def before_after(results: Results) -> tuple[str, list[str], list[list[str]]] | None:
    """With ``run.py --baseline REV``: a heading, and for each of our rows in each section
    its figure now, at ``REV``, and now / then; None for a run without a baseline."""
    baseline = results.get("baseline")
    if not baseline:
        return None
    rev = baseline["rev"]
    heading = f"Before and after: ours now and at {rev} ({baseline['commit'][:12]}), same rounds"
    header = ["section", "contender", "figure", "now", f"at {rev}", "now / then"]
    rows = []
    for section, (_, _, figure, unit) in SECTIONS.items():
        for then in results["sections"].get(section, {}).get("rows", []):
            if not then["key"].endswith(_baseline.SUFFIX):
                continue
            key = then["key"].removesuffix(_baseline.SUFFIX)
            now = next(row for row in results["sections"][section]["rows"] if row["key"] == key)
            measured_now = now if now["status"] == "ok" else None
            digits = 0 if unit == "req/s" else 1
            shown = [
                _number(row[figure], digits) if row["status"] == "ok" else row["status"]
                for row in (now, then)
            ]
            lower = " (lower is better)" if section == "sse" else ""
            rows.append(
                [
                    section,
                    now["label"],
                    unit + lower,
                    *shown,
                    _ratio_text(measured_now, then, figure),
                ]
            )
    return heading, header, rows


def stick_rows(results: Results) -> list[list[str]]:
    """The measuring stick of the ASGI-on-WSGI sections: how far the least bridge
    (Starlette with only the work any shared-loop bridge must do) gets, and ours beside it.
    """
    found = []
    for section in ("asgi", "asgi_split"):
        least = _row(results, section, "least_asgi")
        if least is None:
            continue
        for key, name in (("loop_hop", "the floor"), ("a2wsgi_asgi", "a2wsgi")):
            theirs = _row(results, section, key)
            if theirs is not None and theirs.get("requests_per_s"):
                ratio = least["requests_per_s"] / theirs["requests_per_s"]
                found.append([section, f"the least bridge / {name}", f"{ratio:.2f}x"])
        ours = _row(results, section, "ours_asgi")
        if ours is not None and least.get("requests_per_s"):
            ratio = ours["requests_per_s"] / least["requests_per_s"]
            found.append([section, "adapter.AsgiToWsgi / the least bridge", f"{ratio:.2f}x"])
    return found


STICK_HEADING = "Measuring stick: Starlette through the least bridge (req/s ratios)"


def _goal_cells(goal: dict[str, Any]) -> list[str]:
    measured = goal["measured"]
    # Older result files have no unit: their only absolute goal was the upload's RSS.
    unit = goal.get("unit") or ("x" if goal["ratio"] else "MiB")
    if measured is None:
        shown = "not measured"
    elif unit.startswith("x"):
        shown = f"{measured:.2f}{unit}"
    else:
        shown = f"{measured:.1f} {unit}"
    met = {True: "yes", False: "**no**", None: "n/a"}[goal["met"]]
    return [str(goal["issue"]), goal["goal"], shown, met]


def conditions_text(results: Results, code: str = "`") -> str:
    """One paragraph: when, on what, under which settings.

    :param code: the inline-literal mark: a backquote for markdown, two for reST.
    """
    machine = results["machine"]
    cond = results["conditions"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    return (
        f"Measured {results['started']} ({results['mode']} run, {results['duration_s']} s) on "
        f"{machine['cpu_model'] or 'unknown CPU'}, nproc {machine['nproc']}, "
        f"{machine['memory_total']} RAM, Python {machine['python']}, {machine['platform']}; "
        f"commit {machine['git_commit'][:12]}"
        f"{' (adapter/ modified)' if machine['git_dirty_adapter'] else ''}. "
        f"Load average {results['load_average_start']} at start, "
        f"{results['load_average_end']} at end (the machine is shared: figures are noisy). "
        f"{code}uvicorn --loop {cond['uvicorn_loop']} --http {cond['uvicorn_http']}{code}; "
        f"{machine['wrk'] or 'wrk missing'}, {cond['wrk_threads']} thread, "
        f"{cond['wrk_connections']} connections, {cond['warmup_seconds']} s warm-up, "
        f"median of {cond['rounds']} interleaved rounds of {cond['wrk_seconds']} s; "
        f"transfers: median of {cond.get('transfer_repeats', 1)} interleaved, by a "
        "raw-socket client, each section on its own server processes; peak RSS = VmHWM of "
        "the process running the app. "
        f"{cond['note']} Packages: {packages}."
    )


READING = (
    "\"ours / this\" divides our row's figure by that row's (above 1: ours is ahead). "
    '"req per CPU s" divides the requests answered in every round by the CPU seconds '
    "(user + system, all threads, from /proc/PID/stat before and after each round) of the "
    'process running the app: gunicorn\'s worker, or uvicorn; "CPUs busy" is that CPU '
    "time over the rounds' wall time. The I/O-bound view's ideal is the connections (or the "
    "contender's thread pool, if smaller) divided by its 20 ms wait. An event's lateness is "
    "the client's time.monotonic() when its last byte arrived less the one the app wrote "
    "into it as it yielded it (one clock for every process on Linux). The "
    "bare ASGI app on uvicorn is the server's ceiling with no adapter at all; below it, "
    "the WSGI hello called in one of 40 threads through one shared queue and handed back "
    "with call_soon_threadsafe (plain WSGI plus one bare round trip to a worker thread) "
    "is the floor of every bridge that runs the WSGI app off the loop; AsgiToWsgi "
    "around a bare ASGI hello shows the adapter's cost without Starlette's; the least "
    "bridge (benchmarks/apps.py: least_asgi_to_wsgi) serves the same Starlette app with "
    "only the work every such bridge must do (the scope, the app's task, one byte back) "
    "and none of the checks, disconnect handling or cancellation a real one needs: a "
    "measuring stick, not a contender; the floor row (plain WSGI plus one bare round trip "
    "to a loop thread) bounds every bridge that runs the ASGI app on a loop thread, "
    'whatever its own cost. A row "with '
    'errors" answered under load but not always with 200, so its figure is not comparable.'
)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(results: Results) -> str:
    """The whole report as markdown (the lead pastes it into the README)."""
    parts = ["## Benchmarks\n\n", conditions_text(results) + "\n\n", READING + "\n"]
    parts.append("\n### Goals\n\n")
    parts.append(_markdown_table(["issue", "goal", "measured", "met"],
                                 [_goal_cells(goal) for goal in results["goals"]]))  # fmt: skip
    stick = stick_rows(results)
    if stick:
        parts.append(f"\n### {STICK_HEADING}\n\n")
        parts.append(_markdown_table(["section", "ratio", "measured"], stick))
    compared = before_after(results)
    if compared is not None:
        heading, header, rows = compared
        parts.append(f"\n### {heading}\n\n{_markdown_table(header, rows)}")
    for section in SECTIONS:
        if section in results["sections"]:
            parts.append(f"\n### {title(results, section)}\n\n")
            parts.append(_markdown_table(*section_table(results, section)))
    parts.append("\n" + sync_text(results, "```") + "\n")
    inprocess = asgi_inprocess_text("```")
    if inprocess:
        parts.append("\n" + inprocess + "\n")
    return "".join(parts)


PLACEMENT_TITLES = {
    "one_cpu": "pinned to one CPU (the goal is judged here)",
    "all_cpus": "free on every CPU (thread wake-ups wait for the host: see the floor)",
}


def sync_text(results: Results, fence: str) -> str:
    """What bench_sync.py reported (each placement's table), or why it is missing; then
    any separate runs on other Pythons (``benchmarks/results/sync-py*.json``)."""
    sync = results.get("sync")
    if sync is None:
        text = "Sync helpers: not run.\n"
    elif sync["status"] != "ok":
        text = f"Sync helpers: unavailable ({sync['error']}).\n"
    else:
        data = sync["data"]
        heading = f"Sync helpers: time per call on asyncio, Python {data.get('python', '?')}"
        text = _sync_tables(data, heading, fence)
    for path in sorted(LATEST.parent.glob("sync-py*.json")):
        other = json.loads(path.read_text())
        heading = (
            f"Sync helpers on Python {other.get('python', '?')} "
            f"(a separate run: benchmarks/results/{path.name})"
        )
        text += "\n" + _sync_tables(other, heading, fence)
    return text


def _sync_tables(data: dict[str, Any], heading: str, fence: str) -> str:
    rounds = data.get("rounds", "?")
    note = (
        f"{data.get('benchmark', '')}; {rounds} rounds; goal {data.get('goal', '')}; "
        "floor: the same thread hand-offs done bare."
    )
    header = ["case", "ours µs/call", "asgiref µs/call", "ours / asgiref", "median ratio",
              "floor µs"]  # fmt: skip
    parts = [f"### {heading}\n\n{note}\n" if fence == "```" else
             f"{heading}\n{'~' * len(heading)}\n\n{note}\n"]  # fmt: skip
    for placement, placed in data.get("placements", {"one_cpu": data}).items():
        rows = [
            [row["name"], f"{row['ours_us']:.1f}", f"{row['asgiref_us']:.1f}",
             f"{row['ratio']:.2f}x", f"{row['ratio_median']:.2f}x",
             "n/a" if row.get("floor_us") is None else f"{row['floor_us']:.1f}"]
            for row in placed.get("rows", [])
        ]  # fmt: skip
        title = PLACEMENT_TITLES.get(placement, placement)
        table = _markdown_table(header, rows) if fence == "```" else _list_table(header, rows)
        parts.append(f"\n{title[0].upper()}{title[1:]}:\n\n{table}")
    return "".join(parts)


def asgi_inprocess_text(fence: str) -> str:
    """What bench_asgi.py last wrote (``benchmarks/results/asgi-inprocess.json``): AsgiToWsgi
    called in-process, per placement; empty when it was not run."""
    path = LATEST.parent / "asgi-inprocess.json"
    if not path.exists():
        return ""
    data = json.loads(path.read_text())
    heading = (
        f"AsgiToWsgi in-process, no server, Python {data.get('python', '?')} "
        f"(a separate run: benchmarks/results/{path.name})"
    )
    note = (
        f"Each app called directly with gunicorn's environ for GET /, "
        f"{data.get('requests_per_round', '?')} requests a round, {data.get('rounds', '?')} "
        "interleaved rounds; µs per request: wall (best and median round), CPU of every "
        "thread and context switches (median round)."
    )
    header = ["contender", "wall µs", "median µs", "CPU µs", "switches"]
    parts = [f"### {heading}\n\n{note}\n" if fence == "```" else
             f"{heading}\n{'~' * len(heading)}\n\n{note}\n"]  # fmt: skip
    for placement, placed in data.get("placements", {"one_cpu": data}).items():
        rows = [
            [row["name"], f"{row['wall_us']:.1f}", f"{row['wall_median_us']:.1f}",
             f"{row['cpu_us']:.1f}", f"{row['switches']:.2f}"]
            for row in placed.get("rows", [])
        ]  # fmt: skip
        title = {"one_cpu": "pinned to one CPU", "all_cpus": "free on every CPU"}.get(
            placement, placement
        )
        table = _markdown_table(header, rows) if fence == "```" else _list_table(header, rows)
        parts.append(f"\n{title[0].upper()}{title[1:]}:\n\n{table}")
    return "".join(parts)


def _list_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append("   * - " + (row[0] or " "))
        lines += [f"     - {cell.replace('**', '') or ' '}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def rst(results: Results) -> str:
    """The docs page body (``docs/benchmarks/results.rst``), with the plots' image directives."""
    parts = [
        ".. Generated by benchmarks/report.py from benchmarks/results/latest.json; "
        "do not edit.\n\n",
        conditions_text(results, "``") + "\n\n",
        READING.replace('"', "*") + "\n\n",
        "Reproduce with ``python benchmarks/run.py`` (``--quick`` for a smoke run), which "
        "writes ``benchmarks/results/latest.json`` and this page.\n\n",
        "Goals\n~~~~~\n\n",
        _list_table(
            ["issue", "goal", "measured", "met"], [_goal_cells(goal) for goal in results["goals"]]
        ),
    ]
    stick = stick_rows(results)
    if stick:
        heading = STICK_HEADING
        parts.append(f"\n{heading}\n{'~' * len(heading)}\n\n")
        parts.append(_list_table(["section", "ratio", "measured"], stick))
    compared = before_after(results)
    if compared is not None:
        heading, header, rows = compared
        parts.append(f"\n{heading}\n{'~' * len(heading)}\n\n{_list_table(header, rows)}")
    for section in SECTIONS:
        if section not in results["sections"]:
            continue
        heading = title(results, section)
        # "~": the page that includes this one has its sections underlined with "-".
        parts.append(f"\n{heading}\n{'~' * len(heading)}\n\n")
        for name in _plots.plot_names(section):
            parts.append(f".. image:: /benchmarks/{name}\n   :alt: {heading}\n\n")
        parts.append(_list_table(*section_table(results, section)))
    parts.append("\n" + sync_text(results, "rst"))
    inprocess = asgi_inprocess_text("rst")
    if inprocess:
        parts.append("\n" + inprocess)
    return "".join(parts)


def write_docs(results: Results, directory: Path = DOCS) -> None:
    """Write ``results.rst`` and one SVG per plot into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        if section in results["sections"]:
            _, ours_key, figure, unit = SECTIONS[section]
            meta = (title(results, section), ours_key, figure, unit)
            for name, svg in _plots.plots(section, meta, results).items():
                (directory / name).write_text(svg)
    (directory / "results.rst").write_text(rst(results))


def main(argv: list[str]) -> int:
    """Regenerate the markdown from a results file (default: latest.json), and the docs
    when that file is a full run's ``latest.json``: a quick run never reaches the docs."""
    source = Path(argv[0]) if argv else LATEST
    if not source.exists():
        sys.stderr.write(f"{source} does not exist: run python benchmarks/run.py first\n")
        return 2
    results = json.loads(source.read_text())
    results["goals"] = goals(results)
    source.with_suffix(".md").write_text(markdown(results))
    if source.name == LATEST.name and results.get("mode") == "full":
        write_docs(results)
    sys.stdout.write(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
