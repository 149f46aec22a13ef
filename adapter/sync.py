"""``sync_to_async`` and ``async_to_sync``: asgiref's helpers, on asyncio and trio.

Names, defaults and semantics are asgiref's, so moving over is a change of import:

- ``sync_to_async(func)`` runs ``func`` in a thread, never on the loop.  With
  ``thread_sensitive=True`` (the default) that thread is the outer sync thread when
  there is one (the thread blocked in ``async_to_sync``, or the WSGI request thread of
  :class:`adapter.AsgiToWsgi`), else one process-wide shared thread.  With
  ``thread_sensitive=False`` calls run in parallel in worker threads, as many at once
  as the capacity limiter allows.
- ``async_to_sync(func)`` runs a coroutine function from sync code: on the outer event
  loop when called from a thread working for one (a ``sync_to_async`` call, a WSGI
  app thread of :class:`adapter.WsgiToAsgi`, an anyio or trio worker thread),
  else in a fresh event loop.  Meanwhile the calling thread serves its
  :class:`~adapter._runtime.mailbox.ThreadMailbox`, so thread-sensitive calls made by the
  coroutine come back to it.
- Context variables flow into the called function and changes flow back out, in both
  directions; exceptions keep their tracebacks.
- A task awaiting ``sync_to_async`` is cancelled at once; the call runs on in its
  thread (a :class:`~adapter._runtime.calls.DetachableCall`).  If that thread is waiting
  in ``async_to_sync`` for a coroutine on the same loop, the coroutine is cancelled
  too and awaited first, as in asgiref 3.13: if it carries on instead of ending by the
  cancellation, the ``await`` returns the call's result (``LoopHandle.wait``).

How the threads and loops are driven lives in ``adapter._runtime.threads``,
``adapter._runtime.loops`` and ``adapter._runtime.calls``; this module only decides which
thread or loop a call goes to.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import inspect
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

import anyio

from adapter._runtime.calls import DetachableCall
from adapter._runtime.fresh_loop import run_in_fresh_loop
from adapter._runtime.loops import (
    current_loop,
    loop_running_here,
    outer_loop_here,
    start_on_outer_loop,
)
from adapter._runtime.mailbox import ThreadMailbox, current_mailbox
from adapter._runtime.threads import run_limited, serving_mailbox, shared_mailbox

__all__ = ["async_to_sync", "sync_to_async"]

P = ParamSpec("P")
R = TypeVar("R")

_MISSING = object()
_OWN_THREAD_RUNS_THE_LOOP = (
    "this thread-sensitive call belongs to the sync thread that is running this event "
    "loop itself, so it would wait forever; start the loop with async_to_sync() "
    "instead of asyncio.run() or trio.run() in thread-sensitive code"
)


@overload
def sync_to_async(
    func: Callable[P, R],
    *,
    thread_sensitive: bool = True,
    limiter: anyio.CapacityLimiter | None = None,
    executor: concurrent.futures.Executor | None = None,
    context: contextvars.Context | None = None,
) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def sync_to_async(
    func: None = None,
    *,
    thread_sensitive: bool = True,
    limiter: anyio.CapacityLimiter | None = None,
    executor: concurrent.futures.Executor | None = None,
    context: contextvars.Context | None = None,
) -> Callable[[Callable[P, R]], Callable[P, Coroutine[Any, Any, R]]]: ...


def sync_to_async(
    func: Callable[P, R] | None = None,
    *,
    thread_sensitive: bool = True,
    limiter: anyio.CapacityLimiter | None = None,
    executor: concurrent.futures.Executor | None = None,
    context: contextvars.Context | None = None,
) -> (
    Callable[P, Coroutine[Any, Any, R]]
    | Callable[[Callable[P, R]], Callable[P, Coroutine[Any, Any, R]]]
):
    """Turn a sync function into a coroutine function that runs it in a thread.

    Use it bare (``@sync_to_async``), with arguments
    (``@sync_to_async(thread_sensitive=False)``), on functions and on methods.  The
    result is a real coroutine function (``inspect.iscoroutinefunction`` is true) with
    ``func``'s name and docstring (and ``__self__``, for a bound method).  Awaiting it
    works on asyncio and on trio.

    Cancelling the awaiting task (a timeout) ends the ``await`` at once, as in asgiref.
    A call not yet started then never runs; one already running goes on in its thread,
    which nothing can stop, and what it returns, raises or sets in its context is
    dropped.  Until it ends it keeps its thread, and its ``limiter`` token.

    :param func: the sync callable; omitted, a decorator is returned.
    :param thread_sensitive: run in the outer sync thread if there is one, else in one
        process-wide thread (True, the default); or in parallel worker threads (False).
    :param limiter: for ``thread_sensitive=False``: the capacity limiter bounding how
        many such calls run at once; anyio's default thread limiter when omitted.
    :param executor: for ``thread_sensitive=False``, as in asgiref: run in this
        executor instead of our workers (the limiter is then not used).
    :param context: as in asgiref: run ``func`` in this context instead of a copy of
        the caller's; changes are still copied back to the caller.
    :raises TypeError: if ``func`` is a coroutine function, or ``limiter`` or
        ``executor`` is given with ``thread_sensitive=True``, or both are given.
    :raises RuntimeError: (when awaited) if no asyncio or trio loop runs; if the outer
        sync thread has stopped waiting (``adapter._runtime.mailbox.MailboxClosed``); or if the
        outer sync thread is the one running this loop (it could never serve the call).
    """

    def decorate(sync_func: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
        return _sync_to_async(sync_func, thread_sensitive, limiter, executor, context)

    return decorate if func is None else decorate(func)


def _sync_to_async(
    func: Callable[P, R],
    thread_sensitive: bool,
    limiter: anyio.CapacityLimiter | None,
    executor: concurrent.futures.Executor | None,
    fixed_context: contextvars.Context | None,
) -> Callable[P, Coroutine[Any, Any, R]]:
    if not callable(func) or _is_async(func):
        raise TypeError("sync_to_async can only be applied to sync functions.")
    if thread_sensitive and (limiter is not None or executor is not None):
        raise TypeError(
            "limiter and executor apply to thread_sensitive=False calls only; "
            "pass thread_sensitive=False with them"
        )
    if limiter is not None and executor is not None:
        raise TypeError("pass a limiter or an executor, not both")

    @functools.wraps(func)
    async def run_in_thread(*args: P.args, **kwargs: P.kwargs) -> R:
        loop = current_loop()
        context = _context_for_a_thread() if fixed_context is None else fixed_context
        call = DetachableCall(loop, context, func, args, kwargs)
        try:
            if thread_sensitive:
                # The outer sync thread if there is one (asgiref semantics), else the
                # shared thread.  A closed mailbox raises MailboxClosed here.
                mailbox = current_mailbox.get()
                if mailbox is None:
                    mailbox = shared_mailbox()
                if mailbox.is_owned_by_current_thread():
                    raise RuntimeError(_OWN_THREAD_RUNS_THE_LOOP)
                mailbox.post(call.run)
                await loop.wait(call)
            elif executor is not None:
                executor.submit(call.run)
                await loop.wait(call)
            else:
                await run_limited(loop, call, limiter)
        finally:
            if call.finished:
                _restore_context(context)
        value: R = call.outcome()
        return value

    _keep_self(run_in_thread, func)
    return run_in_thread


@overload
def async_to_sync(
    func: Callable[P, Awaitable[R]],
    *,
    force_new_loop: bool = False,
    backend: str | None = None,
) -> Callable[P, R]: ...


@overload
def async_to_sync(
    func: None = None,
    *,
    force_new_loop: bool = False,
    backend: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, R]]: ...


def async_to_sync(
    func: Callable[P, Awaitable[R]] | None = None,
    *,
    force_new_loop: bool = False,
    backend: str | None = None,
) -> Callable[P, R] | Callable[[Callable[P, Awaitable[R]]], Callable[P, R]]:
    """Turn a coroutine function into a sync function that runs it on an event loop.

    Called in a thread working for an event loop (inside a ``sync_to_async`` call, or
    in an anyio or trio worker thread) it runs the coroutine on that loop, so the
    loop's async resources can be used.  Called in a plain thread, it runs it in a
    fresh event loop.  Either way the calling thread runs thread-sensitive
    ``sync_to_async`` calls the coroutine makes, while it waits.

    :param func: the coroutine function; omitted, a decorator is returned.
    :param force_new_loop: always run in a fresh event loop, as in asgiref.
    :param backend: the anyio backend name (``"asyncio"``, ``"trio"``) of a fresh
        loop; by default the outer loop's when there is one, else ``"asyncio"``.
    :raises RuntimeError: (when called) if an event loop runs in the calling thread;
        await the coroutine function directly there.
    """

    def decorate(async_func: Callable[P, Awaitable[R]]) -> Callable[P, R]:
        return _async_to_sync(async_func, force_new_loop, backend)

    return decorate if func is None else decorate(func)


def _async_to_sync(
    func: Callable[P, Awaitable[R]], force_new_loop: bool, backend: str | None
) -> Callable[P, R]:
    if not callable(func) or not _is_async(func):
        # As asgiref: detection of async callables has false negatives, so only warn.
        warnings.warn("async_to_sync was passed a non-async-marked callable", stacklevel=4)

    @functools.wraps(func)
    def run_on_loop(*args: P.args, **kwargs: P.kwargs) -> R:
        if loop_running_here():
            raise RuntimeError(
                "You cannot use async_to_sync in the same thread as an async event loop - "
                "just await the async function directly."
            )
        mailbox, owned = _mailbox_for_this_thread()
        context = contextvars.copy_context()
        # Thread-sensitive calls made by the coroutine come back to this thread.
        context.run(current_mailbox.set, mailbox)
        coro_fn = functools.partial(func, *args, **kwargs) if args or kwargs else func
        try:
            future = None if force_new_loop else start_on_outer_loop(coro_fn, context)
            if future is None:
                future = run_in_fresh_loop(_fresh_backend(backend), coro_fn, context)
            outcome = mailbox.wait(future)
        finally:
            if owned:
                mailbox.close()
        _restore_context(outcome.context)
        error = outcome.error
        if error is not None:
            outcome.error = None
            raise error
        value: R = outcome.value
        return value

    _keep_self(run_on_loop, func)
    return run_on_loop


def _fresh_backend(backend: str | None) -> str:
    """The backend of a fresh loop: the one asked for, else the outer loop's, else asyncio."""
    if backend is not None:
        return backend
    outer = outer_loop_here()
    return "asyncio" if outer is None else outer.backend


def _mailbox_for_this_thread() -> tuple[ThreadMailbox, bool]:
    """The mailbox this thread should serve while it waits, and whether we made it.

    Reusing the mailbox the thread already serves (the request thread's inside
    AsgiToWsgi, or the shared thread's) means that a nested wait still runs the work
    posted to the outer one, so nesting never deadlocks on this thread.
    """
    mailbox = current_mailbox.get()
    if mailbox is not None and not mailbox.closed and mailbox.is_owned_by_current_thread():
        return mailbox, False
    mailbox = serving_mailbox()
    if mailbox is not None:
        return mailbox, False
    return ThreadMailbox(), True


_sniffio_found: contextvars.ContextVar[str | None] | None = None


def _sniffio_variable() -> contextvars.ContextVar[str | None] | None:
    """sniffio's context variable, once sniffio is imported (looked up once, then kept)."""
    global _sniffio_found
    if _sniffio_found is None:
        sniffio = sys.modules.get("sniffio")
        _sniffio_found = getattr(sniffio, "current_async_library_cvar", None)
    return _sniffio_found


def _context_for_a_thread() -> contextvars.Context:
    """A copy of the current context, for sync code in a thread that runs no loop."""
    context = contextvars.copy_context()
    # The loop's sniffio marker would tell libraries (anyio.run among them) that the
    # thread runs a loop; anyio's worker threads clear it the same way.
    sniffio_variable = _sniffio_variable()
    if sniffio_variable is not None and sniffio_variable.get() is not None:
        context.run(sniffio_variable.set, None)
    return context


def _restore_context(changed: contextvars.Context) -> None:
    """Copy the variables that ``changed`` holds differently into the current context."""
    sniffio_variable = _sniffio_variable()
    for variable, value in changed.items():
        if variable is current_mailbox or variable is sniffio_variable:
            # Which mailbox serves a call, and which loop runs a thread, belong to the
            # side that set them; they are never carried across.
            continue
        if variable.get(_MISSING) is not value:
            variable.set(value)


def _keep_self(wrapper: Callable[..., Any], func: Callable[..., Any]) -> None:
    """Give ``wrapper`` the ``__self__`` of ``func``, a bound method, as asgiref does."""
    # functools.wraps copies no __self__, and code that inspects a wrapped method
    # (asgiref's own tests, Django) looks for the instance there.
    instance = getattr(func, "__self__", _MISSING)
    if instance is not _MISSING:
        wrapper.__self__ = instance  # type: ignore[attr-defined]


def _is_async(func: object) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (a callable object's own method)
    )
