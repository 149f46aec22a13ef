"""adapter.wsgi_to_asgi.environ: scope -> PEP 3333 environ, status and header checks
(pure, table-driven)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from adapter._types import Scope
from adapter.exceptions import ProtocolError
from adapter.wsgi_to_asgi.environ import build_environ, decode_path, encode_headers, parse_status


def scope_of(**fields: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 51000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(fields)
    return scope


def test_the_basic_keys() -> None:
    body = io.BytesIO(b"")
    scope = scope_of(method="POST", http_version="2", scheme="https")
    environ = build_environ(scope, body)
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == "8000"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == "51000"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.input"] is body
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["asgi.scope"] is scope
    assert all(type(value) is str for key, value in environ.items() if key.isupper())


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("", "/", "", "/"),
        ("", "/a/b", "", "/a/b"),
        ("/app", "/app/x", "/app", "/x"),
        ("/app", "/app", "/app", ""),
        ("/app", "/app/", "/app", "/"),
        # Not a segment boundary: /application is not under /app.
        ("/app", "/application", "/app", "/application"),
        # A server that leaves root_path out of path (older ASGI servers).
        ("/app", "/x", "/app", "/x"),
        ("", "/caf\u00e9", "", "/caf\u00c3\u00a9"),
        ("/r\u00e9", "/r\u00e9/\u2603", "/r\u00c3\u00a9", "/\u00e2\u0098\u0083"),
        # Undecodable bytes a server kept as surrogates come back as the bytes.
        ("", "/\udcff", "", "/\u00ff"),
    ],
)
def test_script_name_and_path_info(
    root_path: str, path: str, script_name: str, path_info: str
) -> None:
    environ = build_environ(scope_of(root_path=root_path, path=path), None)
    assert environ["SCRIPT_NAME"] == script_name
    assert environ["PATH_INFO"] == path_info


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        (b"", ""),
        (b"a=1&b=2", "a=1&b=2"),
        (b"q=%C3%A9", "q=%C3%A9"),
        (b"q=\xc3\xa9", "q=\u00c3\u00a9"),  # raw UTF-8 bytes, as latin-1 text
        (b"q=\xff\xfe", "q=\u00ff\u00fe"),  # not UTF-8 at all: still no crash
    ],
)
def test_query_string_is_latin1(query_string: bytes, expected: str) -> None:
    assert build_environ(scope_of(query_string=query_string), None)["QUERY_STRING"] == expected


@pytest.mark.parametrize(
    ("headers", "expected", "absent"),
    [
        ([(b"content-type", b"text/plain")], {"CONTENT_TYPE": "text/plain"}, ["HTTP_CONTENT_TYPE"]),
        ([(b"content-length", b"12")], {"CONTENT_LENGTH": "12"}, ["HTTP_CONTENT_LENGTH"]),
        ([(b"x-a", b"1"), (b"x-a", b"2")], {"HTTP_X_A": "1, 2"}, []),
        ([(b"cookie", b"a=1"), (b"cookie", b"b=2")], {"HTTP_COOKIE": "a=1; b=2"}, []),
        ([(b"Host", b"example.org")], {"HTTP_HOST": "example.org"}, []),
        ([(b"x-value", b"caf\xe9")], {"HTTP_X_VALUE": "caf\u00e9"}, []),
        # An underscore name can not pose as the dash one: it is dropped.
        (
            [(b"x_forwarded_for", b"6.6.6.6"), (b"x-forwarded-for", b"1.2.3.4")],
            {"HTTP_X_FORWARDED_FOR": "1.2.3.4"},
            [],
        ),
        ([(b"x_forwarded_for", b"6.6.6.6")], {}, ["HTTP_X_FORWARDED_FOR"]),
    ],
)
def test_headers(
    headers: list[tuple[bytes, bytes]], expected: dict[str, str], absent: list[str]
) -> None:
    environ = build_environ(scope_of(headers=headers), None)
    for key, value in expected.items():
        assert environ[key] == value
    for key in absent:
        assert key not in environ


@pytest.mark.parametrize(
    ("server", "scheme", "name", "port"),
    [
        (("10.0.0.1", 80), "http", "10.0.0.1", "80"),
        (("10.0.0.1", None), "https", "10.0.0.1", "443"),
        (None, "http", "localhost", "80"),
        (None, "https", "localhost", "443"),
        (("/tmp/sock", None), "http", "/tmp/sock", "80"),
    ],
)
def test_server_name_and_port(
    server: tuple[str, int | None] | None, scheme: str, name: str, port: str
) -> None:
    environ = build_environ(scope_of(server=server, scheme=scheme), None)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == (name, port)


def test_no_client_no_remote_keys() -> None:
    environ = build_environ(scope_of(client=None), None)
    assert "REMOTE_ADDR" not in environ
    assert "REMOTE_PORT" not in environ


def test_wsgi_errors_is_what_the_caller_gives() -> None:
    errors = io.StringIO()
    assert build_environ(scope_of(), None, errors)["wsgi.errors"] is errors


@pytest.mark.parametrize(("path", "native"), [("/", "/"), ("/\u00e9", "/\u00c3\u00a9")])
def test_decode_path(path: str, native: str) -> None:
    assert decode_path(path) == native


@pytest.mark.parametrize(
    ("status", "code"),
    [("200 OK", 200), ("404 Not Found", 404), ("599 Whatever It Is", 599), ("204 ", 204)],
)
def test_parse_status(status: str, code: int) -> None:
    assert parse_status(status) == code


@pytest.mark.parametrize(
    "status",
    ["200", "OK 200", "20 OK", "2000 OK", "200 OK\r\nX: y", "200 O\nK", "200 \0", b"200 OK", 200],
)
def test_parse_status_refuses(status: Any) -> None:
    with pytest.raises(ProtocolError, match="status"):
        parse_status(status)


def test_encode_headers() -> None:
    assert encode_headers([("Content-Type", "text/plain"), ("X-Caf", "caf\u00e9")]) == [
        (b"content-type", b"text/plain"),
        (b"x-caf", b"caf\xe9"),
    ]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        # Django's cookie headers (Morsel.output(header="")) start with a space.
        (" csrftoken=abc; Path=/", b"csrftoken=abc; Path=/"),
        ("\tv \t", b"v"),
        ("a  b", b"a  b"),  # inner whitespace is the value's own
        ("  ", b""),
        ("plain", b"plain"),
    ],
)
def test_encode_headers_strip_surrounding_whitespace(value: str, sent: bytes) -> None:
    # RFC 9110 5.5: no leading or trailing whitespace in a field value; h11 refuses it.
    assert encode_headers([("Set-Cookie", value)]) == [(b"set-cookie", sent)]


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ([("X-A", "1\r\nSet-Cookie: evil=1")], "CR, LF or NUL"),
        ([("X-A", "1\n")], "CR, LF or NUL"),
        ([("X-A", "1\0")], "CR, LF or NUL"),
        ([("X-A\r\n", "1")], "token"),
        ([("X A", "1")], "token"),
        ([("", "1")], "token"),
        ([("X-A", "\u2603")], "latin-1"),
        ([("X-A", 1)], "str"),
        ([(b"X-A", "1")], "str"),
        ([("X-A", "1", "2")], "tuple"),
        ([([1], "1")], "str"),
        ((("X-A", "1"),), "list"),
    ],
)
def test_encode_headers_refuses(headers: Any, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        encode_headers(headers)
