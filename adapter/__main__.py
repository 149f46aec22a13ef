"""``python -m adapter``: the command line, which lives in :mod:`adapter.cli.main`."""

from __future__ import annotations

from adapter.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
