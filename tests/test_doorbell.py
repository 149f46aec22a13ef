"""adapter._doorbell: a thread's wake-up channel, rung from anywhere, slept on by its owner."""

from __future__ import annotations

import gc
import os
import select
import threading

import pytest

from adapter._doorbell import Doorbell, doorbell_for_this_thread
from adapter._outer import ThreadMailbox


def test_a_ring_before_the_sleep_makes_the_sleep_return_at_once() -> None:
    bell = Doorbell()
    try:
        bell.ring()
        bell.sleep()  # would block forever without the ring
    finally:
        bell.close()


def test_a_ring_from_another_thread_wakes_the_sleeper() -> None:
    bell = Doorbell()
    woke = threading.Event()

    def sleeper() -> None:
        bell.sleep()
        woke.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        bell.ring()
        assert woke.wait(10)
    finally:
        bell.ring()  # never leave the thread asleep, even if the assert failed
        thread.join(10)
        bell.close()


def test_a_sleep_with_a_timeout_returns_unrung() -> None:
    bell = Doorbell()
    try:
        bell.sleep(0.01)
        bell.sleep(-1.0)  # a deadline already past: no sleep at all
    finally:
        bell.close()


def test_rings_never_block_however_many_go_unanswered() -> None:
    # Far more rings than a socket buffer holds: a full buffer already means "wake up".
    bell = Doorbell()
    try:
        for _ in range(300_000):
            bell.ring()
        bell.sleep()
    finally:
        bell.close()


def test_a_ring_after_close_is_ignored() -> None:
    bell = Doorbell()
    bell.close()
    bell.ring()


def test_each_thread_has_its_own_doorbell_and_keeps_it() -> None:
    mine = doorbell_for_this_thread()
    assert doorbell_for_this_thread() is mine
    theirs: list[Doorbell] = []
    thread = threading.Thread(target=lambda: theirs.append(doorbell_for_this_thread()))
    thread.start()
    thread.join(10)
    assert theirs[0] is not mine


def test_a_thread_s_doorbell_is_closed_when_the_thread_ends() -> None:
    files_before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        thread = threading.Thread(target=doorbell_for_this_thread)
        thread.start()
        thread.join(10)
    gc.collect()
    # No ResourceWarning either: pytest turns warnings into errors here.
    assert len(os.listdir("/proc/self/fd")) <= files_before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_gets_a_doorbell_of_its_own() -> None:
    parent_bell = doorbell_for_this_thread()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer 1 if its doorbell is new and works, else 0
        try:
            bell = doorbell_for_this_thread()
            mailbox = ThreadMailbox()
            ran: list[int] = []
            mailbox.post(lambda: ran.append(1))
            mailbox.close()
            os.write(write_end, b"1" if bell is not parent_bell and ran == [1] else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10)
        assert ready, "the child did not answer"
        assert os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    # The parent's doorbell still works after the child made its own (a hang here is
    # the failure, ended by the suite's per-test timeout).
    parent_bell.ring()
    parent_bell.sleep()
