"""What crosses between a loop and a thread: one sync call, one coroutine's outcome.

- :class:`ThreadCall` is one call made on a loop, run by another thread, awaited on
  the loop (through its ``LoopHandle`` in ``adapter._runtime.handle``).  A cancelled
  caller can abandon it until a thread has started it; after that, it waits for the
  thread to end the call (a WSGI step of ``WsgiToAsgi``), or, for a
  :class:`DetachableCall` (a ``sync_to_async`` call, as asgiref), it goes at once and
  leaves the call to run on in its thread.
- :class:`Outcome` is what a coroutine run for ``async_to_sync`` left behind: its value
  or error, and its context, so that context changes flow back to the sync caller.
- While a thread runs a ``ThreadCall``, :func:`call_of_this_thread` names it (and
  :func:`outer_loop_of_this_call` the loop that made it), for ``async_to_sync`` called
  inside it (asgiref keeps the same in a thread-local).
- :class:`Beneath` is the coroutine such an ``async_to_sync`` runs on the call's own
  loop, while the call's thread waits for it: a cancelled caller of the call (a
  ``sync_to_async`` await, a WSGI step's task) cancels it, as asgiref 3.13 does
  (``LoopHandle.wait``).
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from adapter._runtime.fork import forget_in_child

if TYPE_CHECKING:
    from adapter._runtime.handle import LoopHandle, Waiter

__all__ = [
    "Beneath",
    "CoroutineFunction",
    "DetachableCall",
    "Outcome",
    "ThreadCall",
    "call_of_this_thread",
    "capture",
    "outer_loop_of_this_call",
]

CoroutineFunction = Callable[[], Awaitable[Any]]

# The call (sync_to_async's, or a WSGI step) this thread is running, set for the length
# of the call (and restored after, so nested calls in a mailbox thread each see their own).
_local = threading.local()


def call_of_this_thread() -> ThreadCall | None:
    """The ``sync_to_async`` call (or WSGI step) this thread is running, if any."""
    call: ThreadCall | None = getattr(_local, "call", None)
    return call


def outer_loop_of_this_call() -> LoopHandle | None:
    """The loop whose ``sync_to_async`` call this thread is running, if any."""
    call: ThreadCall | None = getattr(_local, "call", None)
    return None if call is None else call.loop


class Beneath:
    """The coroutine that a call's thread waits for in ``async_to_sync``, on its loop.

    Made (it sets ``call.beneath``) and ended on the loop's thread by
    ``LoopHandle.run_beneath``, which runs the coroutine; read there by a cancelled
    caller of the call (``LoopHandle.wait``).

    :param call: the call whose thread waits for the coroutine.
    :param cancel: cancels the coroutine's task (or scope) natively; on the loop's thread.
        Called at once if the call's caller has left already.
    """

    __slots__ = ("_call", "cancel", "cancelled", "ended")

    def __init__(self, call: ThreadCall, cancel: Callable[[], object]) -> None:
        self._call = call
        self.cancel = cancel
        #: True once the coroutine ended by a cancellation (ours or another).
        self.cancelled = False
        #: Made by whoever waits for the coroutine's end (on the loop's thread, so no
        #: lock): set as it ends.
        self.ended: Waiter | None = None
        call.beneath = self
        if call.caller_left:
            cancel()  # the caller left before this coroutine started

    def end(self) -> None:
        """The coroutine ended: the call has nothing beneath it now; wake who waits."""
        self._call.beneath = None
        if self.ended is not None:
            self.ended.set()


class Outcome:
    """What a coroutine run for ``async_to_sync`` left: its value or error, its context."""

    __slots__ = ("context", "error", "value")

    def __init__(
        self, value: Any, error: BaseException | None, context: contextvars.Context
    ) -> None:
        self.value = value
        self.error = error
        self.context = context


async def capture(coro_fn: CoroutineFunction) -> Outcome:
    """Await ``coro_fn()`` and keep what it left, including the context it changed."""
    try:
        value = await coro_fn()
    except BaseException as exc:
        # Everything, cancellation included, is handed to the sync caller to raise.
        return Outcome(None, exc, contextvars.copy_context())
    return Outcome(value, None, contextvars.copy_context())


class ThreadCall:
    """One sync call made from a loop, run by another thread, awaited on the loop."""

    __slots__ = (
        "_claim",
        "args",
        "beneath",
        "caller_left",
        "context",
        "error",
        "finished",
        "func",
        "handling",
        "kwargs",
        "loop",
        "ran",
        "then",
        "value",
        "waiter",
    )

    #: Whether a caller cancelled while a thread runs the call goes at once, leaving
    #: the call to run on (True), or waits for the thread to end it (False).
    detachable: ClassVar[bool] = False

    def __init__(
        self,
        loop: LoopHandle,
        context: contextvars.Context,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.loop = loop
        self.context = context
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.value: Any = None
        self.error: BaseException | None = None
        # The exception the caller is handling, if any: asgiref runs the function in an
        # except block for it, so that sys.exc_info() in the thread sees it (Django's
        # response_for_exception logs it that way).
        self.handling = sys.exc_info()[1]
        self.ran = False
        self.finished = False
        # Set on the loop's thread when a cancelled caller went while the call runs on.
        self.caller_left = False
        # On the loop's thread: the coroutine the call's thread waits for in
        # async_to_sync on this loop, while it does.
        self.beneath: Beneath | None = None
        # What the loop does when a call its caller left ends (give back a limiter
        # token); set on the loop's thread, run there by the loop's finishing callback.
        self.then: Callable[[], object] | None = None
        self.waiter: Waiter = loop.new_waiter()
        # Whoever takes it first decides: the thread (the call runs) or a cancelled
        # caller (the call never runs).
        self._claim = threading.Lock()

    def run(self) -> None:
        """Run the call in this thread, then wake its loop.  Called by the thread."""
        if self.execute():
            self.finish()

    def execute(self) -> bool:
        """Run the call in this thread; False if it was abandoned and did not run."""
        if not self._claim.acquire(blocking=False):
            return False  # abandoned by a caller cancelled before the call started
        self.ran = True
        previous = getattr(_local, "call", None)
        _local.call = self
        try:
            if self.handling is None:
                self.value = self.context.run(self.func, *self.args, **self.kwargs)
            else:
                self.value = self._run_while_handling(self.handling)
        except BaseException as exc:
            self.error = exc
        finally:
            _local.call = previous
        return True

    def _run_while_handling(self, handling: BaseException) -> Any:
        try:
            raise handling
        except BaseException:
            return self.context.run(self.func, *self.args, **self.kwargs)

    def finish(self) -> None:
        """Wake the caller on its loop; from the thread, after :meth:`execute`."""
        if self.ran:  # an abandoned call's caller has gone already
            self.loop.finish_soon(self)

    def outcome(self) -> Any:
        """The call's value, or raise its error; on the caller's side, once it finished."""
        error = self.error
        if error is not None:
            # Break the cycle error -> traceback -> ThreadCall.execute frame -> call.
            self.error = None
            raise error
        return self.value

    def abandon(self) -> bool:
        """Make sure the call never starts; False if it already has."""
        return self._claim.acquire(blocking=False)

    def ended_on_the_loop(self) -> None:
        """The loop learns that the thread is done; on the loop's thread.

        Wakes the waiting caller, or, if it left, runs what it left for the loop to do.
        """
        self.finished = True
        if not self.caller_left:
            self.waiter.set()
        elif self.then is not None:
            then, self.then = self.then, None
            then()


class DetachableCall(ThreadCall):
    """A ``sync_to_async`` call: a cancelled caller goes at once, the thread runs on.

    asgiref's semantics: nothing can stop a thread, so the task is not kept waiting for
    it; what the call returns, raises or sets in its context is dropped.
    """

    __slots__ = ()
    detachable = True


@forget_in_child
def _forget_calls_after_fork() -> None:
    # A sync_to_async call the forking thread was in belongs to the parent's loop.
    global _local
    _local = threading.local()
