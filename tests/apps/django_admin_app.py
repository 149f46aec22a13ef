"""A Django project with the admin, sessions and CSRF, served through WsgiToAsgi.

Its database is the SQLite file named by ``DJANGO_ADMIN_DB`` (the test migrates it
and creates a superuser first).  Django's WSGI handler writes its cookie headers with
a leading space (``Morsel.output(header="")``), which strict servers (uvicorn's h11)
refuse unless the value is stripped.
"""

from __future__ import annotations

import os

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get("DJANGO_ADMIN_DB", ":memory:"),
            }
        },
        # Tests only: a fast hasher, so logging in costs no measurable time.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
    )
    django.setup()

# These imports need the settings above.
from django.contrib import admin
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import path

from adapter import WsgiToAsgi


def form(request: HttpRequest) -> HttpResponse:
    """A form guarded by CSRF: GET shows it (and sets the cookie), POST echoes a field."""
    if request.method == "POST":
        return HttpResponse(f"posted {request.POST.get('name', '')}")
    return HttpResponse(
        f'<form method="post"><input name="csrfmiddlewaretoken" value="{get_token(request)}">'
        '<input name="name"></form>'
    )


urlpatterns = [path("admin/", admin.site.urls), path("form/", form)]

application = get_wsgi_application()
asgi = WsgiToAsgi(application)


def prepare_database(username: str, password: str) -> None:
    """Migrate the database and create a superuser (the test's setup runs this)."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    User.objects.create_superuser(username, "admin@example.com", password)
