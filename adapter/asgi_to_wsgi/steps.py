"""Awaiting a coroutine while hearing each time its task is about to suspend.

:class:`adapter.asgi_to_wsgi.responder.AsgiToWsgiResponder` hands the last body message to
the request thread once the app's task step is over: at the task's end, usually, or,
when the app carries on after its response (Starlette's background tasks), as soon as
the task suspends.  Neither asyncio nor trio tells a task's code that its step ends, and
a callback scheduled for the loop's next turn costs a whole pass of the loop on every
request; :func:`stepped` instead awaits the app's coroutine by hand, as ``await`` does
(PEP 380's delegation: every value, exception and close passed through unchanged), and
calls ``before_suspending()`` each time the coroutine yields to its event loop.

Each task has its own; a backend's traps (asyncio futures, trio's yields) go through as
they are, so this works on both.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["stepped"]

T = TypeVar("T")


@types.coroutine
def stepped(
    coro: Coroutine[Any, Any, T], before_suspending: Callable[[], object]
) -> Generator[Any, Any, T]:
    """Await ``coro``; call ``before_suspending()`` whenever it yields to the loop.

    :param coro: a coroutine not started yet; it is closed if this is.
    :param before_suspending: runs in the task, right before each suspension; must not
        raise.
    :returns: what ``coro`` returns.
    :raises BaseException: what ``coro`` raises.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                yielded = coro.send(value)
            else:
                thrown, error = error, None
                yielded = coro.throw(thrown)
        except StopIteration as stop:
            result: T = stop.value
            return result
        before_suspending()
        try:
            value = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancellation, or anything thrown into the task
            value, error = None, exc
