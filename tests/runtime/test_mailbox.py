"""ThreadMailbox: work posted from other threads runs in the thread that waits."""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import os
import socket
import threading
import warnings
from collections.abc import Callable

import pytest

from adapter._runtime.mailbox import MailboxClosed, ThreadMailbox, current_mailbox


def in_thread(func: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=func, daemon=True)
    thread.start()
    return thread


def test_posted_work_runs_in_the_owner_thread_while_it_waits() -> None:
    mailbox = ThreadMailbox()
    done: concurrent.futures.Future[str] = concurrent.futures.Future()
    ran_in: list[int] = []

    def poster() -> None:
        finished = threading.Event()

        def job() -> None:
            ran_in.append(threading.get_ident())
            finished.set()

        mailbox.post(job)
        assert finished.wait(10)
        done.set_result("finished")

    thread = in_thread(poster)
    assert mailbox.wait(done, timeout=10) == "finished"
    thread.join(10)
    assert ran_in == [threading.get_ident()]
    assert mailbox.owner == threading.get_ident()
    assert mailbox.is_owned_by_current_thread()


def test_wait_returns_at_once_for_a_done_future() -> None:
    done: concurrent.futures.Future[int] = concurrent.futures.Future()
    done.set_result(7)
    assert ThreadMailbox().wait(done) == 7


def test_wait_reraises_the_futures_exception_unchanged() -> None:
    mailbox = ThreadMailbox()
    failed: concurrent.futures.Future[int] = concurrent.futures.Future()
    error = ValueError("from the other side")
    in_thread(lambda: failed.set_exception(error))
    with pytest.raises(ValueError, match="from the other side") as caught:
        mailbox.wait(failed, timeout=10)
    assert caught.value is error


def test_wait_times_out_with_timeout_error() -> None:
    never: concurrent.futures.Future[int] = concurrent.futures.Future()
    with pytest.raises(TimeoutError):
        ThreadMailbox().wait(never, timeout=0.01)


def test_work_posted_between_waits_runs_in_the_next_wait() -> None:
    mailbox = ThreadMailbox()
    ran: list[str] = []
    mailbox.post(lambda: ran.append("queued"))
    assert ran == []
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    mailbox.post(lambda: done.set_result(None))
    mailbox.wait(done, timeout=10)
    assert ran == ["queued"]


def test_close_runs_accepted_work_then_refuses_more() -> None:
    ran: list[int] = []
    with ThreadMailbox() as mailbox:
        mailbox.post(lambda: ran.append(threading.get_ident()))
    assert ran == [threading.get_ident()]
    assert mailbox.closed
    with pytest.raises(MailboxClosed, match="stopped waiting"):
        mailbox.post(lambda: None)
    assert isinstance(MailboxClosed(), RuntimeError)
    mailbox.close()  # twice is harmless


def test_post_from_another_thread_after_close_raises_there() -> None:
    mailbox = ThreadMailbox()
    mailbox.close()
    errors: list[BaseException] = []

    def poster() -> None:
        try:
            mailbox.post(lambda: None)
        except MailboxClosed as exc:
            errors.append(exc)

    in_thread(poster).join(10)
    assert len(errors) == 1


def test_waits_nest_and_share_the_queue() -> None:
    mailbox = ThreadMailbox()
    outer: concurrent.futures.Future[str] = concurrent.futures.Future()
    inner: concurrent.futures.Future[str] = concurrent.futures.Future()
    order: list[str] = []

    def nested_job() -> None:
        # Runs in the owner; waits again, and work posted meanwhile still runs.
        order.append("nested start")
        in_thread(lambda: mailbox.post(lambda: inner.set_result("inner")))
        order.append(mailbox.wait(inner, timeout=10))
        outer.set_result("outer")

    in_thread(lambda: mailbox.post(nested_job))
    assert mailbox.wait(outer, timeout=10) == "outer"
    assert order == ["nested start", "inner"]


def test_only_the_owner_may_wait_or_close() -> None:
    mailbox = ThreadMailbox()
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    errors: list[str] = []

    def intruder() -> None:
        try:
            mailbox.wait(done)
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            mailbox.close()
        except RuntimeError as exc:
            errors.append(str(exc))

    in_thread(intruder).join(10)
    assert len(errors) == 2
    assert all("thread that created the mailbox" in message for message in errors)


def test_a_failing_job_is_logged_and_does_not_break_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox = ThreadMailbox()
    done: concurrent.futures.Future[str] = concurrent.futures.Future()

    def broken() -> None:
        raise KeyError("job")

    mailbox.post(broken)
    mailbox.post(lambda: done.set_result("still served"))
    with caplog.at_level(logging.ERROR, logger="adapter"):
        assert mailbox.wait(done, timeout=10) == "still served"
    assert "work posted to a ThreadMailbox raised" in caplog.text


def test_many_futures_in_a_row_each_wake_the_owner() -> None:
    # The hot path of AsgiToWsgi: one wait per future, each resolved from another thread.
    mailbox = ThreadMailbox()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for number in range(200):
            assert mailbox.wait(pool.submit(pow, number, 2), timeout=10) == number**2


def test_current_mailbox_defaults_to_none() -> None:
    assert current_mailbox.get() is None


# ---- the bell: how a waiting owner is woken --------------------------------------------


def test_the_mailboxes_of_a_thread_share_its_bell_other_threads_have_their_own() -> None:
    first, second = ThreadMailbox(), ThreadMailbox()
    assert first._bell is second._bell
    others: list[object] = []
    in_thread(lambda: others.append(ThreadMailbox()._bell)).join(10)
    assert len(others) == 1
    assert others[0] is not first._bell


def test_ringing_a_bell_nobody_listens_to_never_blocks() -> None:
    # Posts while the owner is busy ring the bell each time: once the socket's buffer
    # is full, a ring is dropped (a wake-up is pending anyway), not waited for.
    mailbox = ThreadMailbox()
    ran: list[int] = []
    posted = threading.Event()

    def poster() -> None:
        for number in range(100_000):
            mailbox.post(lambda number=number: ran.append(number))  # type: ignore[misc]
        posted.set()

    in_thread(poster)
    assert posted.wait(30)
    done: concurrent.futures.Future[str] = concurrent.futures.Future()
    in_thread(lambda: done.set_result("woken"))
    assert mailbox.wait(done, timeout=10) == "woken"
    assert ran == list(range(100_000))


def test_a_bell_closes_its_sockets_when_its_thread_and_mailboxes_are_gone() -> None:
    sockets: list[socket.socket] = []

    def owner() -> None:
        bell = ThreadMailbox()._bell
        sockets.extend([bell._ear, bell._mouth])

    in_thread(owner).join(10)
    gc.collect()
    assert [sock.fileno() for sock in sockets] == [-1, -1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
def test_a_forked_child_rings_its_own_bell_not_its_parents() -> None:
    # The parent's socket pair is inherited: shared, a wake-up meant for one process
    # could be read by the other.
    parent_bell = ThreadMailbox()._bell
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            mailbox = ThreadMailbox()
            done: concurrent.futures.Future[str] = concurrent.futures.Future()
            threading.Thread(target=lambda: done.set_result("woken")).start()
            answer = mailbox.wait(done, timeout=10)
            os.write(writer, f"{mailbox._bell is parent_bell} {answer}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    try:
        with os.fdopen(reader, "rb") as pipe:
            report = pipe.read().decode()
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "False woken"
