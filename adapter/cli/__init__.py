"""``python -m adapter``: the command line (:mod:`adapter.cli.main`).

``worker_app`` is what a server's worker processes import (``adapter.cli:worker_app``)
to build the same app the command line chose.
"""

from __future__ import annotations

from adapter.cli.main import worker_app

__all__ = ["worker_app"]
