"""adapter as it was at an earlier git revision, for ``run.py --baseline REV``.

The old package is extracted with ``git archive REV adapter`` into a temporary
directory, so ``DIRECTORY/adapter`` is the old package and nothing else; its servers put
that directory first on ``sys.path`` while ``benchmarks`` still comes from the current
tree, and are measured in the same rounds as the current adapter's.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: added to the key of a contender to name its baseline twin (``flask:ours@baseline``)
SUFFIX = "@baseline"
GIT_TIMEOUT = 60.0


class BaselineError(Exception):
    """Raised by :func:`extracted` when the revision can not be read from git."""


@dataclass(frozen=True)
class Baseline:
    """The old package: the revision asked for, its commit, and where it was extracted."""

    rev: str
    commit: str
    directory: Path


def key_of(key: str) -> str:
    """The key of the baseline twin of the contender ``key``."""
    return key + SUFFIX


def _git(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", *argv], cwd=ROOT, capture_output=True, timeout=GIT_TIMEOUT, check=False
    )


@contextlib.contextmanager
def extracted(rev: str) -> Iterator[Baseline]:
    """Extract ``adapter/`` as it was at ``rev`` into a temporary directory, removed after.

    :param rev: any git revision of this repository (``f6f3436``, ``main~3``, a tag).
    :raises BaselineError: when git does not know ``rev`` or it has no ``adapter/``.
    """
    found = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise BaselineError(f"--baseline {rev!r}: git knows no such commit in {ROOT}")
    commit = found.stdout.decode().strip()
    directory = Path(tempfile.mkdtemp(prefix=f"adapter-baseline-{commit[:12]}-"))
    try:
        archive = _git("archive", "--format=tar", commit, "adapter")
        if archive.returncode != 0:
            error = archive.stderr.decode(errors="replace").strip()
            raise BaselineError(f"--baseline {rev!r}: git archive failed: {error}")
        subprocess.run(
            ["tar", "-x", "-C", str(directory)],
            input=archive.stdout, check=True, capture_output=True, timeout=GIT_TIMEOUT,
        )  # fmt: skip
        if not (directory / "adapter" / "__init__.py").exists():
            raise BaselineError(f"--baseline {rev!r}: commit {commit[:12]} has no adapter/")
        yield Baseline(rev, commit, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def default_of(baseline: Baseline, dotted: str, parameter: str) -> int | None:
    """The integer default of ``parameter`` of ``dotted`` in the old package, or None.

    Read in a child interpreter: the old and the current ``adapter`` can not both be
    imported in this one.
    """
    module, _, name = dotted.rpartition(".")
    code = (
        "import inspect, sys\n"
        f"sys.path.insert(0, {str(baseline.directory)!r})\n"
        f"from {module} import {name}\n"
        f"print(inspect.signature({name}).parameters[{parameter!r}].default)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            timeout=GIT_TIMEOUT, cwd=baseline.directory, check=False,
        )  # fmt: skip
    except subprocess.SubprocessError:
        return None
    answer = done.stdout.strip()
    return int(answer) if done.returncode == 0 and answer.isdigit() else None
