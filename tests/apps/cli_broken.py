"""A module that fails to import, as a misconfigured project does."""

from __future__ import annotations

raise RuntimeError("DATABASE_URL is not set")
