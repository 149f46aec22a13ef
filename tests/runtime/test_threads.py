"""adapter._runtime.threads: the reusable worker pool, reuse and idle exit."""

from __future__ import annotations

import functools
import threading

import pytest

from adapter._runtime import threads as _sync_threads
from adapter._runtime.threads import run_in_worker


def _run_and_name_the_thread() -> threading.Thread:
    ran: list[threading.Thread] = []
    done = threading.Event()
    run_in_worker(lambda: ran.append(threading.current_thread()), done.set)
    assert done.wait(10)
    return ran[0]


def _workers() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "adapter-worker"}


def test_a_free_worker_is_reused_rather_than_a_thread_started() -> None:
    first = _run_and_name_the_thread()
    assert first is not threading.current_thread()
    before = _workers()
    for _ in range(50):
        assert _run_and_name_the_thread() in before
    assert _workers() <= before


def test_jobs_past_the_free_workers_start_threads_and_none_waits_behind_another() -> None:
    # Eight jobs that each wait for all eight to be running: a job queued behind a busy
    # worker (rather than given a thread) would never start, and the barrier breaks.
    barrier = threading.Barrier(8, timeout=10)
    done = threading.Semaphore(0)
    for _ in range(8):
        run_in_worker(barrier.wait, done.release)
    for _ in range(8):
        assert done.acquire(timeout=10)
    assert not barrier.broken


def test_every_job_runs_once_however_many_are_handed_over_at_once() -> None:
    # Free workers are promised to jobs and busy ones take what waits when they finish:
    # however the two race, each job runs exactly once.
    ran: list[int] = []
    lock = threading.Lock()
    done = threading.Semaphore(0)

    def job(number: int) -> None:
        with lock:
            ran.append(number)

    for number in range(200):
        run_in_worker(functools.partial(job, number), done.release)
    for _ in range(200):
        assert done.acquire(timeout=10)
    assert sorted(ran) == list(range(200))


def test_then_runs_after_the_job_in_the_same_worker() -> None:
    order: list[tuple[str, threading.Thread]] = []
    done = threading.Event()

    def then() -> None:
        order.append(("then", threading.current_thread()))
        done.set()

    run_in_worker(lambda: order.append(("job", threading.current_thread())), then)
    assert done.wait(10)
    assert [step for step, _ in order] == ["job", "then"]
    assert order[0][1] is order[1][1]


def test_an_idle_worker_ends_after_the_idle_timeout_and_a_new_one_serves_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_sync_threads, "IDLE_WORKER_TIMEOUT", 0.05)
    # A fresh worker, so that it reads the short timeout.
    held = threading.Event()
    started = threading.Event()

    def hold() -> None:
        started.set()
        held.wait(10)

    run_in_worker(hold)
    assert started.wait(10)
    worker = _run_and_name_the_thread()  # the busy one is not idle: another serves this
    held.set()
    worker.join(10)
    assert not worker.is_alive()
    assert _run_and_name_the_thread() is not worker


def test_a_failing_job_is_logged_and_the_worker_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fail() -> None:
        raise ValueError("a broken job")

    done = threading.Event()
    run_in_worker(fail, done.set)
    assert done.wait(10)
    assert "a broken job" in caplog.text
    assert _run_and_name_the_thread().is_alive()


def test_no_thread_to_be_had_raises_and_leaves_no_job_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every worker busy, and the system refuses a new thread.
    release = threading.Event()
    started = threading.Barrier(2, timeout=10)

    def hold() -> None:
        started.wait()
        release.wait(10)

    run_in_worker(hold)
    started.wait()
    free = _sync_threads._free
    monkeypatch.setattr(_sync_threads, "_free", 0)

    class Refused(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading, "Thread", Refused)
    ran: list[bool] = []
    with pytest.raises(RuntimeError, match="can't start new thread"):
        run_in_worker(lambda: ran.append(True))
    monkeypatch.undo()
    assert _sync_threads._free == free
    release.set()
    assert _run_and_name_the_thread().is_alive()
    assert ran == []
