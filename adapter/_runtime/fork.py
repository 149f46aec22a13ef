"""What a forked child forgets of its parent: adapter's one ``os.register_at_fork`` hook.

After ``fork()`` only the forking thread exists in the child (gunicorn ``--preload``,
uWSGI, Passenger): the parent's loop threads, worker threads and the tasks on those loops
are gone, and a lock another thread held stays held forever.  Each module that keeps such
state registers a function here (:func:`forget_in_child`) that drops it; the child then
builds anew on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["forget_in_child"]

_forgetters: list[Callable[[], None]] = []


def forget_in_child(forget: Callable[[], None]) -> Callable[[], None]:
    """Call ``forget()`` in every child of a ``fork()``; usable as a decorator.

    :param forget: drops what belonged to the parent's threads; must not raise.
    """
    _forgetters.append(forget)
    return forget


def _in_child() -> None:
    for forget in _forgetters:
        forget()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork()
    os.register_at_fork(after_in_child=_in_child)
