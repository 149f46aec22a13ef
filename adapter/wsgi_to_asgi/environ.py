"""Pure translation between an ASGI HTTP scope and a PEP 3333 environ.

Nothing here does I/O or touches a thread or an event loop, so every rule can be
tested exhaustively with plain tables: :func:`build_environ` turns a scope into the
environ a WSGI app receives; :func:`parse_status` and :func:`encode_headers` check what
the app hands to ``start_response`` and turn it into what an ASGI
``http.response.start`` message carries; :func:`response_body_limit` says how many body
bytes that response may carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import IO, Any

from adapter._http import TOKEN
from adapter._types import Environ, Scope
from adapter.exceptions import ProtocolError

__all__ = [
    "build_environ",
    "decode_path",
    "encode_headers",
    "parse_status",
    "response_body_limit",
]

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}

# Header names whose WSGI key is not HTTP_<NAME> (PEP 3333, after CGI: RFC 3875 4.1).
_SPECIAL_KEYS = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}

# The key for each header name seen so far.  Header names repeat across requests, so
# caching the upper-casing keeps the per-request environ build to dict look-ups.  The
# cache is bounded so a client inventing names can not grow it without limit.
_KEY_CACHE: dict[bytes, str | None] = {}

# PEP 3333: the status is a three-digit code, a space and a reason phrase.
_STATUS = re.compile(r"([1-9][0-9][0-9]) [^\r\n\0]*\Z")

# Apps send the same few statuses and header names again and again: each is checked
# once, then looked up (bounded, so made-up names can not grow the caches forever).
# A header value is checked every time: RFC 9110 5.5 never allows CR, LF or NUL in it
# (response splitting).
_CACHE_LIMIT = 1024
_STATUS_CACHE: dict[str, int] = {}
_NAME_CACHE: dict[str, bytes] = {}


def _environ_key(name: bytes) -> str | None:
    """The environ key for a lower-case header name, or None when it must be dropped."""
    try:
        return _KEY_CACHE[name]
    except KeyError:
        pass
    key: str | None
    if b"_" in name:
        # An underscore would become indistinguishable from a dash in HTTP_*, so
        # ``x_forwarded_for`` could pose as ``X-Forwarded-For``: drop such headers
        # (as nginx and Apache do).
        key = None
    else:
        key = _SPECIAL_KEYS.get(name) or "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_KEY_CACHE) < _CACHE_LIMIT:
        _KEY_CACHE[name] = key
    return key


def decode_path(path: str) -> str:
    """Turn an ASGI ``path`` (decoded text) into a PEP 3333 native string.

    PEP 3333 wants the request's bytes as latin-1 text; ASGI hands over UTF-8-decoded
    text.  A server that met bytes which are not UTF-8 may leave surrogates in the
    text; they are carried back to their bytes rather than crashing the request.

    :param path: the ``path`` or ``root_path`` of an ASGI scope.
    """
    if path.isascii():
        return path
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = path.encode("utf-8", "surrogatepass")
    return raw.decode("latin-1")


def build_environ(
    scope: Scope, wsgi_input: IO[bytes] | Any, wsgi_errors: IO[str] | Any = None
) -> Environ:
    """Build the PEP 3333 environ for one ASGI HTTP request.

    :param scope: an ASGI ``http`` scope.
    :param wsgi_input: the object to offer as ``environ["wsgi.input"]``.
    :param wsgi_errors: the object to offer as ``environ["wsgi.errors"]`` (WsgiToAsgi
        gives a stream into the ``adapter`` logger).
    :raises KeyError: when the scope lacks a key the ASGI spec requires (``method``,
        ``path``).
    """
    root_path = scope.get("root_path", "")
    path = scope["path"]
    # ASGI: ``path`` includes ``root_path``; strip it only at a segment boundary, so
    # a root of ``/app`` does not eat the start of ``/application``.
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest[0] == "/":
            path = rest
    scheme = scope.get("scheme", "http")
    server = scope.get("server")
    environ: Environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": decode_path(root_path),
        "PATH_INFO": decode_path(path),
        # Raw query bytes, whatever they are, never fail as latin-1 (PEP 3333).
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": wsgi_input,
        "wsgi.errors": wsgi_errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # The server ends the body (chunked or not); reading to EOF is safe.
        "wsgi.input_terminated": True,
        "asgi.scope": scope,
    }
    if server:
        environ["SERVER_NAME"] = server[0]
        port = server[1]
        environ["SERVER_PORT"] = str(port) if port is not None else _DEFAULT_PORTS.get(scheme, "80")
    else:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = _DEFAULT_PORTS.get(scheme, "80")
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        key = _environ_key(bytes(raw_name).lower())
        if key is None:
            continue
        value = bytes(raw_value).decode("latin-1")
        if key in environ:
            # RFC 9110 5.3: repeated fields join with a comma; RFC 6265 5.4: cookies
            # join with "; ".
            separator = "; " if key == "HTTP_COOKIE" else ", "
            environ[key] = environ[key] + separator + value
        else:
            environ[key] = value
    return environ


def parse_status(status: str) -> int:
    """Check a PEP 3333 status line and return its code.

    :param status: what the app passed to ``start_response``, e.g. ``"200 OK"``.
    :raises ProtocolError: when it is not a str of a three-digit code and a reason, or
        holds CR, LF or NUL.
    """
    if type(status) is not str:
        raise ProtocolError(
            f"start_response: the status must be a str such as '200 OK', not {status!r}"
        )
    code = _STATUS_CACHE.get(status)
    if code is not None:
        return code
    match = _STATUS.match(status)
    if match is None:
        raise ProtocolError(
            f"start_response: malformed status {status!r}; expected a three-digit code, "
            "a space and a reason phrase, without CR, LF or NUL"
        )
    code = int(match.group(1))
    if len(_STATUS_CACHE) < _CACHE_LIMIT:
        _STATUS_CACHE[status] = code
    return code


def _encode_name(name: object, header: object) -> bytes:
    """Check a header name and encode it as the ASGI spec wants (lower-case bytes)."""
    if type(name) is not str:
        raise ProtocolError(f"start_response: header name and value must be str: {header!r}")
    if TOKEN.match(name) is None:
        raise ProtocolError(f"start_response: header name {name!r} is not an HTTP token")
    encoded = name.lower().encode("ascii")
    if len(_NAME_CACHE) < _CACHE_LIMIT:
        _NAME_CACHE[name] = encoded
    return encoded


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Check PEP 3333 response headers and encode them for ``http.response.start``.

    Names become lower-case latin-1 bytes, as the ASGI spec asks; values latin-1 bytes,
    without leading or trailing spaces and tabs (RFC 9110 5.5).

    :param headers: the list of ``(name, value)`` str pairs the app passed to
        ``start_response``.
    :raises ProtocolError: when headers is not a list of pairs of str, a name is not an
        HTTP token, a value holds CR, LF or NUL, or either is not latin-1.
    """
    if type(headers) is not list:
        raise ProtocolError(
            f"start_response: headers must be a list of (name, value) tuples, not "
            f"{type(headers).__name__}"
        )
    encoded: list[tuple[bytes, bytes]] = []
    for header in headers:
        if not isinstance(header, (tuple, list)) or len(header) != 2:
            raise ProtocolError(
                f"start_response: a header must be a (name, value) tuple: {header!r}"
            )
        name, value = header
        if type(value) is not str:
            raise ProtocolError(f"start_response: header name and value must be str: {header!r}")
        encoded_name = _NAME_CACHE.get(name) if type(name) is str else None
        if encoded_name is None:
            encoded_name = _encode_name(name, header)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ProtocolError(
                f"start_response: header {name!r} has CR, LF or NUL in its value; refusing "
                "to send it (response splitting)"
            )
        try:
            # RFC 9110 5.5: a field value has no leading or trailing whitespace, and
            # strict servers (h11) refuse one that has; Django writes its Set-Cookie
            # values with a leading space.  strip() returns the same str when there is
            # nothing to strip, so the usual case costs one call.
            encoded.append((encoded_name, value.strip(" \t").encode("latin-1")))
        except UnicodeEncodeError:
            raise ProtocolError(
                f"start_response: header {name!r} value is not latin-1 (PEP 3333); "
                "encode it (RFC 8187) before passing it"
            ) from None
    return encoded


# RFC 9110 15.3.5 and 15.4.5: a 204 or a 304 response has no content.
_BODYLESS_STATUSES = frozenset({204, 304})


def response_body_limit(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> int | None:
    """How many body bytes a response may carry.

    RFC 9110 9.3.2: none in answer to ``HEAD``; none for a 204 or a 304; RFC 9112 6.3:
    otherwise exactly its ``Content-Length``.

    :param method: the request method.
    :param status: the response status code.
    :param headers: the response headers, names lower-cased (as :func:`encode_headers`
        gives them).
    :returns: the limit, or None when the response declares no length (or one that is
        not a plain number: the server judges that).
    """
    if method == "HEAD" or status in _BODYLESS_STATUSES:
        return 0
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
