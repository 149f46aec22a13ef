"""Cancelling an ASGI app's task a grace after its client is gone (AsgiToWsgi).

:class:`adapter._asgi_responder.AsgiToWsgiResponder` tells the app that the client is
gone (``http.disconnect``, ``send()`` raising :class:`OSError`); an app that looks at
neither, say one stuck in ``await anyio.sleep_forever()``, is cancelled once
:data:`DISCONNECT_GRACE` has passed, so its task ends and nothing stays pending.

On trio the app runs in an :class:`anyio.CancelScope` whose deadline is moved.  On
asyncio an anyio cancel scope costs more than the rest of a small request (entering it
registers the new task with anyio, ~40k instructions per request, measured), for a
path nearly no request takes; there the task is cancelled natively (``Task.cancel``),
again every :data:`REDELIVERY` seconds while it carries on, as anyio's level-triggered
cancellation would.  The one difference: a native cancellation also interrupts
sections the app shields with ``anyio.CancelScope(shield=True)``.
"""

from __future__ import annotations

import asyncio
import sys

import anyio

from adapter._types import ASGIApp, Receive, Scope, Send

__all__ = ["DISCONNECT_GRACE", "REDELIVERY", "GraceCancel"]

DISCONNECT_GRACE = 1.0
"""Seconds an app gets to end by itself once the client is gone, before cancellation."""

REDELIVERY = 0.05
"""Seconds between native cancellations of an asyncio task that swallowed the last."""


class GraceCancel:
    """Runs one app call so that it can be cancelled a grace after the client goes.

    Loop thread only: :meth:`run` in the app's task, :meth:`client_gone` and
    :meth:`task_ended` from callbacks or that task.

    :param backend: the loop's anyio backend, ``"asyncio"`` or ``"trio"``.
    """

    __slots__ = ("_backend", "_cancels", "_gone_early", "_scope", "_task", "_timer")

    def __init__(self, backend: str) -> None:
        self._backend = backend
        self._scope: anyio.CancelScope | None = None  # trio
        self._task: asyncio.Task[object] | None = None  # asyncio
        self._timer: asyncio.TimerHandle | None = None
        self._cancels = 0
        # The client went before the task started (the request thread interrupted):
        # the grace is armed as the app starts.
        self._gone_early: float | None = None

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Await ``app(scope, receive, send)``; our own cancellation ends it quietly.

        :param app: the ASGI app, and its arguments after it.
        :raises BaseException: whatever the app raises, but our own cancellation.
        """
        if self._backend != "asyncio":
            with anyio.CancelScope() as self._scope:
                if self._gone_early is not None:
                    self.client_gone(self._gone_early)
                await app(scope, receive, send)
            return
        self._task = asyncio.current_task()
        if self._gone_early is not None:
            self.client_gone(self._gone_early)
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if not self._cancels or not self._only_ours():
                raise

    def _only_ours(self) -> bool:
        # Take back our cancellation requests; what is left came from someone else
        # (the loop shutting down), and must go on.  Python 3.10 does not count them.
        task = self._task
        if sys.version_info >= (3, 11) and task is not None:
            for _ in range(self._cancels):
                task.uncancel()
            self._cancels = 0
            return task.cancelling() == 0
        return True

    def client_gone(self, clock: float) -> None:
        """Cancel the app's task once the grace has passed, unless it ends before.

        :param clock: the loop's clock now.
        """
        if self._scope is not None:
            self._scope.deadline = min(self._scope.deadline, clock + DISCONNECT_GRACE)
        elif self._task is not None:
            if self._timer is None:
                self._timer = self._task.get_loop().call_later(DISCONNECT_GRACE, self._cancel)
        else:
            self._gone_early = clock

    def _cancel(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        if task.cancel():
            self._cancels += 1
        # Again a little later, should the app catch CancelledError and carry on.
        self._timer = task.get_loop().call_later(REDELIVERY, self._cancel)

    def task_ended(self) -> None:
        """Forget the task and stop any pending cancellation; call as the task ends."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._task = None
