"""Phusion Passenger loads ``application`` from passenger_wsgi.py in the app's root."""

from __future__ import annotations

from hello_fastapi import api

from adapter import AsgiToWsgi

application = AsgiToWsgi(api)
