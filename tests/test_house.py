"""The package's shape: layers without circles, pure translation modules, public APIs only.

Read from the source with :mod:`ast`, so the rules hold for every module whether or not a
test imports it:

- no import cycles between adapter's modules, and no import from a lower layer to a
  higher one (``_runtime`` never imports a direction package, the helpers or the CLI);
- ``environ.py`` and ``scope.py`` are pure translation: no I/O, threads or event loops;
- no private attribute of anything adapter does not define itself (``loop._x``,
  ``asyncio._x``, ``Task.__step``), and no subclass of asyncio's futures or tasks;
- nothing outside ``_runtime`` asks whether it runs on asyncio or trio.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "adapter"

# Lower layers first; a module may import only from its own layer or lower ones.
LAYERS: dict[str, int] = {
    "adapter.exceptions": 0,
    "adapter._types": 0,
    "adapter._http": 0,
    "adapter._runtime": 1,
    "adapter.sync": 2,
    "adapter.wsgi_to_asgi": 2,
    "adapter.asgi_to_wsgi": 2,
    "adapter": 3,  # the public face
    "adapter.cli": 4,
    "adapter.__main__": 5,
}

PURE_MODULES = ("adapter.wsgi_to_asgi.environ", "adapter.asgi_to_wsgi.scope")
PURE_ALLOWED = {
    "__future__",
    "collections",
    "collections.abc",
    "functools",
    "http",
    "re",
    "sys",
    "typing",
    "urllib",
    "urllib.parse",
    "adapter._http",
    "adapter._types",
    "adapter.exceptions",
}

# What asks "which backend is this?": allowed only in adapter/_runtime/.
BACKEND_MODULES = {"asyncio", "trio", "sniffio", "uvloop"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(tree: ast.Module, *, at_run_time: bool = True) -> Iterator[str]:
    """The names of the modules ``tree`` imports (for ``from x import y``: x, and x.y)."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if at_run_time and _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def layer_of(name: str) -> int | None:
    best: str | None = None
    for prefix in LAYERS:
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return None if best is None else LAYERS[best]


def adapter_graph() -> dict[str, set[str]]:
    found = modules()
    graph: dict[str, set[str]] = {}
    for name, tree in found.items():
        graph[name] = {
            target
            for target in imports(tree)
            if target in found and target != name and target != "adapter"
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph[node]):
            cycle = visit(target)
            if cycle is not None:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle is not None:
            return cycle
    return None


def test_the_walk_sees_every_module_and_its_imports() -> None:
    graph = adapter_graph()
    assert "adapter.wsgi_to_asgi.responder" in graph
    assert "adapter._runtime.shared_loop" in graph
    assert "adapter.wsgi_to_asgi.call" in graph["adapter.wsgi_to_asgi.responder"]
    assert "adapter._runtime._asyncio" in graph["adapter._runtime.loops"]


def test_no_import_cycles() -> None:
    assert find_cycle(adapter_graph()) is None


def test_find_cycle_finds_one() -> None:
    """The checker itself: a circle is found, a tree is not."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_runs_back_up_a_layer() -> None:
    uphill = []
    for name, targets in adapter_graph().items():
        own = layer_of(name)
        assert own is not None, f"{name} has no layer in LAYERS: add it"
        for target in targets:
            theirs = layer_of(target)
            assert theirs is not None, f"{target} has no layer in LAYERS: add it"
            if theirs > own:
                uphill.append(f"{name} -> {target}")
    assert uphill == []


@pytest.mark.parametrize("name", PURE_MODULES)
def test_translation_modules_are_pure(name: str) -> None:
    tree = modules()[name]
    impure = {
        target
        for target in imports(tree, at_run_time=False)
        if not any(target == ok or target.startswith(ok + ".") for ok in PURE_ALLOWED)
    }
    assert impure == set(), f"{name} imports what does I/O, threads or loops"


def own_private_names(trees: dict[str, ast.Module]) -> set[str]:
    """Every ``_name`` adapter defines: functions, classes, attributes, slots, arguments."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)  # __slots__ entries
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[-1])
    return {name for name in names if name.startswith("_")}


def foreign_private_uses(trees: dict[str, ast.Module]) -> list[str]:
    own = own_private_names(trees)
    found = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attr = node.attr
                dunder = attr.startswith("__") and attr.endswith("__")
                if attr.startswith("_") and not dunder and attr not in own:
                    found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                foreign = not node.module.startswith("adapter")
                for alias in node.names:
                    if foreign and alias.name.startswith("_") and alias.name != "__future__":
                        found.append(
                            f"{name}:{node.lineno}: from {node.module} import {alias.name}"
                        )
            elif isinstance(node, ast.ClassDef):
                for base in node.bases:
                    text = ast.unparse(base)
                    if text.startswith(("asyncio.Future", "asyncio.Task")):
                        found.append(f"{name}:{node.lineno}: class {node.name}({text})")
    return found


def test_no_private_api_of_others() -> None:
    assert foreign_private_uses(modules()) == []


def test_the_private_api_check_catches_each_kind() -> None:
    """The checker itself, on code that leans on others' internals."""
    tree = ast.parse(
        "import asyncio\n"
        "class Waiter(asyncio.Future):\n"
        "    pass\n"
        "def wake(loop):\n"
        "    loop._write_to_self()\n"
        "    asyncio._get_running_loop()\n"
        "    self._own = 1\n"
        "    return self._own\n"
    )
    found = foreign_private_uses({"example": tree})
    assert found == [
        "example:2: class Waiter(asyncio.Future)",
        "example:5: loop._write_to_self",
        "example:6: asyncio._get_running_loop",
    ]


def test_only_the_runtime_asks_which_backend_runs() -> None:
    asking = sorted(
        f"{name} imports {target}"
        for name, tree in modules().items()
        if not name.startswith("adapter._runtime")
        for target in imports(tree)
        if target.split(".")[0] in BACKEND_MODULES
    )
    assert asking == []
