"""Fixtures shared by every test module.

Every async test runs on asyncio and on trio through anyio's pytest plugin, so trio
support can not rot (the ``anyio_backend`` fixture, as Starlette does it).
"""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    backend: tuple[str, dict[str, object]] = request.param
    return backend
