"""sync_to_async / async_to_sync on asyncio and trio.  (Being written: issue 4.)"""

from __future__ import annotations

from typing import Any


def sync_to_async(func: Any = None, *, thread_sensitive: bool = True, **_: Any) -> Any:
    raise NotImplementedError("sync_to_async is being written (issue 4)")


def async_to_sync(func: Any = None, *, force_new_loop: bool = False) -> Any:
    raise NotImplementedError("async_to_sync is being written (issue 4)")
