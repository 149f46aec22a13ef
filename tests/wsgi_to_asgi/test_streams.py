"""adapter.wsgi_to_asgi.streams: wsgi.input against io.BytesIO (hypothesis), wsgi.file_wrapper."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.exceptions import ClientDisconnected
from adapter.wsgi_to_asgi.streams import (
    READ_AHEAD_BYTES,
    FileWrapper,
    LoggerStream,
    RequestBodyTooLarge,
    WsgiInput,
)


class Messages:
    """A fetch over a list of body messages, counting what it was asked for."""

    def __init__(self, pieces: list[bytes], *, disconnect_at_end: bool = False) -> None:
        self.pieces = list(pieces)
        self.disconnect_at_end = disconnect_at_end
        self.calls = 0

    def __call__(self, wanted: int) -> tuple[bytes, bool]:
        assert 1 <= wanted <= READ_AHEAD_BYTES
        self.calls += 1
        if not self.pieces:
            if self.disconnect_at_end:
                raise ClientDisconnected("gone")
            return b"", False
        piece = self.pieces.pop(0)
        return piece, bool(self.pieces) or self.disconnect_at_end


Op = tuple[str, int | None]
sizes = st.one_of(st.none(), st.integers(min_value=-2, max_value=40))
operations = st.lists(
    st.tuples(st.sampled_from(["read", "readline", "readlines", "next"]), sizes), max_size=12
)
bodies = st.lists(
    st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"\n")), min_size=0, max_size=10
)


def apply(stream: object, op: Op) -> object:
    name, size = op
    if name == "next":
        return next(iter(stream), b"")  # type: ignore[call-overload]
    method: Callable[[int | None], object] = getattr(stream, name)
    return method(size)


@given(pieces=bodies, ops=operations)
def test_any_mix_of_reads_matches_bytesio(pieces: list[bytes], ops: list[Op]) -> None:
    body = WsgiInput(Messages(pieces))
    oracle = io.BytesIO(b"".join(pieces))
    for op in ops:
        assert apply(body, op) == apply(oracle, op), op
    # Whatever was left reads out whole, then EOF stays EOF.
    assert body.read() == oracle.read()
    assert body.read() == b""
    assert body.readline() == b""


@given(pieces=bodies, size=st.integers(min_value=0, max_value=50))
def test_read_n_is_exact_until_the_end(pieces: list[bytes], size: int) -> None:
    whole = b"".join(pieces)
    body = WsgiInput(Messages(pieces))
    got = body.read(size)
    assert got == whole[:size]


@pytest.mark.parametrize("method", ["read", "readline", "readlines"])
def test_iteration_and_methods_over_split_lines(method: str) -> None:
    pieces = [b"ab", b"c\nde", b"f\n", b"\n", b"gh"]
    body = WsgiInput(Messages(pieces))
    oracle = io.BytesIO(b"".join(pieces))
    assert getattr(body, method)() == getattr(oracle, method)()


def test_iteration_yields_lines() -> None:
    body = WsgiInput(Messages([b"a\nb", b"\nc"]))
    assert list(body) == [b"a\n", b"b\n", b"c"]


def test_reads_fetch_only_what_they_need() -> None:
    messages = Messages([b"x" * 10, b"y" * 10, b"z" * 10])
    body = WsgiInput(messages)
    assert body.read(5) == b"x" * 5
    assert messages.calls == 1
    assert body.read(10) == b"x" * 5 + b"y" * 5
    assert messages.calls == 2


def test_disconnect_raises_never_a_short_body() -> None:
    body = WsgiInput(Messages([b"abc"], disconnect_at_end=True))
    assert body.read(3) == b"abc"
    with pytest.raises(ClientDisconnected):
        body.read()
    # And it keeps raising: a later read must not look like the end of the body.
    with pytest.raises(ClientDisconnected):
        body.readline()
    assert isinstance(ClientDisconnected(), OSError)


def test_body_past_the_limit_raises() -> None:
    body = WsgiInput(Messages([b"x" * 6, b"x" * 6]), max_body=10)
    assert body.read(6) == b"x" * 6
    with pytest.raises(RequestBodyTooLarge):
        body.read()


def test_body_at_the_limit_is_fine() -> None:
    body = WsgiInput(Messages([b"x" * 6, b"x" * 4]), max_body=10)
    assert body.read() == b"x" * 10


def test_a_read_of_a_whole_message_hands_it_over_as_it_is() -> None:
    first, second = b"x" * 1000, b"y" * 1000
    body = WsgiInput(Messages([first, second, b"z" * 10]))
    assert body.read(1000) is first  # no copy
    assert body.read(10) == b"y" * 10
    assert body.read(990) == b"y" * 990
    assert body.read(20) == b"z" * 10
    assert body.read(1) == b""


@pytest.mark.parametrize("method", ["read", "readline"])
def test_a_read_cut_off_by_a_disconnect_leaves_what_arrived_to_later_reads(method: str) -> None:
    body = WsgiInput(Messages([b"ab", b"cd"], disconnect_at_end=True))
    assert body.read(1) == b"a"
    with pytest.raises(ClientDisconnected):
        getattr(body, method)(10)
    assert body.read(3) == b"bcd"
    with pytest.raises(ClientDisconnected):
        body.read(1)


def test_file_wrapper_reads_blocks_and_closes() -> None:
    source = io.BytesIO(b"a" * 10)
    wrapper = FileWrapper(source, 4)
    assert list(wrapper) == [b"aaaa", b"aaaa", b"aa"]
    assert wrapper.sendable_path() is None
    wrapper.close()
    assert source.closed


def test_file_wrapper_sendable_path(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    with path.open("rb") as file:
        assert FileWrapper(file).sendable_path() == str(path)
        file.read(3)
        # Read from already: only the rest may go, so it is not sent by path.
        assert FileWrapper(file).sendable_path() is None


def test_wsgi_errors_goes_to_the_adapter_logger(caplog: pytest.LogCaptureFixture) -> None:
    errors = LoggerStream()
    with caplog.at_level(logging.ERROR, logger="adapter"):
        errors.write("first line\nsecond ")
        errors.writelines(["half\n", "tail"])
        errors.flush()
    assert [r.getMessage() for r in caplog.records] == ["first line", "second half", "tail"]
    assert all(r.name == "adapter" for r in caplog.records)
