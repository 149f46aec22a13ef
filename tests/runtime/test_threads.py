"""adapter._runtime.threads: the reusable worker pool, reuse and idle exit."""

from __future__ import annotations

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


def test_a_worker_is_reused_by_the_next_job() -> None:
    first = _run_and_name_the_thread()
    assert first is not threading.current_thread()
    assert _run_and_name_the_thread() is first


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
