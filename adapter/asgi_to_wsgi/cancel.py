"""Cancelling an ASGI app's task a grace after its client is gone (AsgiToWsgi).

:class:`adapter.asgi_to_wsgi.responder.AsgiToWsgiResponder` tells the app that the client is
gone (``http.disconnect``, ``send()`` raising :class:`OSError`); an app that looks at
neither, say one stuck in ``await anyio.sleep_forever()``, is cancelled once
:data:`DISCONNECT_GRACE` has passed, so its task ends and nothing stays pending.

The app runs in an anyio cancel scope whose deadline is moved, on asyncio and trio
alike, so the cancellation is anyio's: level-triggered (an app that swallows it meets
it again at its next checkpoint) and stopped by the app's own shielded sections
(``anyio.CancelScope(shield=True)``), which finish their clean-up first.  A native
``Task.cancel()`` would cost less but would cut such clean-up short.
"""

from __future__ import annotations

import anyio

from adapter._types import ASGIApp, Receive, Scope, Send

__all__ = ["DISCONNECT_GRACE", "GraceCancel"]

DISCONNECT_GRACE = 1.0
"""Seconds an app gets to end by itself once the client is gone, before cancellation."""


class GraceCancel:
    """Runs one app call so that it can be cancelled a grace after the client goes.

    Loop thread only: :meth:`run` in the app's task, :meth:`client_gone` from callbacks
    or that task.

    """

    __slots__ = ("_gone_early", "_scope")

    def __init__(self) -> None:
        self._scope: anyio.CancelScope | None = None
        # The client went before the task started (the request thread interrupted):
        # the grace is armed as the app starts.
        self._gone_early: float | None = None

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Await ``app(scope, receive, send)``; our own cancellation ends it quietly.

        :param app: the ASGI app, and its arguments after it.
        :raises BaseException: whatever the app raises, but our own cancellation.
        """
        with anyio.CancelScope() as self._scope:
            if self._gone_early is not None:
                self.client_gone(self._gone_early)
            await app(scope, receive, send)

    def client_gone(self, clock: float) -> None:
        """Cancel the app's task once the grace has passed, unless it ends before.

        :param clock: the loop's clock now.
        """
        if self._scope is not None:
            self._scope.deadline = min(self._scope.deadline, clock + DISCONNECT_GRACE)
        else:
            self._gone_early = clock
