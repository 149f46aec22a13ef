"""Pure translation for AsgiToWsgi: PEP 3333 environ -> ASGI scope, ASGI response -> PEP 3333.

Nothing here does I/O or touches a thread or an event loop (the h11 "sans-IO" habit),
so every rule is tested with plain tables and hypothesis round trips against
:func:`adapter.environ.build_environ`, its inverse:

- :func:`build_scope` turns the environ a WSGI server hands us into the scope of the
  ASGI HTTP spec (https://asgi.readthedocs.io/en/latest/specs/www.html).
- :func:`content_length` reads ``CONTENT_LENGTH`` safely (empty or invalid is "none").
- :func:`status_line` and :func:`wsgi_headers` turn an ``http.response.start`` message
  into what ``start_response`` takes, refusing what PEP 3333 forbids.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from adapter._http import TOKEN
from adapter._types import Environ, Headers, Scope
from adapter.exceptions import ProtocolError

__all__ = ["build_scope", "content_length", "status_line", "wsgi_headers"]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
"""Spec 2.4: ``send()`` raises :class:`OSError` once the client is gone (we do)."""

# Characters left alone when a path has to be percent-encoded again to make raw_path:
# RFC 3986 pchar minus the percent sign itself, plus "/".
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

# PEP 3333: "Applications and middleware are forbidden from using HTTP/1.1 hop-by-hop
# features or headers"; wsgiref's server even asserts on them.  The WSGI server owns
# the connection, so these are dropped from an ASGI app's response.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# RFC 9110 5.5: CR, LF and NUL are never allowed in a field value.
# Environ key -> header name, b"" for a key that is not a header (or is skipped).
_HEADER_NAMES: dict[str, bytes] = {}
_HEADER_NAMES_LIMIT = 1024
# The environ's keys, in order -> its (key, header name) pairs.  A server builds every
# environ alike and a client sends its headers alike, so the same few key tuples come
# back request after request; one lookup replaces a loop over every key.
_HEADER_PLANS: dict[tuple[str, ...], list[tuple[str, bytes]]] = {}
_HEADER_PLANS_LIMIT = 256
_STATUS_LINES: dict[int, str] = {}
_NAME_CACHE: dict[bytes, str | None] = {}
_NAME_CACHE_LIMIT = 1024


def _wsgi_text_to_utf8(value: str) -> str:
    # PEP 3333 "native strings" carry the raw bytes decoded as latin-1; the ASGI spec
    # wants the path as text, its bytes decoded as UTF-8.
    if value.isascii():  # the usual case: the same text either way
        return value
    return value.encode("latin-1").decode("utf-8", "replace")


def content_length(environ: Mapping[str, Any]) -> int | None:
    """The request body length from ``CONTENT_LENGTH``, or None when absent or invalid.

    PEP 3333 lets ``CONTENT_LENGTH`` be empty or absent; a value that is not a
    non-negative decimal integer is treated the same, so it can never become a bad
    ``content-length`` header in the scope.

    :param environ: the PEP 3333 environ.
    """
    value = environ.get("CONTENT_LENGTH")
    if not value:
        return None
    if type(value) is not str or not value.isdigit():  # the usual case is a plain "123"
        value = str(value).strip()
    if not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _raw_path(environ: Mapping[str, Any], full_path: str) -> bytes:
    # The bytes as received are not in PEP 3333, but gunicorn and Werkzeug offer
    # RAW_URI and most servers REQUEST_URI; otherwise re-encode the decoded path.
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw_uri, str) and raw_uri:
        target = raw_uri.split("?", 1)[0]
        if "://" in target:  # absolute-form request target (RFC 9112 3.2.2)
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        if target.startswith("/"):
            return target.encode("latin-1", "replace")
    return quote(full_path.encode("latin-1"), safe=_PATH_SAFE).encode("ascii")


def _port(value: object) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() else None


def _header_name(key: str) -> bytes:
    """The header name for an environ key, b"" if it is none (cached; keys repeat)."""
    if not key.startswith("HTTP_") or key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        # CONTENT_TYPE and CONTENT_LENGTH are the authority (PEP 3333 after CGI); some
        # servers also copy them to HTTP_* keys.
        name = b""
    else:
        name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(_HEADER_NAMES) < _HEADER_NAMES_LIMIT:  # bounded: clients may invent names
        _HEADER_NAMES[key] = name
    return name


def _header_plan(keys: tuple[str, ...]) -> list[tuple[str, bytes]]:
    plan: list[tuple[str, bytes]] = []
    names = _HEADER_NAMES
    for key in keys:
        name = names.get(key)
        if name is None:
            name = _header_name(key)
        if name:  # b"" for the keys that are not headers, or are skipped
            plan.append((key, name))
    if len(_HEADER_PLANS) < _HEADER_PLANS_LIMIT:  # bounded: clients vary their headers
        _HEADER_PLANS[keys] = plan
    return plan


def _headers(environ: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    keys = tuple(environ)
    plan = _HEADER_PLANS.get(keys)
    if plan is None:
        plan = _header_plan(keys)
    headers = [(name, str(environ[key]).encode("latin-1")) for key, name in plan]
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        headers.append((b"content-type", str(content_type).encode("latin-1")))
    length = content_length(environ)
    if length is not None:
        headers.append((b"content-length", str(length).encode("ascii")))
    return headers


def build_scope(environ: Environ, *, state: Mapping[str, Any] | None = None) -> Scope:
    """The ASGI HTTP connection scope for a PEP 3333 environ.

    ``path`` includes ``root_path`` (from ``SCRIPT_NAME``), both as UTF-8 text decoded
    from PEP 3333's latin-1 strings; header names are lower-cased bytes.

    :param environ: the PEP 3333 environ of one request.
    :param state: lifespan state; a shallow copy of it becomes ``scope["state"]``.
    :raises UnicodeEncodeError: if the environ holds text that is not latin-1, which
        PEP 3333 forbids.
    """
    root_path = _wsgi_text_to_utf8(environ.get("SCRIPT_NAME", ""))
    wsgi_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    protocol = str(environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
    http_version = protocol.partition("/")[2] or "1.1"
    if http_version == "2.0":
        http_version = "2"
    remote_addr = environ.get("REMOTE_ADDR")
    client = (remote_addr, _port(environ.get("REMOTE_PORT")) or 0) if remote_addr else None
    return {
        "type": "http",
        "asgi": {"version": ASGI_VERSION["version"], "spec_version": ASGI_VERSION["spec_version"]},
        "http_version": http_version,
        "method": str(environ.get("REQUEST_METHOD", "GET")).upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": _wsgi_text_to_utf8(wsgi_path) or "/",
        "raw_path": _raw_path(environ, wsgi_path),
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "root_path": root_path,
        "headers": _headers(environ),
        "client": client,
        "server": (environ.get("SERVER_NAME", "localhost"), _port(environ.get("SERVER_PORT"))),
        "state": dict(state) if state else {},
        # The pathsend extension is served through PEP 3333's wsgi.file_wrapper.
        "extensions": {"http.response.pathsend": {}} if "wsgi.file_wrapper" in environ else {},
    }


def status_line(status: object) -> str:
    """The PEP 3333 status string (``"404 Not Found"``) for an ASGI status code.

    :param status: the ``status`` of an ``http.response.start`` message.
    :raises ProtocolError: if it is not an integer from 100 to 999.
    """
    if type(status) is int:  # not a bool, an IntEnum or a float that hashes alike
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise ProtocolError(f"'http.response.start' has an invalid status {status!r}")
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    line = f"{int(status)} {phrase}"
    if type(status) is int:  # bounded: at most the 900 valid codes
        _STATUS_LINES[status] = line
    return line


def _checked_name(name_bytes: bytes) -> str | None:
    """The header name as text, None for a hop-by-hop one; cached, names repeat."""
    try:
        return _NAME_CACHE[name_bytes]
    except KeyError:
        pass
    name = name_bytes.decode("latin-1")
    if not TOKEN.match(name):
        raise ProtocolError(f"'http.response.start' has an invalid header name {name_bytes!r}")
    checked = None if name.lower() in _HOP_BY_HOP else name
    if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:  # bounded: an app may invent names
        _NAME_CACHE[name_bytes] = checked
    return checked


def wsgi_headers(raw_headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """PEP 3333 header pairs (latin-1 text) for the headers of ``http.response.start``.

    Hop-by-hop headers are dropped: the WSGI server owns the connection (PEP 3333).
    Values lose leading and trailing spaces and tabs (RFC 9110 5.5).

    :param raw_headers: the ``headers`` of an ``http.response.start`` message.
    :raises ProtocolError: for a name that is not a token or a value with CR, LF or NUL
        (which would split the response), or for a name or value that is not bytes.
    """
    headers: Headers = []
    for pair in raw_headers:
        name_bytes, value_bytes = pair
        if type(name_bytes) is not bytes or type(value_bytes) is not bytes:
            if not isinstance(name_bytes, bytes | bytearray) or not isinstance(
                value_bytes, bytes | bytearray
            ):
                raise ProtocolError(
                    f"'http.response.start' header {pair!r}: names and values must be bytes"
                )
            name_bytes, value_bytes = bytes(name_bytes), bytes(value_bytes)
        name = _checked_name(name_bytes)
        if b"\r" in value_bytes or b"\n" in value_bytes or b"\0" in value_bytes:
            raise ProtocolError(f"'http.response.start' has an invalid header {pair!r}")
        if name is not None:
            # RFC 9110 5.5: a field value has no leading or trailing whitespace
            # (strict WSGI servers may refuse one that has).
            headers.append((name, value_bytes.strip(b" \t").decode("latin-1")))
    return headers
