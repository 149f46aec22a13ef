"""``benchmarks/run.py --baseline REV``: the old package is extracted, served, then removed.

The servers of the baseline rows must import the extracted ``adapter``, not the current
tree's, although uvicorn and gunicorn put their working directory first on ``sys.path``;
the benchmark's factories refuse to serve any other (:data:`ADAPTER_DIR_VARIABLE`), so
an answer from them proves which package served it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import _baseline, _clients, _scenarios, _servers
from benchmarks.apps import ADAPTER_DIR_VARIABLE, HELLO, ours_wsgi_to_asgi
from benchmarks.run import settings_for

pytestmark = pytest.mark.server


def test_unknown_revision_is_refused() -> None:
    with pytest.raises(_baseline.BaselineError, match="no such commit"):
        with _baseline.extracted("no-such-revision-anywhere"):
            pass


def test_factory_refuses_an_adapter_from_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ADAPTER_DIR_VARIABLE, str(tmp_path))
    with pytest.raises(RuntimeError, match="adapter was imported from"):
        ours_wsgi_to_asgi()


@pytest.mark.parametrize("key", ["ours", "ours_asgi"])
def test_baseline_server_serves_the_extracted_package(key: str) -> None:
    with _baseline.extracted("HEAD") as baseline:
        assert (baseline.directory / "adapter" / "__init__.py").exists()
        target = _scenarios.targets(settings_for(quick=True), baseline)[_baseline.key_of(key)]
        assert target.pythonpath == baseline.directory
        with _servers.running(
            target.key,
            target.command,
            forks_worker=target.forks_worker,
            env=target.environment(),
            first_on_path=target.pythonpath,
        ) as server:
            status, body = _clients.get(server.port, "/", timeout=30.0)
            assert (status, body) == (200, HELLO), server.output_tail()
    assert not baseline.directory.exists()
