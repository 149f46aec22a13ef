"""Seeing, or quietening, what adapter logs."""

from __future__ import annotations

import logging

adapter_logger = logging.getLogger("adapter")

# More detail while investigating:
adapter_logger.setLevel(logging.DEBUG)

# Or nothing below errors in production:
adapter_logger.setLevel(logging.ERROR)
