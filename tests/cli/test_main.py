"""``python -m adapter``: help, app loading, interface detection, and bad input.

Bad input is checked on the real command line, in a subprocess: one line on stderr, a
non-zero exit, never a traceback, and no server started (the run is bounded by a
timeout, which a server that started anyway would hit).
"""

from __future__ import annotations

import argparse
import configparser
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapter import AsgiToWsgi, WsgiToAsgi
from adapter.cli import main as cli
from adapter.cli.options import build_parser
from adapter.cli.servers import OPTIONS, SERVERS, is_coroutine_callable, served_app
from tests.apps import cli_asgi, cli_logging, cli_odd, cli_wsgi
from tests.servers import ROOT, free_port, run_python

RUN_TIMEOUT = 60


def run_cli(
    *args: str, code: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m adapter ARGS`` (or ``python -c CODE ARGS``) and collect its output."""
    start = ["-m", "adapter"] if code is None else ["-c", code]
    return run_python(*start, *args, cwd=cwd, timeout=RUN_TIMEOUT)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The run failed with exactly one line on stderr, holding every fragment."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def _serve_parser() -> argparse.ArgumentParser:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            serve: argparse.ArgumentParser = action.choices["serve"]
            return serve
    raise AssertionError("no serve command")  # pragma: no cover


# --- point 5: --help documents every option -------------------------------------------


def test_top_level_help_lists_serve() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout
    assert "WSGI apps on ASGI servers" in result.stdout


def test_serve_help_documents_every_option() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    text = result.stdout
    documented = 0
    for action in _serve_parser()._actions:
        names = action.option_strings or [str(action.metavar)]
        assert action.help, f"{names} has no help text"
        assert any(name in text for name in names), names
        documented += 1
    assert documented >= 9  # -h, APP, and the seven options
    for option in ("APP", "--server", "--interface", "--factory", "--host", "--port"):
        assert option in text
    for option in ("--workers", "--log-level"):
        assert option in text
    for name, server in SERVERS.items():
        assert name in text
        if server.module is not None:
            assert f"pip install 'wsgi-asgi-adapter[{name}]'" in text


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("adapter ")


# --- point 4: bad input is one line, a non-zero exit, never a traceback ----------------

BAD_INPUT = [
    pytest.param(
        ["tests.apps.cli_broken:app"], ["RuntimeError: DATABASE_URL is not set"], id="import-fails"
    ),
    pytest.param(
        ["tests.apps.no_such_module:app"],
        ["no module named 'tests.apps.no_such_module'"],
        id="no-module",
    ),
    pytest.param(["tests/apps/no_such_file.py:app"], ["there is no file"], id="no-file"),
    pytest.param(
        ["tests.apps.cli_wsgi:missing"], ["has no attribute 'missing'"], id="no-attribute"
    ),
    pytest.param(["tests.apps.cli_wsgi"], ["must be 'module:attribute'"], id="no-colon"),
    pytest.param(
        ["tests.apps.cli_odd:not_callable"],
        ["not an application", "int is not callable"],
        id="not-callable",
    ),
    pytest.param(
        ["tests.apps.cli_odd:takes_one"], ["not an application", "1 positional"], id="one-argument"
    ),
    pytest.param(["tests.apps.cli_odd:SomeClass"], ["cannot tell", "--interface"], id="class"),
    pytest.param(
        ["tests.apps.cli_odd:takes_anything"], ["cannot tell", "--interface"], id="star-args"
    ),
    pytest.param(
        ["tests.apps.cli_odd:sync_three"], ["cannot tell", "--interface"], id="sync-three"
    ),
    pytest.param(
        ["tests.apps.cli_odd:failing_factory", "--factory"],
        ["LookupError: no configuration"],
        id="factory-fails",
    ),
    pytest.param(
        ["tests.apps.cli_odd:not_callable", "--factory"],
        ["--factory needs a callable"],
        id="factory-not-callable",
    ),
    pytest.param(
        ["--server", "nginx"], ["invalid choice: 'nginx'", "uvicorn"], id="unknown-server"
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--server", "waitress", "--workers", "2"],
        ["waitress runs one process"],
        id="workers-unsupported",
    ),
    pytest.param(["--workers", "0"], ["at least 1"], id="zero-workers"),
    pytest.param(["--workers", "two"], ["must be a whole number, got 'two'"], id="workers-word"),
    pytest.param(["--port", "70000"], ["between 1 and 65535"], id="bad-port"),
    pytest.param(["--interface", "rsgi"], ["invalid choice: 'rsgi'"], id="unknown-interface"),
    pytest.param(["--factory"], ["need an APP"], id="demo-factory"),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--server", "gunicorn", "--reload"],
        ["gunicorn does not support --reload; uvicorn, hypercorn, granian do"],
        id="reload-unsupported",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--server", "wsgiref", "--", "--anything"],
        ["wsgiref does not support arguments after --"],
        id="server-args-unsupported",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--threads", "4"],
        ["uvicorn does not support --threads; gunicorn, waitress do"],
        id="threads-unsupported",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--server", "waitress", "--ssl-certfile", "c.pem"],
        ["waitress does not support --ssl-certfile"],
        id="tls-unsupported",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--server", "hypercorn", "--forwarded-allow-ips", "*"],
        ["hypercorn does not support --forwarded-allow-ips"],
        id="forwarded-unsupported",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--root-path", "api"],
        ["must start with '/'"],
        id="root-path-relative",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--ssl-keyfile", "k.pem"],
        ["needs --ssl-certfile"],
        id="key-without-cert",
    ),
    pytest.param(
        ["tests.apps.cli_wsgi:app", "--host", "no-such-host.invalid"],
        ["cannot listen on host"],
        id="bad-host",
    ),
]


@pytest.mark.parametrize(("arguments", "fragments"), BAD_INPUT)
def test_bad_input_is_one_line(arguments: list[str], fragments: list[str]) -> None:
    result = run_cli("serve", *arguments, "--port", str(free_port()))
    assert_one_line_error(result, *fragments)


def test_a_syntax_error_is_shown_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken_syntax.py"
    broken.write_text("def app(environ, start_response)\n    return []\n")
    result = run_cli("serve", f"{broken}:app", "--port", str(free_port()))
    assert_one_line_error(result, "SyntaxError", "broken_syntax.py")


def test_missing_import_inside_the_app_names_that_module(tmp_path: Path) -> None:
    app_file = tmp_path / "needs_dependency.py"
    app_file.write_text("import no_such_dependency_xyz\n")
    result = run_cli("serve", f"{app_file}:app", "--port", str(free_port()))
    assert_one_line_error(result, "ModuleNotFoundError", "no_such_dependency_xyz")


def test_no_command_is_one_line() -> None:
    result = run_cli()
    assert_one_line_error(result, "COMMAND")
    assert result.returncode == 2


def test_an_app_with_its_own_logging_gets_one_line_per_record() -> None:
    # The command line configures only the "adapter" logger: a record of the app's own
    # logger goes out through the app's handler, not a second time through the root's.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The factory runs (and logs) before the busy port stops the command.
        result = run_cli(
            "serve", "tests.apps.cli_logging:create_app", "--factory", "--port", str(port)
        )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if cli_logging.MESSAGE in line]
    assert lines == [f"app-format WARNING {cli_logging.MESSAGE}"], result.stderr


def test_the_adapter_logger_is_configured_once_and_does_not_propagate() -> None:
    code = (
        "import logging, sys\n"
        "from adapter.cli.main import configure_logging\n"
        "configure_logging('info'); configure_logging('debug')\n"
        "logging.basicConfig(format='root %(message)s')\n"
        "logging.getLogger('adapter').info('hello from adapter')\n"
    )
    result = run_cli(code=code)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["INFO:     adapter: hello from adapter"]


def test_port_in_use_is_one_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "tests.apps.cli_wsgi:app", "--port", str(port))
    assert_one_line_error(result, f"port {port}", "already in use")


# Simulates a server that is not installed: importing it fails as a missing module does.
HIDE_AND_RUN = (
    "import sys; sys.modules[sys.argv[1]] = None; del sys.argv[1]\n"
    "from adapter.cli.main import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize("server", [name for name, s in SERVERS.items() if s.module])
def test_a_missing_server_names_its_extra(server: str) -> None:
    result = run_cli(
        server,
        "serve",
        "tests.apps.cli_asgi:app",
        "--server",
        server,
        "--port",
        str(free_port()),
        code=HIDE_AND_RUN,
    )
    line = assert_one_line_error(result, f"{server} is not installed")
    assert line.endswith(f"pip install 'wsgi-asgi-adapter[{server}]'")


# --- point 1: APP forms, --factory, --interface detection (in process) -----------------


@pytest.mark.parametrize(
    ("spec", "factory", "expected"),
    [
        ("tests.apps.cli_wsgi:app", False, cli_wsgi.app),
        ("tests/apps/cli_wsgi.py:app", False, cli_wsgi.app),
        ("tests.apps.cli_wsgi:create_app", True, cli_wsgi.app),
        ("tests.apps.cli_asgi:application", False, cli_asgi.application),
        ("tests.apps.cli_asgi:Application.__call__", False, cli_asgi.Application.__call__),
        ("tests/apps/cli_asgi.py:create_app", True, cli_asgi.application),
    ],
)
def test_load_app(spec: str, factory: bool, expected: object) -> None:
    app, import_path = cli.load_app(spec, factory=factory)
    # A file inside a package is imported as part of it: the same module, the same object.
    assert app is expected
    assert import_path == str(ROOT)


def test_load_app_from_a_file_outside_any_package(tmp_path: Path) -> None:
    (tmp_path / "helper_for_cli_test.py").write_text("GREETING = b'hi'\n")
    (tmp_path / "standalone_cli_app.py").write_text(
        "from helper_for_cli_test import GREETING\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [GREETING]\n"
    )
    saved_path = list(sys.path)
    try:
        app, import_path = cli.load_app(f"{tmp_path}/standalone_cli_app.py:app")
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("standalone_cli_app", None)
        sys.modules.pop("helper_for_cli_test", None)
    assert import_path == str(tmp_path)
    assert cli.detect_interface(app, "auto", "standalone_cli_app.py:app") == "wsgi"


async def _async_function(scope: Any, receive: Any, send: Any) -> None: ...


class _WsgiObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def _wsgi_with_default(environ: Any, start_response: Any, *, extra: int = 0) -> list[bytes]:
    return []


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (cli_wsgi.app, "wsgi"),
        (_WsgiObject(), "wsgi"),
        (_wsgi_with_default, "wsgi"),
        (cli_asgi.app, "asgi"),
        (cli_asgi.application, "asgi"),
        (_async_function, "asgi"),
    ],
)
def test_detect_interface_auto(app: Callable[..., Any], expected: str) -> None:
    assert cli.detect_interface(app, "auto", "x:app") == expected


@pytest.mark.parametrize(
    "app", [cli_odd.SomeClass, cli_odd.takes_anything, cli_odd.sync_three, print]
)
def test_detect_interface_asks_when_it_cannot_tell(app: object) -> None:
    with pytest.raises(cli.CommandError, match="--interface wsgi or --interface asgi"):
        cli.detect_interface(app, "auto", "x:app")


@pytest.mark.parametrize("requested", ["wsgi", "asgi"])
def test_detect_interface_obeys_the_option(requested: str) -> None:
    assert cli.detect_interface(cli_odd.takes_anything, requested, "x:app") == requested


def test_detect_interface_refuses_what_is_not_callable() -> None:
    with pytest.raises(cli.CommandError, match="not callable"):
        cli.detect_interface(cli_odd.not_callable, "asgi", "x:app")


def test_worker_app_without_the_environment_says_how_to_start() -> None:
    result = run_cli(code="from adapter.cli.main import worker_app; worker_app()")
    assert result.returncode != 0
    assert "python -m adapter serve" in result.stderr


# --- the workers' import target and the wrapping -------------------------------------------


@pytest.mark.parametrize(
    ("app", "interface", "server", "wrapper"),
    [
        ("tests.apps.cli_wsgi:app", "wsgi", "uvicorn", WsgiToAsgi),
        ("tests.apps.cli_asgi:application", "asgi", "gunicorn", AsgiToWsgi),
        (None, "wsgi", "granian", WsgiToAsgi),
    ],
)
def test_worker_app_rebuilds_and_wraps_what_the_command_line_chose(
    monkeypatch: pytest.MonkeyPatch, app: str | None, interface: str, server: str, wrapper: type
) -> None:
    config = {
        "app": app,
        "factory": False,
        "interface": interface,
        "server": server,
        "import_path": [str(ROOT)],
    }
    monkeypatch.setenv(cli.CONFIG_ENV, json.dumps(config))
    assert isinstance(cli.worker_app(), wrapper)


def test_an_app_declared_asgi_gets_an_async_call() -> None:
    # daphne and hypercorn take a plain callable for ASGI 2 or WSGI; --interface asgi wins.
    async def real_app(scope: Any, receive: Any, send: Any) -> None: ...

    def returns_a_coroutine(scope: Any, receive: Any, send: Any) -> Any:
        return real_app(scope, receive, send)

    served = served_app(returns_a_coroutine, "asgi", "asgi")
    assert is_coroutine_callable(served)
    assert served_app(real_app, "asgi", "asgi") is real_app
    assert served_app(cli_wsgi.app, "wsgi", "wsgi") is cli_wsgi.app


# --- the extras: [serve] brings the server the benchmarks measure ----------------------------


def _extras() -> dict[str, list[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return {
        name: [line.strip() for line in value.splitlines() if line.strip()]
        for name, value in config["options.extras_require"].items()
    }


@pytest.mark.parametrize("extra", ["serve", "uvicorn"])
def test_uvicorn_comes_with_httptools_and_uvloop(extra: str) -> None:
    # uvicorn[standard] pulls httptools and uvloop (and watchfiles, for --reload); plain
    # uvicorn parses HTTP in pure Python, which the benchmarks never measure.
    uvicorns = [line for line in _extras()[extra] if line.startswith("uvicorn")]
    assert uvicorns, f"[{extra}] installs no uvicorn"
    assert all(line.startswith("uvicorn[standard]") for line in uvicorns), uvicorns


def test_every_extra_is_explained_on_the_command_line_page() -> None:
    page = (ROOT / "docs" / "cli.rst").read_text()
    for extra in _extras():
        assert f"``[{extra}]``" in page, f"docs/cli.rst does not say what [{extra}] brings"


def test_the_docs_table_of_options_is_the_servers_table() -> None:
    # docs/cli.rst has a row per option and a column per server: "yes" where it is honoured.
    page = (ROOT / "docs" / "cli.rst").read_text()
    table = page[page.index(".. _option-support:") :]
    rows = table.split("   * - ")[2:]
    found = {}
    for row in rows:
        cells = [cell.strip() for cell in row.split("\n     - ")]
        option = cells[0].strip("`").split()[0].strip("`")
        if option not in OPTIONS:
            break
        found[option] = {
            name for name, cell in zip(SERVERS, cells[1:], strict=True) if cell.startswith("yes")
        }
    assert found == {
        option: {n for n, s in SERVERS.items() if option in s.options} for option in OPTIONS
    }
