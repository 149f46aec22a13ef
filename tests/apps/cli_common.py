"""What the command-line test apps answer, shared by the WSGI and the ASGI one.

``/hold?started=PATH&release=PATH`` creates ``started`` and then blocks the worker
(synchronously, on purpose: in an ASGI app it blocks the event loop) until ``release``
exists, so a test can make one worker busy and see that another one answers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs

HOLD_LIMIT = 20.0
"""Seconds a held request waits for its release at most, so nothing hangs for ever."""


def answer(interface: str, path: str, query: str, wrapped: bool, **details: object) -> bytes:
    """The JSON body for a request to ``path`` with ``query``, and any ``details``."""
    if path == "/hold":
        params = {key: values[0] for key, values in parse_qs(query).items()}
        Path(params["started"]).write_text(str(os.getpid()))
        release = Path(params["release"])
        deadline = time.monotonic() + HOLD_LIMIT
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    body = {"interface": interface, "pid": os.getpid(), "path": path, "wrapped": wrapped}
    body.update(details)
    return json.dumps(body).encode()
