"""A plain synchronous Django view."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest, JsonResponse


def user_count(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"users": User.objects.count(), "path": request.get_full_path()})
