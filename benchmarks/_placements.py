"""The command line of the in-process benchmarks, each case run under two placements.

``bench_sync.py`` and ``bench_asgi.py`` measure threads handing work to each other.  On a
virtual machine with an idle CPU, a hand-off to a thread on that CPU waits for the host to
wake it, so each script runs twice, each time in a fresh process: every thread pinned to
one CPU (``one_cpu``: the code's own cost), and free on every CPU (``all_cpus``: what the
machine adds).  :func:`main` parses the options, runs the two processes (or, in one of
them, the measurement), writes the merged JSON and prints a table per placement.
:func:`pinned_to` pins a child process instead (the servers and wrk of ``run.py``'s
``asgi_split`` section).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Set
from pathlib import Path
from typing import Any

__all__ = ["PLACEMENTS", "main", "pin", "pinned_to"]

PLACEMENTS = ("one_cpu", "all_cpus")

Results = dict[str, Any]


def pin(placement: str) -> str:
    """Pin this process to one CPU for ``"one_cpu"`` (before any thread starts); describe it.

    Threads inherit the affinity of the thread that starts them, so every thread of the
    run (loops, the shared thread, the workers, asgiref's executors) shares the CPU.
    """
    usable = sorted(os.sched_getaffinity(0))
    if placement == "one_cpu":
        os.sched_setaffinity(0, {usable[-1]})
        return f"pinned to CPU {usable[-1]} (os.sched_setaffinity)"
    return f"free on CPUs {usable}"


def pinned_to(cpus: Set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins a child process (and what it forks) to ``cpus``, or None."""
    if cpus is None:
        return None
    chosen = frozenset(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


def _run_placements(script: str, argv: list[str], output: Path) -> Results:
    """Run ``script`` once per placement, each in a fresh process; merge what they wrote."""
    merged: Results = {}
    for placement in PLACEMENTS:
        part = output.with_name(f"{output.stem}-{placement}.json")
        command = [sys.executable, script, *argv, "--placement", placement, "--output", str(part)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        merged[placement] = json.loads(part.read_text())
        part.unlink()
    first = merged[PLACEMENTS[0]]
    # A goal is judged on the first placement: its rows are the top-level ones.
    return {**first, "placements": merged}


def main(
    argv: list[str] | None,
    *,
    script: str,
    description: str,
    unit: tuple[str, int, int],
    rounds: tuple[int, int],
    output: Path,
    run: Callable[[int, int], Results],
    table: Callable[[Results], str],
) -> int:
    """The whole command line of a two-placement benchmark script.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    :param script: the script's own path, run again once per placement.
    :param description: the first line of ``--help``.
    :param unit: the option counting the work of a round (``"calls"``), and its default
        for a full and for a ``--quick`` run.
    :param rounds: the default number of rounds, full and quick.
    :param output: where the JSON goes unless ``--output`` says otherwise.
    :param run: measures, given the work per round and the rounds; returns the JSON.
    :param table: one placement's results as text.
    """
    name, full, quick = unit
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=f"fewer {name} and rounds")
    parser.add_argument(f"--{name}", type=int, help=f"per round (default {full}, quick {quick})")
    parser.add_argument("--rounds", type=int, help=f"default {rounds[0]}, quick {rounds[1]}")
    parser.add_argument(
        "--placement",
        choices=(*PLACEMENTS, "both"),
        default="both",
        help="one CPU, all CPUs, or both in turn (default), each in its own process",
    )
    parser.add_argument("--output", type=Path, default=output, help="where to write JSON")
    args = parser.parse_args(argv)
    amount: int | None = getattr(args, name)
    if args.placement == "both":
        passed = ["--quick"] if args.quick else []
        passed += [f"--{name}", str(amount)] if amount else []
        passed += ["--rounds", str(args.rounds)] if args.rounds else []
        results = _run_placements(script, passed, args.output)
    else:
        where = pin(args.placement)
        measured = run(amount or (quick if args.quick else full),
                       args.rounds or (rounds[1] if args.quick else rounds[0]))  # fmt: skip
        results = {**measured, "placement": args.placement, "placement_note": where}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    for placement, data in results.get("placements", {args.placement: results}).items():
        sys.stdout.write(f"{placement}: {data['placement_note']}\n{table(data)}\n\n")
    sys.stdout.write(f"written to {args.output}\n")
    return 0
