"""An app with its own logging configuration, as a Django project has.

Its factory logs one record through a logger that has its own handler and still
propagates to the root logger (Django's ``django`` logger is set up that way), so a
command line that gave the root logger a handler too would print the record twice.
"""

from __future__ import annotations

import logging
import sys

from adapter._types import WSGIApp
from tests.apps.cli_wsgi import app

MESSAGE = "cli_logging: the app's own record"

app_logger = logging.getLogger("cli_logging")
app_logger.setLevel(logging.INFO)
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("app-format %(levelname)s %(message)s"))
app_logger.addHandler(_handler)


def create_app() -> WSGIApp:
    """Log one warning, as an app does while it starts, and return a plain WSGI app."""
    app_logger.warning(MESSAGE)
    return app
