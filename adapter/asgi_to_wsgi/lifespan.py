"""The ASGI lifespan protocol for AsgiToWsgi: startup once per process, shutdown at close.

https://asgi.readthedocs.io/en/latest/specs/lifespan.html.  The lifespan task runs on
the shared loop for as long as the app lives: startup before the first request,
shutdown on :meth:`Lifespan.shutdown` (``AsgiToWsgi.close()`` and interpreter exit).
Startup is keyed by process id, so a forked child (gunicorn ``--preload``) runs its
own startup on its own loop instead of trusting resources made on the parent's.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import threading
import weakref
from typing import Any

import anyio

from adapter._runtime.shared_loop import SharedLoop
from adapter._types import ASGIApp, Message
from adapter.exceptions import LifespanFailed, ProtocolError

__all__ = ["Lifespan"]

logger = logging.getLogger("adapter")

SHUTDOWN_TIMEOUT = 30.0

_instances: weakref.WeakSet[Lifespan] = weakref.WeakSet()


class _Unsupported(Exception):
    """The app raised or returned before its first lifespan message: no support."""


class Lifespan:
    """Runs an app's lifespan protocol on a shared loop; see the module docstring.

    :param app: the ASGI application.
    :param mode: ``"auto"``, ``"on"`` or ``"off"``.
    """

    def __init__(self, app: ASGIApp, mode: str) -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {mode!r}")
        self._app = app
        self._mode = mode
        self.state: dict[str, Any] = {}
        self._started_on: SharedLoop | None = None
        self._failure: BaseException | None = None
        self._running = False
        self._loop: SharedLoop | None = None
        self._shutdown_requested: anyio.Event | None = None
        self._finished: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lock = threading.Lock()
        _instances.add(self)

    def ensure_started(self, loop: SharedLoop) -> None:
        """Run startup on ``loop`` unless it already ran in this process.

        :param loop: the shared loop requests run on.
        :raises LifespanFailed: if startup failed (``lifespan.startup.failed``, or any
            error in ``"on"`` mode); every later request raises it too.
        """
        # `loop` is another object in a forked child (or after a loop thread died): its
        # identity says whether startup ran on it, with no system call per request.
        if self._started_on is not loop:
            with self._lock:
                if self._started_on is not loop:
                    self._startup(loop)
                    self._started_on = loop
        if self._failure is not None:
            raise LifespanFailed(f"ASGI lifespan startup failed: {self._failure}") from (
                self._failure
            )

    def _startup(self, loop: SharedLoop) -> None:
        self.state = {}
        self._failure = None
        self._running = False
        if self._mode == "off":
            return
        self._loop = loop
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._finished = concurrent.futures.Future()
        loop.spawn_soon(self._run, started, self._finished)
        try:
            started.result()
        except _Unsupported as exc:
            if self._mode == "on":
                self._failure = exc.__cause__ or exc
                return
            logger.info("the ASGI app does not support lifespan; carrying on without it")
        except Exception as exc:
            self._failure = exc
        else:
            self._running = True

    async def _run(
        self,
        started: concurrent.futures.Future[None],
        finished: concurrent.futures.Future[None],
    ) -> None:
        shutdown_requested = self._shutdown_requested = anyio.Event()
        startup_sent = False
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state

        async def receive() -> Message:
            nonlocal startup_sent
            if not startup_sent:
                startup_sent = True
                return {"type": "lifespan.startup"}
            await shutdown_requested.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message: Message) -> None:
            kind = message.get("type")
            reason = message.get("message", "")
            if kind == "lifespan.startup.complete" and not started.done():
                started.set_result(None)
            elif kind == "lifespan.startup.failed" and not started.done():
                started.set_exception(LifespanFailed(reason or "lifespan.startup.failed"))
            elif kind == "lifespan.shutdown.complete" and not finished.done():
                finished.set_result(None)
            elif kind == "lifespan.shutdown.failed" and not finished.done():
                finished.set_exception(LifespanFailed(reason or "lifespan.shutdown.failed"))
            else:
                raise ProtocolError(f"unexpected lifespan message {kind!r}")

        try:
            await self._app(scope, receive, send)
        except Exception as exc:
            if not started.done():
                # The spec: an app that does not support lifespan raises on its scope.
                unsupported = _Unsupported(f"the app raised {exc!r} on the lifespan scope")
                unsupported.__cause__ = exc
                started.set_exception(unsupported)
            elif not finished.done():
                finished.set_exception(exc)
            else:
                logger.exception("the ASGI app raised after lifespan shutdown completed")
        finally:
            if not started.done():
                started.set_exception(_Unsupported("the app returned from the lifespan scope"))
            if not finished.done():
                finished.set_result(None)

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Run lifespan shutdown if startup ran in this process; at most once.

        :param timeout: seconds to wait for ``lifespan.shutdown.complete``.
        :raises LifespanFailed: if shutdown failed or timed out in ``"on"`` mode (in
            ``"auto"`` mode the failure is logged).
        :raises RuntimeError: if called on the loop thread itself (it would deadlock).
        """
        with self._lock:
            loop, requested = self._loop, self._shutdown_requested
            # Not in a forked child (the parent's loop is not alive there), nor on a
            # loop thread that has ended.
            if not self._running or loop is None or not loop.alive:
                return
            assert requested is not None
            if loop.in_loop_thread():
                raise RuntimeError("AsgiToWsgi.close() must not be called on its event loop")
            self._running = False
            loop.call_soon_threadsafe(requested.set)
            try:
                self._finished.result(timeout)
            except Exception as exc:
                if self._mode == "on":
                    raise LifespanFailed(f"ASGI lifespan shutdown failed: {exc!r}") from exc
                logger.error("ASGI lifespan shutdown failed", exc_info=exc)


def _reset_locks_in_child() -> None:
    # A lock held by another thread at fork() stays held forever in the child.
    for lifespan in list(_instances):
        lifespan._lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_locks_in_child)


@atexit.register
def _shut_down_at_exit() -> None:
    # The loop thread is a daemon, still running while atexit handlers run.  Lifespans
    # are tracked rather than AsgiToWsgi instances: an instance may be gone while
    # its app's lifespan task still runs on the loop.
    for lifespan in list(_instances):
        try:
            lifespan.shutdown()
        except Exception:  # one broken app must not keep the others from shutting down
            logger.exception("lifespan shutdown at interpreter exit failed")
