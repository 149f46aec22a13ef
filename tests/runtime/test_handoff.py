"""adapter._runtime.handoff: a one-shot result from a loop thread to the sync thread
waiting for it."""

from __future__ import annotations

import threading

import pytest

from adapter._runtime.handoff import Handoff
from adapter._runtime.mailbox import ThreadMailbox


def test_result_and_exception() -> None:
    ok: Handoff[int] = Handoff()
    assert not ok.done()
    ok.set_result(3)
    assert ok.done()
    assert ok.result() == 3
    failed: Handoff[int] = Handoff()
    failed.set_exception(ValueError("boom"))
    assert failed.done()
    with pytest.raises(ValueError, match="boom"):
        failed.result()


def test_none_is_a_result() -> None:
    handoff: Handoff[None] = Handoff()
    handoff.set_result(None)
    assert handoff.result() is None


def test_result_before_completion_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not completed"):
        Handoff[int]().result()


def test_completed_once() -> None:
    handoff: Handoff[int] = Handoff()
    handoff.set_result(1)
    with pytest.raises(RuntimeError, match="completed once"):
        handoff.set_result(2)
    with pytest.raises(RuntimeError, match="completed once"):
        handoff.set_exception(ValueError())
    assert handoff.result() == 1


def test_callback_runs_once_at_completion() -> None:
    handoff: Handoff[int] = Handoff()
    calls: list[Handoff[int]] = []
    handoff.add_done_callback(calls.append)
    assert calls == []
    handoff.set_result(1)
    assert calls == [handoff]


def test_callback_added_after_completion_runs_now() -> None:
    handoff: Handoff[int] = Handoff()
    handoff.set_exception(KeyError())
    calls: list[Handoff[int]] = []
    handoff.add_done_callback(calls.append)
    assert calls == [handoff]


def test_one_waiter_only() -> None:
    handoff: Handoff[int] = Handoff()
    handoff.add_done_callback(lambda _: None)
    with pytest.raises(RuntimeError, match="one waiter"):
        handoff.add_done_callback(lambda _: None)


def test_callback_runs_exactly_once_when_racing_completion() -> None:
    # Completion in another thread while this one adds its callback: whichever side
    # comes second runs it, never both, never neither.
    for expected in range(1000):
        handoff: Handoff[int] = Handoff()
        calls: list[int] = []
        completer = threading.Thread(target=handoff.set_result, args=(expected,))
        completer.start()

        def record(done: Handoff[int], calls: list[int] = calls) -> None:
            calls.append(done.result())

        handoff.add_done_callback(record)
        completer.join()
        assert calls == [expected]


def test_mailbox_wait_across_threads() -> None:
    # What the responder does: the request thread waits through its mailbox for a
    # result set in another thread.
    mailbox = ThreadMailbox()
    for expected in range(300):
        handoff: Handoff[int] = Handoff()
        completer = threading.Thread(target=handoff.set_result, args=(expected,))
        completer.start()
        assert mailbox.wait(handoff, timeout=10) == expected
        completer.join()
    mailbox.close()
