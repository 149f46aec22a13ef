"""The same Django project, served by an ASGI server through WsgiToAsgi."""

from __future__ import annotations

from adapter import WsgiToAsgi
from mysite.wsgi import application as django_wsgi_app

# Django's request handling, middleware and views stay exactly as they are under a
# WSGI server: each request runs in a worker thread, so the ORM is used as always.
application = WsgiToAsgi(django_wsgi_app)
