"""Handoff: AsgiToWsgi's lean one-shot result, waited for through a ThreadMailbox."""

from __future__ import annotations

import threading

import pytest

from adapter._asgi_handoff import Handoff
from adapter._outer import ThreadMailbox


def test_a_result_set_in_another_thread_ends_the_owners_wait() -> None:
    mailbox = ThreadMailbox()
    handoff: Handoff[str] = Handoff()
    ran_in: list[int] = []
    ran = threading.Event()

    def job() -> None:
        ran_in.append(threading.get_ident())
        ran.set()

    def loop_side() -> None:
        mailbox.post(job)
        assert ran.wait(10)
        handoff.set_result("first chunk")

    thread = threading.Thread(target=loop_side, daemon=True)
    thread.start()
    assert mailbox.wait(handoff, timeout=10) == "first chunk"
    thread.join(10)
    # The work posted while the owner waited ran there, in the waiting thread.
    assert ran_in == [threading.get_ident()]


def test_an_exception_is_raised_unchanged_by_the_wait() -> None:
    handoff: Handoff[int] = Handoff()
    error = ValueError("the app failed")
    handoff.set_exception(error)
    with pytest.raises(ValueError, match="the app failed") as caught:
        ThreadMailbox().wait(handoff, timeout=10)
    assert caught.value is error


def test_a_callback_added_after_completion_runs_at_once() -> None:
    handoff: Handoff[int] = Handoff()
    handoff.set_result(3)
    seen: list[Handoff[int]] = []
    handoff.add_done_callback(seen.append)
    assert seen == [handoff]
    assert handoff.done()
    assert handoff.result() == 3


def test_it_completes_once_and_is_read_only_when_complete() -> None:
    handoff: Handoff[int] = Handoff()
    with pytest.raises(RuntimeError):
        handoff.result()
    handoff.set_result(1)
    with pytest.raises(RuntimeError):
        handoff.set_result(2)
    with pytest.raises(RuntimeError):
        handoff.set_exception(ValueError())
    assert handoff.result() == 1


def test_a_result_of_none_is_a_result() -> None:
    handoff: Handoff[None] = Handoff()
    handoff.set_result(None)
    assert ThreadMailbox().wait(handoff, timeout=10) is None
