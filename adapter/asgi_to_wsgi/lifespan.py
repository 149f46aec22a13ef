"""The ASGI lifespan protocol for AsgiToWsgi: startup once per process, shutdown at close.

https://asgi.readthedocs.io/en/latest/specs/lifespan.html.  The lifespan task runs on
the shared loop for as long as the app lives: startup before the first request,
shutdown on :meth:`Lifespan.shutdown` (``AsgiToWsgi.close()`` and interpreter exit).
Startup is keyed by process id, so a forked child (gunicorn ``--preload``) runs its
own startup on its own loop instead of trusting resources made on the parent's.

An app that does not support lifespan often says so only by behaving as if the scope
were HTTP: it calls ``receive()`` again before it answered ``lifespan.startup`` (waiting
for ``http.request`` or ``http.disconnect``), or sends a message that is not a lifespan
one.  Either is taken as "not supported" at once, as raising is, and the lifespan task
is cancelled: without that, the first request would wait forever for a startup that
never comes.  A startup that answers nothing within the timeout is cancelled too.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import threading
import weakref
from typing import Any, NoReturn

import anyio

from adapter._runtime.fork import forget_in_child
from adapter._runtime.shared_loop import SharedLoop
from adapter._types import ASGIApp, Message
from adapter.exceptions import LifespanFailed, ProtocolError

__all__ = ["Lifespan"]

logger = logging.getLogger("adapter")

LIFESPAN_TIMEOUT = 60.0
"""Seconds startup, then shutdown, may take by default (hypercorn's default too)."""

_instances: weakref.WeakSet[Lifespan] = weakref.WeakSet()


class _Unsupported(Exception):
    """The app raised or returned before its first lifespan message: no support."""


class Lifespan:
    """Runs an app's lifespan protocol on a shared loop; see the module docstring.

    :param app: the ASGI application.
    :param mode: ``"auto"``, ``"on"`` or ``"off"``.
    :param timeout: seconds to wait for startup to complete, and for shutdown.
    :raises ValueError: for an unknown ``mode`` or a ``timeout`` that is not positive.
    """

    def __init__(self, app: ASGIApp, mode: str, timeout: float = LIFESPAN_TIMEOUT) -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {mode!r}")
        if not timeout > 0:
            raise ValueError(
                f"lifespan_timeout must be a positive number of seconds, not {timeout!r}"
            )
        self._app = app
        self._mode = mode
        self._timeout = timeout
        # The lifespan task's cancel scope (loop thread only); cancelled once we give up
        # on the task, which may happen before it has started.
        self._task_scope: anyio.CancelScope | None = None
        self._give_up = False
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
        self._task_scope = None
        self._give_up = False
        loop.spawn_soon(self._run, started, self._finished)
        try:
            started.result(self._timeout)
        except concurrent.futures.TimeoutError:
            loop.call_soon_threadsafe(self._cancel_task)
            if self._mode == "on":
                self._failure = LifespanFailed(
                    f"lifespan startup did not complete within lifespan_timeout "
                    f"({self._timeout} s); raise lifespan_timeout if startup is merely slow"
                )
                return
            logger.warning(
                "ASGI lifespan startup did not complete within lifespan_timeout (%s s); "
                "it was cancelled, and requests are served without lifespan",
                self._timeout,
            )
        except _Unsupported as exc:
            if self._mode == "on":
                self._failure = exc.__cause__ or exc
                return
            logger.info("the ASGI app does not support lifespan (%s); carrying on without it", exc)
        except Exception as exc:
            self._failure = exc
        else:
            self._running = True

    def _cancel_task(self) -> None:
        # On the loop thread: we no longer wait for the lifespan task; end it.
        self._give_up = True
        if self._task_scope is not None:
            self._task_scope.cancel()

    async def _run(
        self,
        started: concurrent.futures.Future[None],
        finished: concurrent.futures.Future[None],
    ) -> None:
        with anyio.CancelScope() as self._task_scope:
            if self._give_up:  # the timeout passed before the task started
                self._task_scope.cancel()
            await self._run_app(started, finished, self._task_scope)

    async def _run_app(
        self,
        started: concurrent.futures.Future[None],
        finished: concurrent.futures.Future[None],
        task_scope: anyio.CancelScope,
    ) -> None:
        shutdown_requested = self._shutdown_requested = anyio.Event()
        startup_sent = False
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state

        async def not_supported(reason: str) -> NoReturn:
            # Startup can not complete: say so, and end the app's lifespan call (all of
            # its tasks) rather than leave it waiting for an HTTP message forever.
            started.set_exception(_Unsupported(reason))
            task_scope.cancel()
            await anyio.sleep_forever()
            raise AssertionError("unreachable: the lifespan task was cancelled")

        async def receive() -> Message:
            nonlocal startup_sent
            if not startup_sent:
                startup_sent = True
                return {"type": "lifespan.startup"}
            if not started.done():
                await not_supported("it called receive() again before answering 'lifespan.startup'")
            await shutdown_requested.wait()
            return {"type": "lifespan.shutdown"}

        async def send(message: Message) -> None:
            kind = message.get("type")
            reason = message.get("message", "")
            if not started.done() and not str(kind).startswith("lifespan."):
                await not_supported(f"it sent {kind!r} in the lifespan scope")
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

    def shutdown(self, timeout: float | None = None) -> None:
        """Run lifespan shutdown if startup ran in this process; at most once.

        :param timeout: seconds to wait for ``lifespan.shutdown.complete`` (default:
            the ``timeout`` the instance was made with); past it, the task is cancelled.
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
            timeout = self._timeout if timeout is None else timeout
            try:
                try:
                    self._finished.result(timeout)
                except concurrent.futures.TimeoutError:
                    loop.call_soon_threadsafe(self._cancel_task)
                    raise LifespanFailed(
                        f"lifespan shutdown did not complete within {timeout} s; it was cancelled"
                    ) from None
            except Exception as exc:
                if self._mode == "on":
                    raise LifespanFailed(f"ASGI lifespan shutdown failed: {exc!r}") from exc
                logger.error("ASGI lifespan shutdown failed", exc_info=exc)


@forget_in_child
def _reset_locks_in_child() -> None:
    # A lock held by another thread at fork() stays held forever in the child.
    for lifespan in list(_instances):
        lifespan._lock = threading.Lock()


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
