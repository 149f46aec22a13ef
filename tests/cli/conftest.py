"""Shared fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapter.cli.main import CONFIG_ENV


@pytest.fixture(autouse=True)
def _no_leftover_serve_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``serve`` run in-process leaves its choice in ``os.environ`` for the workers; a
    server started by a later test would inherit it.  Each test starts without it and
    leaves none behind."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    yield
    monkeypatch.delenv(CONFIG_ENV, raising=False)
