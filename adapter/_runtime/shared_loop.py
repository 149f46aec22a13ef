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
- :meth:`SharedLoop.spawn_soon` starts a task on the loop from another thread; the task
  must handle its own errors (anything escaping is logged, never raised elsewhere).
- :meth:`SharedLoop.clock` is the loop's clock for callbacks running on it.
- :meth:`SharedLoop.in_loop_thread` tells whether the caller runs on the loop thread.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal

from adapter._runtime.fork import forget_in_child
from adapter._runtime.handle import LoopHandle
from adapter._runtime.loops import current_loop

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
        self._handle: LoopHandle | None = None
        self._stop_scope: anyio.CancelScope | None = None
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
        # The thread's ident, known once it started (Thread.ident is a property).
        self._ident: int | None = None

    def _start(self) -> None:
        self.alive = True
        self.thread.start()
        self._ident = self.thread.ident
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
        async with BlockingPortal() as portal:
            self.portal = portal
            self._handle = current_loop()
            undo = self._handle.prepare_spawning()
            try:
                with anyio.CancelScope() as self._stop_scope:
                    self._ready.set()
                    await anyio.sleep_forever()
            finally:
                undo()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop's thread (its tasks are cancelled); from another thread.

        Nothing in adapter stops a shared loop: it lives as long as the process.  Tests
        use this to see that the next request starts a new one.
        """
        if self.portal is not None and self._stop_scope is not None and self.alive:
            self.portal.call(self._stop_scope.cancel)
        self.thread.join(timeout)

    def in_loop_thread(self) -> bool:
        """True when called on this loop's own thread."""
        return threading.get_ident() == self._ident

    def clock(self) -> float:
        """The loop's clock (what ``anyio.current_time()`` says); on the loop thread only.

        Plain callbacks run outside any task, where anyio can not tell the backend.
        """
        assert self._handle is not None
        return self._handle.time()

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread soon; callable from any thread.

        The callback should not raise: what it raises is only logged.

        :param callback: a plain (not async) callable.
        :param args: its positional arguments.
        """
        assert self._handle is not None
        self._handle.call_soon_threadsafe(callback, *args)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback(*args)`` at the loop's next turn; on the loop thread only.

        :param callback: a plain callable that must not raise.
        :param args: its positional arguments.
        """
        assert self._handle is not None
        self._handle.call_soon(callback, *args)

    def spawn_soon(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Start ``async_fn(*args)`` as a task on the loop; from any thread but the loop's.

        :param async_fn: the coroutine function to run; it should handle its own
            errors (an escaping exception is logged to the ``adapter`` logger).
        :param args: its positional arguments.
        """
        assert self._handle is not None
        self._handle.spawn_soon(async_fn, *args)


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


@forget_in_child
def _forget_parent_loops() -> None:
    # In a forked child only the forking thread survives: the parent's loop threads
    # are gone and the lock may have been held by one of them.  Start afresh.
    global _loops_lock
    _loops_lock = threading.Lock()
    for shared in _loops.values():
        shared.alive = False  # for the AsgiToWsgi instances that still hold it
    _loops.clear()
