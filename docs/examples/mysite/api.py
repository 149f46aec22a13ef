"""An async Starlette API that reads the Django ORM through sync_to_async."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402  (after django.setup())
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from adapter import AsgiToWsgi, sync_to_async  # noqa: E402


@sync_to_async
def newest_usernames(limit: int) -> list[str]:
    # The ORM is synchronous and refuses to run on an event loop thread.  With the
    # default thread_sensitive=True every ORM call runs in the same thread (under a
    # WSGI server: the request's own thread), as Django's connection handling expects.
    newest = User.objects.order_by("-date_joined", "-id")
    return list(newest.values_list("username", flat=True)[:limit])


async def users(request: Request) -> JSONResponse:
    limit = int(request.query_params.get("limit", "3"))
    return JSONResponse({"newest": await newest_usernames(limit)})


api = Starlette(routes=[Route("/users", users)])

# The same API on a WSGI server: gunicorn mysite.api:application
application = AsgiToWsgi(api)
