"""The process-wide background event loop that AsgiToWsgi runs ASGI apps on.

One daemon thread per process and per backend (and backend options) runs an event loop
through :func:`anyio.run`.  It is started lazily by the first caller, not at import or
when an :class:`adapter.AsgiToWsgi` is built, and every caller shares it: twenty
instances add at most one thread.  After ``fork()`` the child forgets the parent's
loops (``os.register_at_fork``) and starts its own on first use; the parent's thread
does not exist in the child, so nothing of it is touched there.

Interface (for ``adapter.asgi_to_wsgi.app``, ``adapter.sync`` and tests):

- :func:`get_loop` ``(backend="asyncio", backend_options=None) -> SharedLoop`` starts
  the loop if needed and returns its handle; thread-safe.  ``backend`` is an anyio
  backend name; ``backend_options`` go to :func:`anyio.run` as they are, so
  ``{"use_uvloop": True}`` selects uvloop on asyncio (plain asyncio, with a warning
  in the ``adapter`` logger, when uvloop is not installed).
- :attr:`SharedLoop.portal` is an :class:`anyio.from_thread.BlockingPortal` running on
  that loop, for ``portal.call(...)`` and ``portal.start_task_soon(...)`` from any
  thread but the loop's own.
- :meth:`SharedLoop.call_soon_threadsafe` runs a plain callback on the loop thread: the
  cheapest hop, one per request start and one per wanted response chunk.
- :meth:`SharedLoop.call_soon` does the same from the loop thread itself.
- :meth:`SharedLoop.spawn_soon` starts a task on the loop from another thread (through
  :mod:`adapter._runtime.tasks` on asyncio); the task must handle its own errors (anything
  escaping is logged, never raised elsewhere).
- :meth:`SharedLoop.clock` is the loop's clock for callbacks running on it.
- :meth:`SharedLoop.in_loop_thread` tells whether the caller runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal

from adapter._runtime.tasks import spawn_threadsafe

__all__ = ["SharedLoop", "get_loop"]

logger = logging.getLogger("adapter")

_START_TIMEOUT = 30.0

LoopKey = tuple[str, tuple[tuple[str, Any], ...]]

_loops: dict[LoopKey, SharedLoop] = {}
_loops_lock = threading.Lock()


class SharedLoop:
    """A running event loop in its own daemon thread; see the module docstring."""

    def __init__(self, backend: str, backend_options: Mapping[str, Any]) -> None:
        self.backend = backend
        self._backend_options = dict(backend_options)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._call_soon: Callable[..., object] | None = None
        self._task_group: TaskGroup | None = None
        self._asyncio_loop: asyncio.AbstractEventLoop | None = None
        self.portal: BlockingPortal | None = None
        # True from the thread's start until it ends, or until fork() leaves a child
        # without it: callers check it per request, where Thread.is_alive() and
        # os.getpid() would cost a call into the thread machinery and a system call.
        self.alive = False
        # "adapter-loop-asyncio", "adapter-loop-trio", "adapter-loop-asyncio-use_uvloop".
        name = "-".join(
            ["adapter-loop", backend, *sorted(k for k, v in backend_options.items() if v)]
        )
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _start(self) -> None:
        self.alive = True
        self.thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"the adapter {self.backend} loop did not start in time")
        if self._failure is not None:
            raise RuntimeError(
                f"the adapter {self.backend} loop failed to start: {self._failure!r}"
            ) from self._failure

    def _run(self) -> None:
        try:
            anyio.run(self._main, backend=self.backend, backend_options=self._backend_options)
        except BaseException as exc:
            self._failure = exc
            logger.exception("the adapter %s event loop stopped", self.backend)
        finally:
            self.alive = False
            self._ready.set()

    async def _main(self) -> None:
        async with BlockingPortal() as portal, anyio.create_task_group() as task_group:
            self.portal = portal
            self._task_group = task_group
            if self.backend == "trio":
                import trio

                run_sync_soon = trio.lowlevel.current_trio_token().run_sync_soon

                def call_soon_logged(callback: Callable[..., object], *args: Any) -> None:
                    # trio turns an exception escaping a run_sync_soon callback into
                    # TrioInternalError, which would stop the loop of every request.
                    run_sync_soon(_run_logged, callback, args)

                self._call_soon = call_soon_logged
            else:
                self._asyncio_loop = asyncio.get_running_loop()
                self._call_soon = self._asyncio_loop.call_soon_threadsafe
            self._ready.set()
            await anyio.sleep_forever()

    def in_loop_thread(self) -> bool:
        """True when called on this loop's own thread."""
        return threading.get_ident() == self.thread.ident

    def clock(self) -> float:
        """The loop's clock (what ``anyio.current_time()`` says); on the loop thread only.

        Plain callbacks run outside any task, where anyio can not tell the backend.
        """
        if self._asyncio_loop is not None:
            return self._asyncio_loop.time()
        import trio

        return trio.current_time()

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread soon; callable from any thread.

        The callback must not raise (trio would stop its loop): report errors through
        futures or events instead.

        :param callback: a plain (not async) callable.
        :param args: its positional arguments.
        """
        assert self._call_soon is not None
        self._call_soon(callback, *args)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` at the loop's next turn; on the loop thread only.

        :param callback: a plain callable that must not raise.
        :param args: its positional arguments.
        """
        if self._asyncio_loop is not None:
            self._asyncio_loop.call_soon(callback, *args)  # no self-pipe write in-thread
        else:
            self.call_soon_threadsafe(callback, *args)

    def spawn_soon(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Start ``async_fn(*args)`` as a task on the loop; from any thread but the loop's.

        :param async_fn: the coroutine function to run; it should handle its own
            errors (an escaping exception is logged to the ``adapter`` logger).
        :param args: its positional arguments.
        """
        if self._asyncio_loop is not None:
            # Straight to asyncio: the task-group bookkeeping costs more than the
            # request it would track, and _guarded already keeps errors contained.
            spawn_threadsafe(self._asyncio_loop, self._guarded, async_fn, args)
        else:
            self.call_soon_threadsafe(self._start_trio_task, async_fn, args)

    def _start_trio_task(
        self, async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...]
    ) -> None:
        assert self._task_group is not None
        self._task_group.start_soon(self._guarded, async_fn, args)

    @staticmethod
    async def _guarded(async_fn: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> None:
        # One request's failure must never cancel its siblings in the task group.
        try:
            await async_fn(*args)
        except Exception:
            logger.exception("a task on the adapter event loop failed")


def _run_logged(callback: Callable[..., object], args: tuple[Any, ...]) -> None:
    try:
        callback(*args)
    except Exception:
        logger.exception("a callback on the adapter event loop failed")


def _uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def get_loop(
    backend: str = "asyncio", backend_options: Mapping[str, Any] | None = None
) -> SharedLoop:
    """The shared loop for ``backend``, started in a daemon thread on first use.

    :param backend: an anyio backend name, ``"asyncio"`` or ``"trio"``.
    :param backend_options: passed to :func:`anyio.run`; ``{"use_uvloop": True}``
        asks for uvloop on asyncio.
    :raises ValueError: for an unknown backend.
    :raises RuntimeError: if the loop thread fails to start.
    """
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"unknown backend {backend!r}: use 'asyncio' or 'trio'")
    options = dict(backend_options or {})
    if options.get("use_uvloop") and not _uvloop_available():
        logger.warning("uvloop was asked for but is not installed; using plain asyncio")
        options.pop("use_uvloop")
    key: LoopKey = (backend, tuple(sorted(options.items())))
    shared = _loops.get(key)
    if shared is not None and shared.alive:
        return shared
    with _loops_lock:
        shared = _loops.get(key)
        if shared is not None and not shared.alive:
            logger.error("the adapter %s loop thread had stopped; starting a new one", backend)
            shared = None
        if shared is None:
            shared = SharedLoop(backend, options)
            shared._start()
            _loops[key] = shared
        return shared


def _forget_parent_loops() -> None:
    # In a forked child only the forking thread survives: the parent's loop threads
    # are gone and the lock may have been held by one of them.  Start afresh.
    global _loops_lock
    _loops_lock = threading.Lock()
    for shared in _loops.values():
        shared.alive = False  # for the AsgiToWsgi instances that still hold it
    _loops.clear()


os.register_at_fork(after_in_child=_forget_parent_loops)
