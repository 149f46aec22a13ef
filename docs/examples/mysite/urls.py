"""URLs of the example project."""

from __future__ import annotations

from django.urls import path

from mysite import views

urlpatterns = [path("users/", views.user_count)]
