"""Benchmarks for adapter against its peers (a2wsgi, asgiref) and native servers.

Run ``python benchmarks/run.py`` (``--quick`` for a smoke run); see ``benchmarks/README.md``.
Nothing here is imported by the library or its tests.
"""

from __future__ import annotations
