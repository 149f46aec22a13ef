"""The Flask and Django apps of the framework sections, as users write them.

Each framework serves the same two routes:

- ``/``: ``Hello, world!`` (:data:`benchmarks.apps.HELLO`) as ``text/plain``;
- ``/page``: a realistic page: 50 rows read from SQLite on every request (a new
  connection per request, as Flask's ``g.db`` teardown pattern and Django's default
  ``CONN_MAX_AGE = 0`` both do), rendered through :data:`PAGE_TEMPLATE`, a template of
  about 17 KiB, by the framework's own engine (Jinja for Flask, Django's for Django),
  loaded once and cached as each framework caches it.

The SQLite file is created with its 50 rows in the temporary directory by the first
server process that needs it, and read by every other (:func:`database`).
Django is configured in code with the middleware of ``django-admin startproject``: none
of the seven touches the database unless a view reads the session or the user, which
these views do not (``/`` opens no connection at all).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.apps import HELLO

if TYPE_CHECKING:
    # Annotations only: a server of ``run.py --baseline`` imports an older adapter.
    from adapter._types import WSGIApp

ROWS = 50
PAGE_END = "<!-- end of page -->"
QUERY = "SELECT id, name, description, price, in_stock FROM items ORDER BY id LIMIT 50"

_ROW = """
      <tr class="item">
        <td class="id">{{ item.id }}</td>
        <td class="name"><a href="/items/{{ item.id }}">{{ item.name }}</a></td>
        <td class="description">{{ item.description }}</td>
        <td class="price">{{ item.price }}</td>
        <td class="stock">{% if item.in_stock %}in stock{% else %}sold out{% endif %}</td>
      </tr>"""

_STYLE = "\n".join(
    f"      .c{index} {{ margin: {index % 7}px; padding: {index % 5}px {index % 3}px; "
    f"color: #{index * 2654435761 % 0xFFFFFF:06x}; border-bottom: 1px solid #eee; }}"
    for index in range(90)
)
_FOOTER = "\n".join(
    f'      <p class="c{index % 90}">Section {index}: shipping, returns and warranty '
    "terms apply as described in the customer agreement; prices include VAT.</p>"
    for index in range(60)
)

# The syntax below means the same in Jinja and in Django's template language, so both
# frameworks render the same page from the same source.
PAGE_TEMPLATE = f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{{{{ title }}}}</title>
    <style>
{_STYLE}
    </style>
  </head>
  <body>
    <h1>{{{{ title }}}}</h1>
    <table>
      <tr><th>#</th><th>name</th><th>description</th><th>price</th><th>stock</th></tr>
      {{% for item in items %}}{_ROW}
      {{% endfor %}}
    </table>
    <footer>
{_FOOTER}
    </footer>
  </body>
</html>
{PAGE_END}
"""


@functools.cache
def database() -> Path:
    """The SQLite file with its :data:`ROWS` rows, created if it is not there yet.

    One file in the temporary directory serves every server process of a run (and of
    the next run): a server stopped by a signal runs no clean-up, so a file per process
    would be left behind.  It is written under another name and renamed into place, so
    processes starting together never see half a file.
    """
    path = Path(tempfile.gettempdir()) / f"adapter-bench-items-{ROWS}.sqlite3"
    if path.exists():
        return path
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    connection = sqlite3.connect(partial)
    with connection:
        connection.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, description TEXT,"
            " price REAL, in_stock INTEGER)"
        )
        connection.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
            [
                (number, f"Item <{number}>", f"A sturdy thing & a fine one, number {number}",
                 number * 1.25, number % 3 != 0)
                for number in range(1, ROWS + 1)
            ],
        )  # fmt: skip
    connection.close()
    os.replace(partial, path)
    return path


def _items(cursor: Any) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def flask_app() -> WSGIApp:
    """The Flask app (routes in the module docstring)."""
    from flask import Flask, render_template
    from jinja2 import DictLoader

    path = database()
    app = Flask("adapter_bench")
    app.jinja_env.loader = DictLoader({"page.html": PAGE_TEMPLATE})

    @app.get("/")
    def hello() -> tuple[bytes, int, dict[str, str]]:
        return HELLO, 200, {"Content-Type": "text/plain"}

    @app.get("/page")
    def page() -> str:
        connection = sqlite3.connect(path)
        try:
            items = _items(connection.execute(QUERY))
        finally:
            connection.close()
        return render_template("page.html", title="Items", items=items)

    wsgi: WSGIApp = app
    return wsgi


@functools.cache
def django_app() -> WSGIApp:
    """The Django app (routes in the module docstring), configured once per process."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-not-a-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        # django-admin startproject's list, in its order.
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database())}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                (
                                    "django.template.loaders.locmem.Loader",
                                    {"page.html": PAGE_TEMPLATE},
                                )
                            ],
                        )
                    ]
                },
            }
        ],
        USE_TZ=True,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    app: WSGIApp = get_wsgi_application()
    return app


def _django_hello(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(HELLO, content_type="text/plain")


def _django_page(request: Any) -> Any:
    from django.db import connection
    from django.shortcuts import render

    with connection.cursor() as cursor:
        cursor.execute(QUERY)
        items = _items(cursor)
    return render(request, "page.html", {"title": "Items", "items": items})


def __getattr__(name: str) -> Any:
    # ROOT_URLCONF is this module: Django reads ``urlpatterns`` only after setup().
    if name == "urlpatterns":
        from django.urls import path

        return [path("", _django_hello), path("page", _django_page)]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
