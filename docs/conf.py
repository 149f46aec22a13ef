"""Sphinx configuration for adapter's documentation.

Built with ``tox -e docs`` or ``sphinx-build -W --keep-going -b html docs docs/_build/html``;
warnings are errors.  Nothing outside Python is needed to build: the diagrams are
hand-written SVG files in ``_static/``, and the command line's help text is produced by
running the command itself (so the page can not drift from the options).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging as sphinx_logging

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Autodoc imports the package from the checkout, installed or not.
sys.path.insert(0, str(ROOT))

import adapter  # noqa: E402  (needs the path above)

sphinx_logger = sphinx_logging.getLogger(__name__)

project = "adapter"
author = "the adapter authors"
copyright = "2026, the adapter authors"
release = adapter.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
]

# benchmarks/results.rst is a fragment that benchmarks.rst includes, not a page.
exclude_patterns = ["_build", "_generated", "examples", "benchmarks/*.rst", "benchmarks/*.md"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"adapter {release}"
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# Autodoc: signatures show the defaults; types go into the parameter list so that long
# ASGI/WSGI aliases do not swamp the signature line.
autoclass_content = "class"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": False}


# -- the command line's help, captured from the command itself ----------------------------

GENERATED = DOCS / "_generated"
# Problems met while generating pages; reported as Sphinx warnings (so -W fails the build)
# instead of leaving a page that quietly says less than the code does.
_PROBLEMS: list[str] = []


def _capture_help(args: list[str]) -> str:
    """Run ``python -m adapter <args> --help`` and return its output, or say why not."""
    env = dict(os.environ, COLUMNS="88", PYTHONPATH=str(ROOT))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "adapter", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _PROBLEMS.append(f"python -m adapter {' '.join(args)} --help: {exc}")
        return f"(the help text could not be produced when these docs were built: {exc})\n"
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        _PROBLEMS.append(f"python -m adapter {' '.join(args)} --help failed: {reason}")
        return f"(the command line was not available when these docs were built:\n {reason})\n"
    return done.stdout


def _write_cli_help() -> None:
    GENERATED.mkdir(exist_ok=True)
    for name, args in (("cli-help.txt", []), ("cli-serve-help.txt", ["serve"])):
        text = _capture_help(args)
        target = GENERATED / name
        # Only rewrite on change, so Sphinx does not rebuild every page each time.
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


# -- the benchmark plots, whatever the report script named them -----------------------------


def _write_benchmark_figures() -> None:
    """List the plots in ``benchmarks/`` that ``results.rst`` does not already show."""
    GENERATED.mkdir(exist_ok=True)
    bench = DOCS / "benchmarks"
    results = bench / "results.rst"
    shown = results.read_text() if results.exists() else ""
    lines: list[str] = []
    images = sorted([*bench.glob("*.svg"), *bench.glob("*.png")])
    for image in images:
        if image.name in shown:
            continue
        title = image.stem.replace("_", " ").replace("-", " ")
        lines += [f".. figure:: /benchmarks/{image.name}", "   :width: 100%", "", f"   {title}", ""]
    if lines:
        lines = ["More plots", "----------", "", *lines]
    elif images:
        lines = [".. Every plot is shown in results.rst, beside its table.", ""]
    else:
        lines = ["Plots", "-----", "", "No plots are in ``docs/benchmarks/`` yet.", ""]
    text = "\n".join(lines)
    target = GENERATED / "benchmark-figures.rst.inc"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


# -- the parameters and defaults of every public name, from the signatures ------------------


def _signature_rows(name: str) -> list[tuple[str, str, str]]:
    obj = getattr(adapter, name)
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return [(name, "(an exception)", f"subclass of ``{obj.__mro__[1].__name__}``")]
    rows = []
    # The signature of a class is that of its constructor, without ``self``.
    for parameter in inspect.signature(obj).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            label, default = f"``**{parameter.name}``", "(other keywords)"
        elif parameter.default is inspect.Parameter.empty:
            label, default = f"``{parameter.name}``", "required"
        else:
            label, default = f"``{parameter.name}``", f"``{parameter.default!r}``"
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            label += " (keyword)"
        rows.append((name, label, default))
    return rows


def _write_signatures() -> None:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 40 35",
        "",
        "   * - Name",
        "     - Parameter",
        "     - Default",
    ]
    for name in sorted(adapter.__all__, key=str.lower):
        for owner, parameter, default in _signature_rows(name):
            lines += [f"   * - :obj:`{owner}`", f"     - {parameter}", f"     - {default}"]
    text = "\n".join(lines) + "\n"
    GENERATED.mkdir(exist_ok=True)
    target = GENERATED / "signatures.rst.inc"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


_write_cli_help()
_write_benchmark_figures()
_write_signatures()


def _report_problems(app: Sphinx) -> None:
    for problem in _PROBLEMS:
        sphinx_logger.warning(problem)


def setup(app: Sphinx) -> None:
    app.connect("builder-inited", _report_problems)
