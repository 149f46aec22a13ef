"""adapter.wsgi_to_asgi.pipes: the bounded pipes between WsgiToAsgi's loop and worker threads."""

from __future__ import annotations

import threading
import time

import pytest

from adapter.exceptions import ClientDisconnected
from adapter.wsgi_to_asgi.pipes import BodyPipe, ChunkPipe


def test_chunk_pipe_holds_the_worker_back_by_bytes() -> None:
    pipe = ChunkPipe(limit=10)
    assert pipe.put(b"12345678")
    assert pipe.put(b"9abc")  # the limit may be passed by one chunk...
    blocked = threading.Event()
    put_result: list[bool] = []

    def worker() -> None:
        blocked.set()
        put_result.append(pipe.put(b"later"))  # ...and then the worker waits

    thread = threading.Thread(target=worker)
    thread.start()
    assert blocked.wait(5)
    assert put_result == []  # still waiting: nothing was taken
    assert pipe.take() == ([b"12345678", b"9abc"], False, None)
    thread.join(5)
    assert put_result == [True]
    pipe.finish()
    assert pipe.take() == ([b"later"], True, None)


def test_chunk_pipe_notifies_only_a_waiting_loop() -> None:
    pipe = ChunkPipe(limit=100)
    calls: list[str] = []
    assert pipe.notify_when_ready(lambda: calls.append("ready"))
    pipe.put(b"a")
    pipe.put(b"b")
    assert calls == ["ready"]  # one wake-up for the batch
    assert not pipe.notify_when_ready(lambda: calls.append("again"))  # data is there
    error = LookupError("app failed")
    pipe.finish(error)
    assert pipe.take() == ([b"a", b"b"], True, error)


def test_chunk_pipe_stop_frees_a_waiting_worker() -> None:
    pipe = ChunkPipe(limit=1)
    assert pipe.put(b"full")
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(pipe.put(b"more")))
    thread.start()
    pipe.stop()
    thread.join(5)
    assert results == [False]
    assert not pipe.put(b"after")


def test_body_pipe_bounds_the_read_ahead() -> None:
    pipe = BodyPipe(limit=10)
    woken: list[str] = []
    assert pipe.room_or_notify(lambda: woken.append("room"))
    pipe.feed(b"0123456789ab", more_body=True)  # one message may pass the limit
    assert not pipe.room_or_notify(lambda: woken.append("room"))  # then the loop waits
    assert pipe.read(4) == (b"0123456789ab", True)  # whole messages, past what it needs
    assert woken == ["room"]  # and wakes the loop once
    assert pipe.room_or_notify(lambda: woken.append("again"))


def test_body_pipe_read_waits_for_the_loop() -> None:
    pipe = BodyPipe(limit=100)
    results: list[tuple[bytes, bool]] = []
    reader = threading.Thread(target=lambda: results.append(pipe.read(1)))
    reader.start()
    pipe.feed(b"last", more_body=False)
    reader.join(5)
    assert results == [(b"last", False)]
    assert pipe.read(1) == (b"", False)


def test_body_pipe_closed_early_means_disconnected_after_what_arrived() -> None:
    pipe = BodyPipe(limit=100)
    pipe.feed(b"part", more_body=True)
    pipe.close()
    assert pipe.read(10) == (b"part", True)
    with pytest.raises(ClientDisconnected):
        pipe.read(10)


def test_body_pipe_closed_after_the_end_is_just_the_end() -> None:
    pipe = BodyPipe(limit=100)
    pipe.feed(b"all", more_body=False)
    pipe.close()
    assert pipe.read(10) == (b"all", False)
    assert pipe.read(10) == (b"", False)


def test_body_pipe_read_takes_whole_messages_up_to_what_it_needs() -> None:
    pipe = BodyPipe(limit=100)
    for piece in (b"ab", b"cd", b"ef"):
        pipe.feed(piece, more_body=True)
    pipe.feed(b"", more_body=False)
    assert pipe.read(3) == (b"abcd", True)
    assert pipe.read(100) == (b"ef", False)
    assert pipe.read(1) == (b"", False)


def _start_reader(pipe: BodyPipe, wanted: int) -> tuple[threading.Thread, list[tuple[bytes, bool]]]:
    results: list[tuple[bytes, bool]] = []
    # A daemon: a read that never returns fails its test, not the whole run.
    reader = threading.Thread(target=lambda: results.append(pipe.read(wanted)), daemon=True)
    reader.start()
    return reader, results


def test_body_pipe_read_waits_for_a_full_pipe_first() -> None:
    pipe = BodyPipe(limit=8, fill_wait=None)
    reader, results = _start_reader(pipe, 2)
    pipe.feed(b"abc", more_body=True)
    reader.join(0.2)
    assert reader.is_alive()  # what it wants is there, but the pipe is not full
    pipe.feed(b"defgh", more_body=True)
    reader.join(5)
    assert results == [(b"abc", True)]
    assert pipe.read(5) == (b"defgh", True)  # there: no wait


def test_body_pipe_read_waits_for_a_full_pipe_only_so_long() -> None:
    pipe = BodyPipe(limit=100, fill_wait=0.01)
    reader, results = _start_reader(pipe, 2)
    pipe.feed(b"abc", more_body=True)
    reader.join(5)  # the pipe never fills: the read goes on with what it has
    assert results == [(b"abc", True)]


def test_body_pipe_read_waits_for_what_it_wants_not_for_each_message() -> None:
    pipe = BodyPipe(limit=100, fill_wait=0)
    reader, results = _start_reader(pipe, 10)
    pipe.feed(b"abc", more_body=True)
    reader.join(0.2)
    assert reader.is_alive()  # 3 bytes of 10: the reader is not woken for them
    pipe.feed(b"defghijkl", more_body=True)
    reader.join(5)
    assert results == [(b"abcdefghijkl", True)]


@pytest.mark.parametrize("ending", ["full", "end", "close"])
def test_body_pipe_read_is_woken_short_by_a_full_pipe_the_end_or_a_close(ending: str) -> None:
    pipe = BodyPipe(limit=4)
    reader, results = _start_reader(pipe, 10)  # more than the pipe may hold
    if ending == "full":
        pipe.feed(b"abcd", more_body=True)
    else:
        pipe.feed(b"ab", more_body=ending == "close")
        if ending == "close":
            pipe.close()
    reader.join(5)
    expected = {"full": (b"abcd", True), "end": (b"ab", False), "close": (b"ab", True)}
    assert results == [expected[ending]]
    if ending == "close":
        with pytest.raises(ClientDisconnected):
            pipe.read(1)


def test_body_pipe_read_waits_again_and_again() -> None:
    pipe = BodyPipe(limit=3)
    read: list[bytes] = []

    def reader() -> None:
        more = True
        while more:
            data, more = pipe.read(2)
            read.append(data)

    thread = threading.Thread(target=reader)
    thread.start()
    pieces = [b"a", b"b", b"cd", b"e", b"f", b"gh", b"i"]
    for index, piece in enumerate(pieces):
        while not pipe.has_room():  # as the loop would: the reader waits again each time
            time.sleep(0.001)
        pipe.feed(piece, more_body=index < len(pieces) - 1)
    thread.join(5)
    assert b"".join(read) == b"abcdefghi"
    assert all(read)


def test_body_pipe_has_room_below_its_limit_and_wakes_the_loop_only_then() -> None:
    pipe = BodyPipe(limit=4)
    assert pipe.has_room()
    for piece in (b"ab", b"cd", b"ef"):
        pipe.feed(piece, more_body=True)
    assert not pipe.has_room()
    woken: list[str] = []
    assert not pipe.room_or_notify(lambda: woken.append("room"))
    assert pipe.read(1) == (b"ab", True)
    assert (woken, pipe.has_room()) == ([], False)  # still 4 bytes: no room yet
    assert pipe.read(1) == (b"cd", True)
    assert (woken, pipe.has_room()) == (["room"], True)


def test_body_pipe_readers_in_two_threads_at_once_take_turns_and_none_hangs() -> None:
    # PEP 3333 never made two readers of one wsgi.input safe, but they must not hang:
    # with one waiter slot, a second waiting reader would take the first one's.
    pipe = BodyPipe(1024, fill_wait=0.01)
    got: list[bytes] = []
    lock = threading.Lock()

    def reader() -> None:
        data, _ = pipe.read(10)
        with lock:
            got.append(data)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # both are reading (one waits in the pipe, one for its turn)
    pipe.feed(b"a" * 10, more_body=True)
    pipe.feed(b"b" * 10, more_body=True)
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(got) == [b"a" * 10, b"b" * 10]
