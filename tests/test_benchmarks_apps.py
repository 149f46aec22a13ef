"""The benchmark's ASGI-on-WSGI contenders answer alike, so their figures compare like
with like: the least bridge (a measuring stick with no checks) must serve exactly what
``AsgiToWsgi`` serves for the same request, or its row would measure something else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter._types import WSGIApp
from benchmarks import apps
from benchmarks.bench_asgi import environ


def _serve(app: WSGIApp) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]

    body: Iterable[bytes] = app(environ(), start_response)
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return started[0], started[1], data


def test_the_least_bridge_serves_what_asgi_to_wsgi_serves() -> None:
    least = apps.LeastBridge()
    try:
        measured = _serve(least)
    finally:
        least.close()
    assert measured == _serve(apps.ours_asgi_to_wsgi())
    status, headers, body = measured
    assert (status, body) == ("200 OK", apps.HELLO)
    assert ("content-length", str(len(apps.HELLO))) in headers
