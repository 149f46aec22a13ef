"""Threads and event loops, under ``WsgiToAsgi``, ``AsgiToWsgi`` and the sync helpers.

Nothing here imports a direction package (``adapter.wsgi_to_asgi.responder``,
``adapter.asgi_to_wsgi.app``) or ``adapter.sync``: they stand on it.
"""
