"""A Django project in one module, served through WsgiToAsgi by its WSGI handler.

Importing it configures Django's settings (once per process), as a test must.
"""

from __future__ import annotations

from collections.abc import Iterator

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

# These imports need the settings above.
from django.core.wsgi import get_wsgi_application
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path

from adapter import WsgiToAsgi


def hello(request: HttpRequest) -> HttpResponse:
    """JSON, with the path Django resolved and the script prefix."""
    return JsonResponse({"hello": "django", "path": request.path, "path_info": request.path_info})


def echo(request: HttpRequest) -> HttpResponse:
    """Echo a posted form and the size of the body."""
    return JsonResponse({"form": request.POST.dict(), "query": request.GET.dict()})


def stream(request: HttpRequest) -> HttpResponse:
    """A streamed body from a generator."""

    def generate() -> Iterator[bytes]:
        for number in range(5):
            yield f"chunk {number}\n".encode()

    return StreamingHttpResponse(generate(), content_type="text/plain")


urlpatterns = [path("hello", hello), path("echo", echo), path("stream", stream)]

application = get_wsgi_application()
asgi = WsgiToAsgi(application)
