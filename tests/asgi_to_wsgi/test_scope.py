"""adapter.asgi_to_wsgi.scope: PEP 3333 environ -> ASGI HTTP scope, and the response translation.

Tables for each rule, and hypothesis round trips through WsgiToAsgi's inverse
(:func:`adapter.environ.build_environ`): scope -> environ -> scope keeps every field
the two specs share (issue 3 point 3).
"""

from __future__ import annotations

import http
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.asgi_to_wsgi.scope import build_scope, content_length, status_line, wsgi_headers
from adapter.exceptions import ProtocolError
from adapter.wsgi_to_asgi.environ import build_environ


def environ_for(**overrides: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "example.org",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
    }
    environ.update(overrides)
    return environ


def test_scope_has_every_key_of_the_spec() -> None:
    scope = build_scope(environ_for(REMOTE_ADDR="10.0.0.1", REMOTE_PORT="5555"))
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("10.0.0.1", 5555),
        "server": ("example.org", 8080),
        "state": {},
        "extensions": {},
    }


@pytest.mark.parametrize(
    ("script_name", "path_info", "path", "root_path"),
    [
        ("", "/", "/", ""),
        ("", "", "/", ""),
        ("/app", "/users", "/app/users", "/app"),
        ("/app", "", "/app", "/app"),
        # PEP 3333 native strings are latin-1-decoded bytes; the scope wants UTF-8 text.
        ("", "/caf\u00c3\u00a9", "/caf\u00e9", ""),
        ("/\u00e2\u0082\u00ac", "/x", "/\u20ac/x", "/\u20ac"),
        ("", "/a%2Fb", "/a%2Fb", ""),
        # Bytes that are not UTF-8 never crash the request.
        ("", "/\u00ff", "/\ufffd", ""),
    ],
)
def test_path_and_root_path(script_name: str, path_info: str, path: str, root_path: str) -> None:
    scope = build_scope(environ_for(SCRIPT_NAME=script_name, PATH_INFO=path_info))
    assert scope["path"] == path
    assert scope["root_path"] == root_path


@pytest.mark.parametrize(
    ("extra", "raw_path"),
    [
        ({}, b"/caf%C3%A9%20x"),
        ({"REQUEST_URI": "/caf%c3%a9%20x?q=1"}, b"/caf%c3%a9%20x"),
        ({"RAW_URI": "/caf%C3%A9 x"}, b"/caf%C3%A9 x"),
        ({"REQUEST_URI": "http://example.org/caf%C3%A9?x"}, b"/caf%C3%A9"),
    ],
)
def test_raw_path(extra: dict[str, str], raw_path: bytes) -> None:
    scope = build_scope(environ_for(PATH_INFO="/caf\u00c3\u00a9 x", **extra))
    assert scope["raw_path"] == raw_path


@pytest.mark.parametrize(
    ("protocol", "version"),
    [("HTTP/1.0", "1.0"), ("HTTP/1.1", "1.1"), ("HTTP/2", "2"), ("HTTP/2.0", "2"), ("", "1.1")],
)
def test_http_version(protocol: str, version: str) -> None:
    assert build_scope(environ_for(SERVER_PROTOCOL=protocol))["http_version"] == version


def test_method_scheme_query_string() -> None:
    scope = build_scope(
        environ_for(
            REQUEST_METHOD="post", QUERY_STRING="a=1&b=\u00e9", **{"wsgi.url_scheme": "https"}
        )
    )
    assert scope["method"] == "POST"
    assert scope["scheme"] == "https"
    assert scope["query_string"] == b"a=1&b=\xe9"  # the bytes as received


def test_headers_lower_cased_with_content_type_and_length() -> None:
    scope = build_scope(
        environ_for(
            HTTP_HOST="example.org",
            HTTP_X_CUSTOM_THING="caf\u00e9",
            HTTP_COOKIE="a=1; b=2",
            CONTENT_TYPE="application/json",
            CONTENT_LENGTH="12",
            # Some servers copy these two; the CGI keys are the authority.
            HTTP_CONTENT_TYPE="text/plain",
            HTTP_CONTENT_LENGTH="99",
        )
    )
    assert scope["headers"] == [
        (b"host", b"example.org"),
        (b"x-custom-thing", b"caf\xe9"),
        (b"cookie", b"a=1; b=2"),
        (b"content-type", b"application/json"),
        (b"content-length", b"12"),
    ]


@pytest.mark.parametrize(
    ("value", "length"),
    [("", None), ("abc", None), ("-1", None), (" 7 ", 7), ("0", 0), ("1\u0663", None)],
)
def test_empty_or_invalid_content_length_never_becomes_a_header(
    value: str, length: int | None
) -> None:
    environ = environ_for(CONTENT_LENGTH=value)
    assert content_length(environ) == length
    headers = dict(build_scope(environ)["headers"])
    assert headers.get(b"content-length") == (None if length is None else str(length).encode())


@pytest.mark.parametrize(
    ("extra", "client", "server"),
    [
        ({"REMOTE_ADDR": "::1", "REMOTE_PORT": "1"}, ("::1", 1), ("example.org", 8080)),
        ({"REMOTE_ADDR": "10.1.1.1"}, ("10.1.1.1", 0), ("example.org", 8080)),
        ({"SERVER_PORT": ""}, None, ("example.org", None)),
    ],
)
def test_client_and_server(
    extra: dict[str, str], client: tuple[str, int] | None, server: tuple[str, int | None]
) -> None:
    scope = build_scope(environ_for(**extra))
    assert scope["client"] == client
    assert scope["server"] == server


def test_state_is_a_shallow_copy() -> None:
    shared = {"pool": object()}
    scope = build_scope(environ_for(), state=shared)
    assert scope["state"] == shared
    scope["state"]["request_only"] = 1
    assert "request_only" not in shared


@pytest.mark.parametrize(
    ("status", "line"), [(200, "200 OK"), (404, "404 Not Found"), (599, "599 Unknown")]
)
def test_status_line(status: int, line: str) -> None:
    assert status_line(status) == line


@pytest.mark.parametrize("status", [99, 1000, "200", None, True])
def test_status_line_refuses_nonsense(status: object) -> None:
    with pytest.raises(ProtocolError, match=r"http\.response\.start"):
        status_line(status)


def test_status_line_cache_keeps_refusing_look_alikes() -> None:
    # Lines are cached by code; a float or a bool hashing like a cached code is no code.
    assert status_line(200) == status_line(200) == "200 OK"
    for look_alike in (200.0, True):
        with pytest.raises(ProtocolError, match=r"http\.response\.start"):
            status_line(look_alike)
    assert status_line(http.HTTPStatus.NOT_FOUND) == "404 Not Found"


def test_headers_of_requests_alike_are_their_own() -> None:
    # The header names are cached per tuple of environ keys: the values, and the order
    # of another request with the same keys, must still be that request's own.
    first = build_scope(environ_for(HTTP_HOST="a.example", HTTP_ACCEPT="*/*"))
    second = build_scope(environ_for(HTTP_HOST="b.example", HTTP_ACCEPT="text/html"))
    assert first["headers"] == [(b"host", b"a.example"), (b"accept", b"*/*")]
    assert second["headers"] == [(b"host", b"b.example"), (b"accept", b"text/html")]
    swapped = build_scope(environ_for(HTTP_ACCEPT="text/css", HTTP_HOST="c.example"))
    assert swapped["headers"] == [(b"accept", b"text/css"), (b"host", b"c.example")]


def test_wsgi_headers_decode_latin1_and_drop_hop_by_hop() -> None:
    assert wsgi_headers(
        [(b"content-type", b"text/plain"), (b"connection", b"close"), (b"x-name", b"caf\xe9")]
    ) == [("content-type", "text/plain"), ("x-name", "caf\u00e9")]


@pytest.mark.parametrize(
    ("value", "handed"),
    [(b" csrftoken=abc; Path=/", "csrftoken=abc; Path=/"), (b"\tv \t", "v"), (b"a  b", "a  b")],
)
def test_wsgi_headers_strip_surrounding_whitespace(value: bytes, handed: str) -> None:
    # RFC 9110 5.5: a field value has no leading or trailing whitespace.
    assert wsgi_headers([(b"set-cookie", value)]) == [("set-cookie", handed)]


@pytest.mark.parametrize(
    "pair",
    [(b"x-a", b"1\r\nSet-Cookie: evil=1"), (b"x-a", b"\x00"), (b"bad name", b"1"), ("x-a", "1")],
)
def test_wsgi_headers_refuse_response_splitting(pair: tuple[Any, Any]) -> None:
    with pytest.raises(ProtocolError, match="header"):
        wsgi_headers([pair])


# ---- round trips with WsgiToAsgi's translation ---------------------------------------

_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-!#$%&'*+.^`|~"
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_segment = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="/"), min_size=1, max_size=10
)
_header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=20
)
_header_names = st.text(_TOKEN_CHARS, min_size=1, max_size=12).filter(
    lambda name: name not in ("content-length",)
)


@st.composite
def http_scopes(draw: st.DrawFn) -> dict[str, Any]:
    root_path = draw(st.one_of(st.just(""), _segment.map(lambda s: "/" + s)))
    path = root_path + "/" + draw(_text)
    headers = draw(st.dictionaries(_header_names, _header_value, max_size=6))
    length = draw(st.none() | st.integers(0, 10**12))
    raw_headers = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
    if length is not None:
        raw_headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": draw(st.sampled_from(["1.0", "1.1", "2"])),
        "method": draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])),
        "scheme": draw(st.sampled_from(["http", "https"])),
        "path": path,
        "root_path": root_path,
        "query_string": draw(st.binary(max_size=30)),
        "headers": raw_headers,
        "client": draw(st.tuples(st.ip_addresses().map(str), st.integers(1, 65535))),
        "server": draw(
            st.tuples(st.sampled_from(["localhost", "example.org"]), st.integers(1, 65535))
        ),
    }


@given(http_scopes())
def test_round_trip_scope_environ_scope_keeps_shared_fields(scope: dict[str, Any]) -> None:
    again = build_scope(build_environ(scope, io.BytesIO()))
    for key in ("http_version", "method", "scheme", "path", "root_path", "query_string"):
        assert again[key] == scope[key], key
    assert again["client"] == scope["client"]
    assert again["server"] == scope["server"]
    assert sorted(again["headers"]) == sorted(scope["headers"])


@given(
    path_info=st.text(st.characters(max_codepoint=0xFF), max_size=20).map(lambda s: "/" + s),
    query=st.text(st.characters(max_codepoint=0xFF), max_size=20),
)
def test_round_trip_environ_scope_environ_keeps_latin1_strings(path_info: str, query: str) -> None:
    # Whatever bytes a WSGI server put in PATH_INFO survive when they are UTF-8; the
    # query string always survives byte for byte.
    scope = build_scope(environ_for(PATH_INFO=path_info, QUERY_STRING=query))
    environ = build_environ(scope, io.BytesIO())
    assert environ["QUERY_STRING"] == query
    try:
        path_info.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return
    assert environ["PATH_INFO"] == path_info
