"""A timeout around sync_to_async: the await ends on time, the thread runs on."""

from __future__ import annotations

import threading

import anyio

from adapter import sync_to_async

stop_requested = threading.Event()


def slow_report() -> str:
    # Nothing can stop a thread from outside: code that should give up checks for itself.
    stop_requested.wait(5)
    return "report"


async def report_or_none() -> str | None:
    with anyio.move_on_after(0.1):  # or asyncio.timeout(0.1), trio.move_on_after(0.1)
        return await sync_to_async(slow_report)()
    # Here after 0.1 seconds, while slow_report() runs on in its thread.
    stop_requested.set()
    return None


if __name__ == "__main__":
    print(anyio.run(report_or_none))
