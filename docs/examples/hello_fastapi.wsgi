"""The WSGI script file mod_wsgi loads: it must define ``application``."""

from __future__ import annotations

import sys
from pathlib import Path

# mod_wsgi does not put the script's directory on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter import AsgiToWsgi  # noqa: E402
from hello_fastapi import api  # noqa: E402

application = AsgiToWsgi(api)
