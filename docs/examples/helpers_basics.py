"""sync_to_async and async_to_sync: the basics, on asyncio and trio alike."""

from __future__ import annotations

import time

import anyio

from adapter import async_to_sync, sync_to_async


def slow_square(number: int) -> int:
    time.sleep(0.01)  # blocking work: a file, a synchronous client, the Django ORM
    return number * number


async def squares() -> list[int]:
    # From async code: the blocking function runs in a thread, the event loop stays free.
    square = sync_to_async(slow_square)
    return [await square(number) for number in range(4)]


@async_to_sync
async def greeting(name: str) -> str:
    # From sync code: the coroutine runs to completion and its value comes back.
    await anyio.sleep(0.001)
    return f"hello {name}"


if __name__ == "__main__":
    print(anyio.run(squares))  # on asyncio
    print(anyio.run(squares, backend="trio"))  # on trio
    print(greeting("world"))  # from plain synchronous code
