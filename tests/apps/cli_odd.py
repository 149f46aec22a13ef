"""Objects that are not apps, or whose protocol can not be told, for the command-line tests."""

from __future__ import annotations

from typing import Any

not_callable = 42


class SomeClass:
    """A class: calling it builds an instance, so its protocol can not be told."""

    def __init__(self, *args: Any) -> None:
        self.args = args


def takes_anything(*args: Any) -> None:
    """A callable taking any arguments: WSGI or ASGI, nobody can tell."""


def takes_one(request: object) -> None:
    """A callable that is neither a WSGI nor an ASGI app."""


def sync_three(scope: object, receive: object, send: object) -> None:
    """Three arguments but not ``async def``: maybe ASGI returning an awaitable."""


def failing_factory() -> None:
    """A factory that fails, as one missing its configuration does."""
    raise LookupError("no configuration named 'production'")
