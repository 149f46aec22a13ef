"""HTTP rules both directions apply (RFC 9110), and adapter's own plain responses.

Pure: no I/O, no threads, no event loops.
"""

from __future__ import annotations

import re

__all__ = ["TOKEN", "plain_text"]

TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
"""RFC 9110 5.6.2: a field name is a token."""


def plain_text(text: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers of a short plain-text response adapter answers itself
    (a 500 for an app that failed, a 400 or 413 for a bad request).

    :param text: the body, a short ASCII sentence for the client.
    :returns: the body, and its ``Content-Type`` and ``Content-Length`` headers.
    """
    body = text.encode("ascii")
    return body, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
