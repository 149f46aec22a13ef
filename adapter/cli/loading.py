"""Loading the app ``python -m adapter serve`` names, and telling WSGI from ASGI.

Apart from the command line's options and from starting servers, so that the command
line and the worker processes (:func:`adapter.cli.worker_app`) load an app the same way.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from adapter.cli.servers import Protocol, is_coroutine_callable

__all__ = ["CommandError", "detect_interface", "load_app", "one_line"]


class CommandError(Exception):
    """A mistake in the command line's input, shown as one line on stderr.

    Raised by :func:`load_app` and :func:`detect_interface`, and by ``serve`` for a
    missing server or a busy port; :func:`adapter.cli.main` turns it into exit status 1.
    """


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for an exception raised by the user's code."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _import_module(module_part: str, spec: str) -> tuple[Any, str]:
    """Import the module half of ``APP``; return it and the import path entry it needs."""
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        path = Path(module_part).resolve()
        if not path.is_file():
            raise CommandError(f"APP {spec!r}: there is no file {module_part!r}")
        # Import the file as part of its package (directories with __init__.py), so
        # its relative imports work, as `python -m` would.
        parts = [] if path.stem == "__init__" else [path.stem]
        root = path.parent
        while (root / "__init__.py").is_file():
            parts.insert(0, root.name)
            root = root.parent
        name = ".".join(parts)
    else:
        name, root = module_part, Path.cwd()
        path = None
    import_path = str(root)
    if import_path not in sys.path:
        sys.path.insert(0, import_path)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise CommandError(
                f"APP {spec!r}: no module named {exc.name!r} "
                f"(run from the project's directory, or add it to PYTHONPATH)"
            ) from None
        raise CommandError(f"APP {spec!r}: importing {name!r} failed: {one_line(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise CommandError(f"APP {spec!r}: importing {name!r} failed: {one_line(exc)}") from None
    found = getattr(module, "__file__", None)
    if path is not None and (found is None or Path(found).resolve() != path):
        raise CommandError(
            f"APP {spec!r}: the name {name!r} is already taken by {found or 'a built-in'}; "
            f"rename the file"
        )
    return module, import_path


def load_app(spec: str, *, factory: bool = False) -> tuple[Any, str]:
    """Import the application named by ``spec``; return it and its import path entry.

    :param spec: ``module:attribute`` or ``path/to/file.py:attribute``; the attribute
        may be dotted (``module:obj.app``).
    :param factory: call the attribute with no arguments and serve what it returns.
    :raises CommandError: when ``spec`` is malformed, the module does not import (its
        own error is in the message), the attribute is missing, or the factory fails.
    """
    module_part, colon, attribute = spec.rpartition(":")
    if not colon or not module_part or not attribute:
        raise CommandError(
            f"APP {spec!r} must be 'module:attribute' or 'path/to/file.py:attribute' "
            f"(for example 'myproject.wsgi:application')"
        )
    module, import_path = _import_module(module_part, spec)
    app: Any = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise CommandError(
                f"APP {spec!r}: {module.__name__!r} has no attribute {attribute!r}"
            ) from None
        except Exception as exc:
            raise CommandError(f"APP {spec!r}: getting {name!r} failed: {one_line(exc)}") from None
    if factory:
        if not callable(app):
            raise CommandError(
                f"APP {spec!r}: --factory needs a callable, got {type(app).__name__}"
            )
        try:
            app = app()
        except Exception as exc:
            raise CommandError(f"APP {spec!r}: the factory raised {one_line(exc)}") from None
    return app, import_path


def _positional_range(app: Any) -> tuple[int, float] | None:
    """How many positional arguments ``app`` takes (fewest, most), or None if unknown."""
    try:
        parameters = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    fewest = sum(p.kind in positional and p.default is p.empty for p in parameters)
    most: float = sum(p.kind in positional for p in parameters)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        most = float("inf")
    return fewest, most


def detect_interface(app: Any, requested: str, spec: str) -> Protocol:
    """Tell whether ``app`` is a WSGI or an ASGI application.

    With ``requested`` ``"auto"``: an ``async def`` function or ``__call__`` is ASGI; a
    plain callable taking ``(environ, start_response)`` is WSGI.

    :param app: the loaded application.
    :param requested: ``"auto"``, ``"wsgi"`` or ``"asgi"`` (``--interface``).
    :param spec: the ``APP`` argument, for messages.
    :raises CommandError: when ``app`` is not callable, takes the wrong arguments, or
        can not be told apart (a class, ``*args``, a plain callable taking three
        arguments); the message asks for ``--interface``.
    """
    if not callable(app):
        raise CommandError(
            f"APP {spec!r} is not an application: a {type(app).__name__} is not callable "
            f"(WSGI apps take (environ, start_response), ASGI apps (scope, receive, send))"
        )
    if requested in ("wsgi", "asgi"):
        return "wsgi" if requested == "wsgi" else "asgi"
    if is_coroutine_callable(app):
        return "asgi"
    ask = "; pass --interface wsgi or --interface asgi"
    if inspect.isclass(app):
        raise CommandError(f"cannot tell whether the class {spec!r} is WSGI or ASGI{ask}")
    arguments = _positional_range(app)
    if arguments is None:
        raise CommandError(f"cannot tell whether {spec!r} is WSGI or ASGI (no signature){ask}")
    fewest, most = arguments
    takes_two, takes_three = fewest <= 2 <= most, fewest <= 3 <= most
    if takes_two and not takes_three:
        return "wsgi"
    if takes_three:
        raise CommandError(
            f"cannot tell whether {spec!r} is WSGI or ASGI: it is not 'async def' "
            f"but could take (scope, receive, send){ask}"
        )
    raise CommandError(
        f"APP {spec!r} is not an application: it takes {fewest} positional argument(s) "
        f"(WSGI apps take (environ, start_response), ASGI apps (scope, receive, send))"
    )
