"""The threads sync code runs in: one shared thread, and a pool of reusable workers.

``sync_to_async(thread_sensitive=True)`` with no outer sync thread runs in ONE
process-wide thread, as asgiref's does, so code that keeps per-thread state (a
database connection) sees one thread.  That thread is a :class:`ThreadMailbox` owner
that waits forever; because it serves its mailbox, an ``async_to_sync`` call made from
it can send nested thread-sensitive work back to it without deadlocking.

Everything else (``thread_sensitive=False`` calls, and the helper threads that host a
fresh event loop for ``async_to_sync``) runs in a pool of daemon workers that take
their jobs from one ``SimpleQueue``: a worker that finishes a job takes the next one
waiting without going to sleep, so a busy process hands calls over with few thread
wake-ups (a bare WSGI hello world behind uvicorn: 15,900-17,500 requests a second,
against 13,000-14,500 with a queue per worker, where every job woke the worker it was
given to).  A job that finds no worker free starts one, so no job waits behind a busy
worker.  We keep our own pool rather than
``anyio.to_thread.run_sync`` because a call through anyio's costs about as much as
asgiref's whole call, and the per-call goal is half of asgiref's.  The pool has no
bound of its own: callers bound it (``sync_to_async`` holds a capacity limiter token
for each call).  A worker that gets no job for :data:`IDLE_WORKER_TIMEOUT` exits
(under a steady trickle of jobs the pool keeps the threads it once needed at once, as
``concurrent.futures``' does); after ``fork()`` the child starts with no threads and
makes new ones as needed.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from adapter._runtime.fork import forget_in_child
from adapter._runtime.mailbox import ThreadMailbox

if TYPE_CHECKING:
    from adapter._runtime.calls import ThreadCall
    from adapter._runtime.handle import LoopHandle

__all__ = ["run_in_worker", "run_limited", "serving_mailbox", "shared_mailbox"]

logger = logging.getLogger("adapter")

#: Seconds an idle worker waits for more work before its thread ends.
IDLE_WORKER_TIMEOUT = 10.0

_Job = tuple[Callable[[], object], Callable[[], object] | None]

_lock = threading.Lock()
# One queue for every worker: a worker that finishes a job takes the next one waiting
# without sleeping.  _free counts the workers that are waiting (or about to wait) for a
# job and not yet promised to one; a job finding none starts a new worker.
_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_free = 0
_shared: ThreadMailbox | None = None
_local = threading.local()


def serving_mailbox() -> ThreadMailbox | None:
    """The mailbox this thread serves for its whole life (the shared thread's), or None."""
    mailbox: ThreadMailbox | None = getattr(_local, "serving", None)
    return mailbox


def shared_mailbox() -> ThreadMailbox:
    """The mailbox of the process-wide thread for thread-sensitive calls; started lazily."""
    mailbox = _shared
    if mailbox is None:
        mailbox = _start_shared_thread()
    return mailbox


def _start_shared_thread() -> ThreadMailbox:
    global _shared
    with _lock:
        if _shared is not None:
            return _shared
        # The mailbox must be created by the thread that owns it; it hands it back here.
        ready: concurrent.futures.Future[ThreadMailbox] = concurrent.futures.Future()
        thread = threading.Thread(
            target=_serve_forever, args=(ready,), name="adapter-shared-sync", daemon=True
        )
        thread.start()
        _shared = ready.result()
        return _shared


def _serve_forever(ready: concurrent.futures.Future[ThreadMailbox]) -> None:
    mailbox = ThreadMailbox()
    _local.serving = mailbox
    ready.set_result(mailbox)
    never: concurrent.futures.Future[None] = concurrent.futures.Future()
    mailbox.wait(never)


def run_in_worker(job: Callable[[], object], then: Callable[[], object] | None = None) -> None:
    """Run ``job`` in a pool worker, starting one if none is free.

    ``then`` (if given) runs in the same worker after it has counted itself free
    again: a job that wakes its caller there lets the caller's next call find a free
    worker instead of starting another thread.  Both report their own outcome; an
    exception escaping them is logged and dropped.
    """
    global _free
    with _lock:
        start = _free == 0
        if not start:
            _free -= 1  # that worker's place is taken by this job
    if start:
        # Started before the job is queued: if no thread can be started, the caller
        # gets the error and no job is left behind to run later.
        threading.Thread(target=_work, name="adapter-worker", daemon=True).start()
    _jobs.put((job, then))


async def run_limited(
    loop: LoopHandle, call: ThreadCall, limiter: anyio.CapacityLimiter | None
) -> None:
    """Run ``call`` in a pool worker once ``limiter`` (the loop's default if None) has
    room, and wait on ``loop`` until it finished (or was abandoned by a cancellation).

    The call holds a token until its thread is done with it, even when a cancelled
    caller left it running (a :class:`~adapter._runtime.calls.DetachableCall`).
    """
    if limiter is None:
        limiter = loop.default_limiter()
    try:
        limiter.acquire_on_behalf_of_nowait(call)
    except anyio.WouldBlock:
        await limiter.acquire_on_behalf_of(call)
    try:
        run_in_worker(call.execute, call.finish)
        await loop.wait(call)
    finally:
        if call.caller_left and not call.finished:
            # The call runs on without its cancelled caller, and still occupies a
            # thread: its token goes back when it ends, so that calls timing out on a
            # stuck function can not pile up threads past the limiter's bound.
            call.then = functools.partial(limiter.release_on_behalf_of, call)
        else:
            limiter.release_on_behalf_of(call)


def _work() -> None:
    global _free
    jobs = _jobs
    while True:
        try:
            job, then = jobs.get(timeout=IDLE_WORKER_TIMEOUT)
        except queue.Empty:
            with _lock:
                if _free > 0:
                    _free -= 1
                    return
            # Every free place is taken by a job on its way: stay for it.
            continue
        _run_logged(job)
        with _lock:
            _free += 1
        if then is not None:
            _run_logged(then)
        # Drop the work (and what it holds) before waiting.
        del job, then


def _run_logged(job: Callable[[], object]) -> None:
    try:
        job()
    except Exception:
        logger.exception("a job in an adapter worker thread raised; it was dropped")


@forget_in_child
def _forget_threads_after_fork() -> None:
    # In the child only the forking thread exists: the shared thread and the idle
    # workers are gone, and their lock may have been held at the fork.
    global _lock, _jobs, _free, _shared
    _lock = threading.Lock()
    _jobs = queue.SimpleQueue()
    _free = 0
    _shared = None
    _local.__dict__.clear()
