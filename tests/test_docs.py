"""Every code sample in the docs runs here, so the docs can not drift from the code.

The rules, each a test below:

* Python in the docs comes only from files under ``docs/examples/`` (``literalinclude``);
  no page has an inline Python block, and every example file is shown somewhere.
* Each example is imported (or run as a script) and driven with an HTTP test client:
  ``httpx.ASGITransport`` for ASGI apps, ``werkzeug.test.Client`` for WSGI apps.  The
  Django project runs in a subprocess, because Django's settings are process-wide.
* Every shell command on a page is parsed: a server command must name an application of
  the protocol that server speaks, an extra in ``pip install`` must exist in setup.cfg,
  and an option of ``python -m adapter serve`` must be in its ``--help``.
* A few recipe commands are started for real, exactly as the page writes them, with the
  address moved to a free loopback port.
"""

from __future__ import annotations

import configparser
import importlib
import inspect
import json
import logging
import os
import re
import runpy
import shlex
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

import adapter
from tests.servers import run_python, running_server

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
GENERATED = DOCS / "_generated"

# The files docs/conf.py writes into docs/_generated from ``python -m adapter ... --help``.
GENERATED_HELP = {"cli-help.txt": [], "cli-serve-help.txt": ["serve"]}

# Example files that exist to make a shown example work, but are not shown themselves.
SUPPORTING_FILES = {
    "mysite/__init__.py",
    "mysite/settings.py",
    "mysite/urls.py",
    "mysite/views.py",
}

ASGI_SERVERS = {"uvicorn", "hypercorn", "granian", "daphne"}
WSGI_SERVERS = {"gunicorn", "waitress-serve"}


# -- reading the pages --------------------------------------------------------------------


def _pages() -> list[Path]:
    skipped = {"_build", "_generated"}
    pages = [p for p in DOCS.rglob("*.rst") if not skipped & set(p.relative_to(DOCS).parts)]
    return sorted([*pages, ROOT / "CHANGES.rst"])


def _directive_blocks(text: str, kinds: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """Yield (argument, body) of each ``.. kind:: argument`` directive in ``text``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)\.\. ([\w-]+)::\s*(.*)$", line)
        if not match or match.group(2) not in kinds:
            continue
        indent = len(match.group(1))
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        yield match.group(3).strip(), "\n".join(body)


def _console_commands() -> list[tuple[str, list[str]]]:
    """Every ``$ command`` of every console block, as (page name, argv)."""
    commands = []
    for page in _pages():
        for _, body in _directive_blocks(page.read_text(), ("code-block", "code")):
            for line in body.splitlines():
                if line.strip().startswith("$ "):
                    argv = shlex.split(line.strip()[2:], comments=True)
                    commands.append((page.name, argv))
    return commands


def _app_target(argv: list[str]) -> str | None:
    """The ``module:attribute`` an argv names, if any."""
    targets = [arg for arg in argv if re.fullmatch(r"[\w.]+:[\w.]+", arg)]
    return targets[0] if targets else None


# -- 1. every sample is a file that the tests run -------------------------------------------


def test_no_page_has_inline_python() -> None:
    offenders = []
    for page in _pages():
        text = page.read_text()
        for language, _ in _directive_blocks(text, ("code-block", "code", "sourcecode")):
            if language in {"python", "py", "python3", "pycon", ""}:
                offenders.append(f"{page.name}: .. code-block:: {language}")
        for number, line in enumerate(text.splitlines(), 1):
            # A paragraph ending in "::" starts a literal block, highlighted as Python.
            if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
                offenders.append(f"{page.name}:{number}: literal block")
    assert offenders == [], "put Python samples in docs/examples/ and literalinclude them"


def test_every_include_exists_and_every_example_is_shown() -> None:
    shown = set()
    for page in _pages():
        for argument, _ in _directive_blocks(page.read_text(), ("literalinclude",)):
            base = DOCS if argument.startswith("/") else page.parent
            path = (base / argument.lstrip("/")).resolve()
            if GENERATED in path.parents:
                # Written by docs/conf.py when Sphinx runs, so absent from a fresh clone:
                # check that what it is written from works, not that it was written.
                assert path.name in GENERATED_HELP, f"{page.name}: unknown {argument}"
                _cli_help(GENERATED_HELP[path.name])
                continue
            assert path.is_file(), f"{page.name} includes a missing file: {argument}"
            if EXAMPLES in path.parents:
                shown.add(path.relative_to(EXAMPLES).as_posix())
    files = {
        path.relative_to(EXAMPLES).as_posix()
        for path in EXAMPLES.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".sqlite3"
    }
    assert files - shown == SUPPORTING_FILES


def test_sizes_in_the_pictures_are_the_codes() -> None:
    """The diagrams and pages quote the buffer sizes; they must be the code's."""
    from adapter.asgi_to_wsgi.input_reader import BODY_PIECE_SIZE
    from adapter.wsgi_to_asgi import responder as wsgi_to_asgi
    from adapter.wsgi_to_asgi import streams

    def text(name: str) -> str:
        return " ".join((DOCS / name).read_text().split())

    pull = wsgi_to_asgi.PULL_BYTES // 1024
    read_ahead = streams.READ_AHEAD_BYTES // 1024
    piece = BODY_PIECE_SIZE // 1024
    quoted = {
        "_static/wsgi-to-asgi.svg": [f"of ≤ {pull} KiB", f"≤ {read_ahead} KiB ahead"],
        "_static/backpressure.svg": [
            f"≤ {pull} KiB waiting",
            f"≤ {read_ahead} KiB ahead",
            f"reads ≤ {piece} KiB",
        ],
        "_static/asgi-to-wsgi.svg": [f"≤ {piece} KiB goes along"],
        "how-it-works.rst": [
            f"waiting while {pull} KiB wait there",
            f"at most {read_ahead} KiB and one message ahead",
            f"the next {piece} KiB piece",
            f"two batches of {pull} KiB",
        ],
    }
    for name, phrases in quoted.items():
        for phrase in phrases:
            assert phrase in text(name), f"{name} should say {phrase!r}, as the code does"
    default_workers = inspect.signature(adapter.WsgiToAsgi).parameters["max_workers"].default
    assert f"max_workers ({default_workers})" in text("_static/wsgi-to-asgi.svg")
    assert f"at once, {default_workers} by default" in text("quickstart.rst")


# -- 2. the shell commands name real things -------------------------------------------------


def _app_kinds(targets: list[str], tmp_path: Path) -> dict[str, str]:
    """Import each target as a server would (from docs/examples) and say what it is."""
    script = """
import inspect, json, runpy, sys
from importlib import import_module

def kind(obj):
    call = getattr(type(obj), "__call__", None)
    if inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(call):
        return "asgi"
    return "wsgi" if callable(obj) else "not an app"

kinds = {}
for target in sys.argv[1:]:
    if target.endswith((".py", ".wsgi")):
        kinds[target] = kind(runpy.run_path(target)["application"])
        continue
    module, _, attribute = target.partition(":")
    obj = import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    kinds[target] = kind(obj)
print(json.dumps(kinds))
"""
    done = run_python("-c", script, *targets, cwd=EXAMPLES, env=_example_env(tmp_path))
    assert done.returncode == 0, done.stderr
    kinds: dict[str, str] = json.loads(done.stdout)
    return kinds


def _example_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), str(ROOT)])
    env["MYSITE_DB"] = str(tmp_path / "db.sqlite3")
    return env


def _cli_help(arguments: list[str]) -> str:
    done = run_python("-m", "adapter", *arguments, "--help")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _serve_help() -> str:
    return _cli_help(["serve"])


def test_conf_py_writes_the_help_files_the_tests_expect() -> None:
    conf = (DOCS / "conf.py").read_text()
    for name, arguments in GENERATED_HELP.items():
        assert f'("{name}", {json.dumps(arguments)})' in conf, name


def test_ci_runs_the_readme_test_command_before_anything_is_built() -> None:
    # So that a test leaning on a file the docs build (or anything else) generates fails
    # in CI as it does on a fresh clone.
    script = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    test_line = next(line for line in readme.splitlines() if "# the whole test suite" in line)
    assert "python -m pytest" in test_line
    # .ci/run reads the command from that line of the README and runs it.
    assert "# the whole test suite" in script
    run_tests = script.index('bash -c "$readme_test_command"')
    for step in ("sphinx-build", "ruff check", "mypy", "benchmarks/"):
        if step in script:
            assert script.index(step) > run_tests, f".ci/run runs {step} before the tests"


def test_every_command_names_an_app_of_the_servers_protocol(tmp_path: Path) -> None:
    expected: dict[str, set[str]] = {}
    serve_options: set[str] = set()
    extras = configparser.ConfigParser()
    extras.read(ROOT / "setup.cfg")
    known_extras = set(extras["options.extras_require"])
    for page, argv in _console_commands():
        program = argv[0]
        target = _app_target(argv)
        if program in ASGI_SERVERS | WSGI_SERVERS:
            assert target, f"{page}: {shlex.join(argv)} names no app"
            kind = "asgi" if program in ASGI_SERVERS else "wsgi"
            expected.setdefault(target, set()).add(kind)
        elif program == "mod_wsgi-express":
            expected.setdefault(argv[2], set()).add("wsgi")
        elif program == "passenger":
            expected.setdefault(argv[argv.index("--startup-file") + 1], set()).add("wsgi")
        elif argv[:4] == ["python", "-m", "adapter", "serve"]:
            if target:
                expected.setdefault(target, set()).add("any")
            serve_options.update(arg.split("=")[0] for arg in argv if arg.startswith("--"))
        elif "pip" in argv and "install" in argv:
            for requirement in argv[argv.index("install") + 1 :]:
                named = re.search(r"\[([\w,-]+)\]", requirement)
                for extra in named.group(1).split(",") if named else []:
                    assert extra in known_extras, f"{page}: no extra [{extra}] in setup.cfg"
        elif program == "python" and argv[1].endswith(".py"):
            assert (ROOT / argv[1]).is_file(), f"{page}: {argv[1]} does not exist"
        elif program == "apt-get":
            continue
        else:
            pytest.fail(f"{page}: teach test_docs.py about this command: {shlex.join(argv)}")

    quickstart = (DOCS / "quickstart.rst").read_text()
    for extra in known_extras:
        assert f"``{extra}``" in quickstart, f"the quickstart does not name the extra [{extra}]"

    kinds = _app_kinds(sorted(expected), tmp_path)
    for target, wanted in expected.items():
        assert kinds[target] != "not an app", target
        for kind in wanted - {"any"}:
            assert kinds[target] == kind, f"{target} is {kinds[target]}, a server wants {kind}"

    help_text = _serve_help()
    for option in serve_options:
        assert option in help_text, f"the docs use {option}, which serve --help lacks"


# -- 3. the examples, driven in memory ------------------------------------------------------


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import docs/examples modules by name, as a server started there would."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    return load


# httpx's ASGITransport feeds the request body from an async generator that only ends
# when receive() is called past the last body message.  WsgiToAsgi reads ahead one
# message and, as the ASGI spec allows, not more than the app asks for, so on trio the
# half-consumed generator is collected with a ResourceWarning.  That is httpx's test
# double, not the docs' apps: ignore exactly that warning in the tests that use it.
HTTPX_BODY_GENERATOR = (
    "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage collected"
    ":ResourceWarning"
)


def _asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.anyio
@pytest.mark.filterwarnings(HTTPX_BODY_GENERATOR)
async def test_hello_flask(examples: Any) -> None:
    async with _asgi_client(examples("hello_flask").app) as client:
        hello = await client.get("/", params={"name": "docs"})
        echo = await client.post("/echo", content=b"x" * 100_000)
    assert hello.json() == {"hello": "docs", "home": "/"}
    assert echo.content == b"x" * 100_000


@pytest.mark.anyio
@pytest.mark.filterwarnings(HTTPX_BODY_GENERATOR)
@pytest.mark.parametrize(
    ("module", "native_path", "native_json"),
    [
        ("mount_starlette", "/health", {"ok": True}),
        ("mount_fastapi", "/api/status", {"status": "ok"}),
    ],
)
async def test_flask_mounted_beside_an_asgi_app(
    examples: Any, module: str, native_path: str, native_json: dict[str, Any]
) -> None:
    async with _asgi_client(examples(module).app) as client:
        legacy = await client.get("/legacy/", params={"name": "mounted"})
        native = await client.get(native_path)
    # url_for() includes the mount: the prefix reached Flask as SCRIPT_NAME.
    assert legacy.json() == {"hello": "mounted", "home": "/legacy/"}
    assert native.json() == native_json


@pytest.mark.anyio
@pytest.mark.filterwarnings(HTTPX_BODY_GENERATOR)
async def test_flask_view_awaits_async_code(examples: Any) -> None:
    async with _asgi_client(examples("flask_async").app) as client:
        response = await client.get("/price/pear")
    assert response.json() == {"sku": "pear", "price": 5}


def test_hello_fastapi_on_a_wsgi_server(examples: Any) -> None:
    client = Client(examples("hello_fastapi").application)
    assert client.get("/?name=wsgi").json == {"hello": "wsgi"}
    assert client.post("/items", json={"a": 1, "b": 2}).json == {"count": 2}


def test_starlette_lifespan_and_stream_on_a_wsgi_server(examples: Any) -> None:
    client = Client(examples("hello_starlette").application)
    assert client.get("/").json == {"greeting": "hello from the lifespan"}
    response = client.get("/ticks", buffered=False)
    try:
        chunks = [chunk for chunk in response.response if chunk]
    finally:
        response.close()
    # Each event is its own chunk: nothing is collected in between.
    assert chunks == [f"data: tick {number}\n\n".encode() for number in range(3)]


@pytest.mark.parametrize("script", ["hello_fastapi.wsgi", "passenger_wsgi.py"])
def test_wsgi_script_files_define_application(examples: Any, script: str) -> None:
    namespace = runpy.run_path(str(EXAMPLES / script))
    client = Client(namespace["application"])
    assert client.get("/?name=script").json == {"hello": "script"}


@pytest.mark.anyio
async def test_helpers_from_async_code(examples: Any) -> None:
    assert await examples("helpers_basics").squares() == [0, 1, 4, 9]


def test_helpers_from_sync_code(examples: Any) -> None:
    assert examples("helpers_basics").greeting("world") == "hello world"


def test_helpers_script_runs_on_both_loops(tmp_path: Path) -> None:
    done = run_python("helpers_basics.py", cwd=EXAMPLES, env=_example_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[0, 1, 4, 9]", "[0, 1, 4, 9]", "hello world"]


def test_public_names_sample_lists_every_public_name(examples: Any) -> None:
    assert sorted(examples("public_names").__all__) == sorted(adapter.__all__)


def test_logging_sample() -> None:
    logger = logging.getLogger("adapter")
    before = logger.level
    try:
        runpy.run_path(str(EXAMPLES / "logging_setup.py"))
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)


DJANGO_DRIVER = """
import json
import anyio, httpx
from werkzeug.test import Client

import mysite.api  # first: it sets up Django, as the page shows
import mysite.bridge
from django.contrib.auth.models import User
from django.core.management import call_command

call_command("migrate", verbosity=0)
for name in ["ada", "grace", "linus", "guido"]:
    User.objects.create(username=name)

async def through_asgi(app, path):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path)
        return response.status_code, response.json()

results = {}
for backend in ["asyncio", "trio"]:
    results["bridge-" + backend] = anyio.run(
        through_asgi, mysite.bridge.application, "/users/?x=1", backend=backend
    )
    results["api-" + backend] = anyio.run(
        through_asgi, mysite.api.api, "/users?limit=2", backend=backend
    )
response = Client(mysite.api.application).get("/users")
results["api-wsgi"] = [response.status_code, response.json]
print(json.dumps(results))
"""


def test_django_examples(tmp_path: Path) -> None:
    done = run_python("-c", DJANGO_DRIVER, cwd=EXAMPLES, env=_example_env(tmp_path), timeout=90)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for backend in ["asyncio", "trio"]:
        assert results[f"bridge-{backend}"] == [200, {"users": 4, "path": "/users/?x=1"}]
        assert results[f"api-{backend}"] == [200, {"newest": ["guido", "linus"]}]
    assert results["api-wsgi"] == [200, {"newest": ["guido", "linus", "grace"]}]


# -- 4. recipe commands, started for real ---------------------------------------------------


def _doc_command(prefix: str) -> list[str]:
    """The one command on the pages that starts with ``prefix``, exactly as written."""
    found = [argv for _, argv in _console_commands() if shlex.join(argv).startswith(prefix)]
    assert found, f"no command starting with {prefix!r} in the docs"
    return found[0]


def _on_free_loopback_port(argv: list[str], bind: list[str]) -> list[str]:
    """Move the command's address to 127.0.0.1 and a free port, or add one."""
    moved = [arg.replace("0.0.0.0", "127.0.0.1").replace("8000", "{port}") for arg in argv]
    return moved if moved != argv else [*argv, *bind]


@pytest.mark.server
@pytest.mark.parametrize(
    ("prefix", "bind", "expected"),
    [
        ("uvicorn hello_flask:app --host", [], {"hello": "world", "home": "/"}),
        ("hypercorn hello_flask:app --worker-class trio", [], {"hello": "world", "home": "/"}),
        ("granian --interface asgi hello_flask:app --host", [], {"hello": "world", "home": "/"}),
        ("daphne -b", [], {"hello": "world", "home": "/"}),
        ("waitress-serve", [], {"hello": "world"}),
        (
            "gunicorn hello_starlette:application --worker-class gthread",
            ["--bind", "127.0.0.1:{port}"],
            {"greeting": "hello from the lifespan"},
        ),
        (
            "gunicorn hello_fastapi:application --workers 4 --preload",
            ["--bind", "127.0.0.1:{port}"],
            {"hello": "world"},
        ),
        (
            "python -m adapter serve hello_flask:flask_app",
            ["--host", "127.0.0.1", "--port", "{port}"],
            {"hello": "world", "home": "/"},
        ),
    ],
    ids=[
        "uvicorn",
        "hypercorn-trio",
        "granian",
        "daphne",
        "waitress",
        "gunicorn-gthread",
        "gunicorn-preload",
        "adapter-serve",
    ],
)
def test_recipe_command_serves(
    tmp_path: Path, prefix: str, bind: list[str], expected: dict[str, str]
) -> None:
    command = _on_free_loopback_port(_doc_command(prefix), bind)
    env = {"PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(ROOT)])}
    with running_server(command, env=env, cwd=EXAMPLES) as base_url:
        # Several requests, so that several workers (where there are) answer.
        for _ in range(6):
            response = httpx.get(base_url + "/", timeout=10)
            assert response.status_code == 200
            assert response.json() == expected
