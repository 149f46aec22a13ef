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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import _plots  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks"
LATEST = ROOT / "benchmarks" / "results" / "latest.json"

Results = dict[str, Any]
Row = dict[str, Any]

# section -> (title, key of our row, figure, unit)
SECTIONS: dict[str, tuple[str, str, str, str]] = {
    "rps": ("WSGI hello world behind uvicorn (and natively on gunicorn)", "ours",
            "requests_per_s", "req/s"),
    "stream": ("{size} streamed response (WSGI generator of 64 KiB chunks)", "ours",
               "mb_per_s", "MB/s"),
    "upload": ("{size} upload (Content-Length, read in 64 KiB pieces)", "ours",
               "mb_per_s", "MB/s"),
    "asgi": ("Starlette hello world behind gunicorn's sync worker (and plain WSGI there)",
             "ours_asgi", "requests_per_s", "req/s"),
    "asgi_split": ("The same, each server pinned to one CPU and wrk to the other",
                   "ours_asgi", "requests_per_s", "req/s"),
}  # fmt: skip

# (issue, section, our key, their key or None for an absolute figure, figure, target, text)
GOALS: list[tuple[int, str, str, str | None, str, float, str]] = [
    (2, "rps", "ours", "a2wsgi", "requests_per_s", 3.0, "hello req/s >= 3x a2wsgi"),
    (2, "rps", "ours", "gunicorn", "requests_per_s", 1.0, "hello req/s >= gunicorn sync"),
    (2, "stream", "ours", "a2wsgi", "mb_per_s", 3.0, "1 GiB stream MB/s >= 3x a2wsgi"),
    (2, "upload", "ours", "a2wsgi", "mb_per_s", 2.0, "512 MiB upload MB/s >= 2x a2wsgi"),
    (2, "upload", "ours", None, "peak_rss_mib", 64.0, "upload peak RSS < 64 MiB"),
    (3, "asgi", "ours_asgi", "a2wsgi_asgi", "requests_per_s", 2.0,
     "Starlette hello req/s >= 2x a2wsgi ASGIMiddleware"),
    (3, "asgi", "ours_asgi", "gunicorn", "requests_per_s", 0.75,
     "Starlette hello req/s >= 75% of plain WSGI"),
    (3, "asgi_split", "ours_asgi", "a2wsgi_asgi", "requests_per_s", 2.0,
     "the same, server on its own CPU: >= 2x a2wsgi"),
    (3, "asgi_split", "ours_asgi", "gunicorn", "requests_per_s", 0.75,
     "the same, server on its own CPU: >= 75% of plain WSGI"),
]  # fmt: skip


def title(results: Results, section: str) -> str:
    """The section's heading, with the transfer size it was measured with."""
    size = results["sections"][section].get("bytes", 0)
    shown = f"{size >> 30} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
    return SECTIONS[section][0].format(size=shown)


def _row(results: Results, section: str, key: str) -> Row | None:
    for row in results.get("sections", {}).get(section, {}).get("rows", []):
        if row["key"] == key and row["status"] == "ok":
            found: Row = row
            return found
    return None


def goals(results: Results) -> list[dict[str, Any]]:
    """Each goal of issues 2 and 3 with its measured ratio (or figure) and whether it is met."""
    found = []
    for issue, section, ours_key, their_key, figure, target, text in GOALS:
        if section not in results.get("sections", {}):
            continue
        ours = _row(results, section, ours_key)
        theirs = _row(results, section, their_key) if their_key else None
        measured: float | None = None
        if their_key is None and ours is not None:
            measured = ours[figure]
        elif ours is not None and theirs is not None and theirs[figure]:
            measured = round(ours[figure] / theirs[figure], 2)
        if measured is None:
            met = None
        else:
            met = measured < target if their_key is None else measured >= target
        found.append(
            {"issue": issue, "goal": text, "section": section, "measured": measured,
             "target": target, "ratio": their_key is not None, "met": met}
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
                     "ratio": True, "met": ratio <= 0.5}
                )  # fmt: skip
    return found


def _number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio_text(ours: Row | None, row: Row, figure: str) -> str:
    if ours is None or row["status"] != "ok" or not row.get(figure):
        return "n/a"
    return f"{ours[figure] / row[figure]:.2f}x"


def section_table(results: Results, section: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of one section's table, as text cells."""
    _, ours_key, figure, unit = SECTIONS[section]
    data = results["sections"][section]
    ours = _row(results, section, ours_key)
    transfer = figure == "mb_per_s"
    header = ["contender", "server", f"{unit}"]
    header += ["seconds", "peak RSS MiB", "RSS at start MiB"] if transfer else ["rounds", "p50 ms"]
    header.append("ours / this")
    rows = []
    for row in data["rows"]:
        cells = [row["label"], row["server"]]
        if row["status"] == "errors":
            cells.append(f"{_number(row[figure])} with errors: {row['error']}")
            cells += ["", "", ""] if transfer else ["", ""]
        elif row["status"] != "ok":
            cells.append(f"unavailable ({row['error']})")
            cells += ["", "", ""] if transfer else ["", ""]
        elif transfer:
            cells += [
                _number(row["mb_per_s"], 1),
                _number(row["seconds"], 2),
                _number(row["peak_rss_mib"], 1),
                _number(row.get("start_rss_mib"), 1),
            ]
        else:
            rounds = ", ".join(f"{value:,.0f}" for value in row["rounds_requests_per_s"])
            cells += [_number(row["requests_per_s"]), rounds, _number(row["latency_p50_ms"], 2)]
        cells.append(_ratio_text(ours, row, figure))
        rows.append(cells)
    return header, rows


def _goal_cells(goal: dict[str, Any]) -> list[str]:
    measured = goal["measured"]
    if measured is None:
        shown = "not measured"
    else:
        shown = f"{measured:.2f}x" if goal["ratio"] else f"{measured:.1f} MiB"
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
    "\"ours / this\" divides our row's figure by that row's (above 1: ours is ahead). The "
    "bare ASGI app on uvicorn is the server's ceiling with no adapter at all; AsgiToWsgi "
    "around a bare ASGI hello shows the adapter's cost without Starlette's; the floor row "
    "(plain WSGI plus one bare round trip to a loop thread) bounds every bridge that runs "
    'the ASGI app on a loop thread, whatever its own cost. A row "with '
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
