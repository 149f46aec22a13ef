"""adapter.asgi_to_wsgi.steps: a coroutine awaited by hand, heard before each suspension.

On asyncio and trio alike (the ``anyio_backend`` fixture): the value, the errors, a
cancellation thrown in and a close all pass through as with a plain ``await``.
"""

from __future__ import annotations

from collections.abc import Generator

import anyio
import anyio.lowlevel
import pytest

from adapter.asgi_to_wsgi.steps import stepped

pytestmark = pytest.mark.anyio


async def test_the_value_comes_back_and_each_suspension_is_heard(
    anyio_backend: tuple[str, object],
) -> None:
    heard: list[str] = []

    async def three_checkpoints() -> str:
        for number in range(3):
            heard.append(f"step {number}")
            await anyio.lowlevel.checkpoint()
        return "value"

    def before_suspending() -> None:
        heard.append("suspending")

    assert await stepped(three_checkpoints(), before_suspending) == "value"
    assert heard == ["step 0", "suspending", "step 1", "suspending", "step 2", "suspending"]


async def test_a_coroutine_that_never_suspends_is_never_heard(
    anyio_backend: tuple[str, object],
) -> None:
    heard: list[str] = []

    async def at_once() -> int:
        return 7

    assert await stepped(at_once(), lambda: heard.append("suspending")) == 7
    assert heard == []


async def test_what_the_coroutine_raises_comes_out(anyio_backend: tuple[str, object]) -> None:
    async def broken() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("from inside")

    with pytest.raises(ValueError, match="from inside"):
        await stepped(broken(), lambda: None)


async def test_a_cancellation_reaches_the_coroutine_and_its_clean_up_runs(
    anyio_backend: tuple[str, object],
) -> None:
    outcome: list[str] = []

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            outcome.append("cleaned up")

    with anyio.move_on_after(0.01) as scope:
        await stepped(forever(), lambda: None)
    assert scope.cancelled_caught
    assert outcome == ["cleaned up"]


def test_closing_it_closes_the_coroutine() -> None:
    # What happens to a pending task's coroutine when it is dropped.
    outcome: list[str] = []

    class Trap:
        def __await__(self) -> Generator[str, None, None]:
            yield "to the loop"

    async def waits() -> None:
        try:
            await Trap()
        finally:
            outcome.append("closed")

    driver = stepped(waits(), lambda: None)
    assert driver.send(None) == "to the loop"
    driver.close()
    assert outcome == ["closed"]
