"""The house's structure, read from the code with ``ast``: what docs/architecture.md
promises a contributor holds.

Every import counts, function-level ones included (they run too, only later). A
failure names each offending module and import, so the fix is where it says.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "voip24h"
TESTS = ROOT / "tests"
MAX_LINES = 400
MAX_TOP_MODULES = 8

# The layers, bottom first: a module may import its own layer (without a cycle) and
# the layers below, never a layer above. Each name is a top-level package or module
# of voip24h. Settings (config) sit above db: they validate with domain's parsers and
# db's URL schemes, and nothing below them reads settings (they take plain values).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__init__", "errors"}),
    frozenset({"domain"}),
    frozenset({"wire"}),
    frozenset({"db"}),
    frozenset({"config"}),
    frozenset({"service"}),
    frozenset({"server", "ingest", "pbx"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
# The partners' client stands apart: it imports nothing of the server's house, and
# nothing of the house imports it but the command line (`voip24h query`).
SEPARATE = "client"
CLIENT_USERS = frozenset({"cli"})


@dataclass(frozen=True)
class Import:
    """One import of a voip24h module, where it is written."""

    source: str  # the importing module, dotted
    target: str  # the imported module, dotted
    names: tuple[str, ...]  # what ``from target import ...`` takes; () for ``import``
    line: int

    def __str__(self) -> str:
        taken = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.source}:{self.line} -> {self.target}{taken}"


def module_name(path: Path, root: Path) -> str:
    """The dotted name of a module file below ``root`` (a package is its __init__)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path) -> list[Path]:
    """Every Python file below ``root``."""
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


@cache
def src_modules() -> dict[str, Path]:
    """voip24h's modules by dotted name."""
    return {module_name(p, SRC): p for p in python_files(PACKAGE)}


def is_package(name: str) -> bool:
    """True when the dotted name is a package (a folder with __init__.py)."""
    path = src_modules().get(name)
    return path is not None and path.name == "__init__.py"


def resolve(source: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = source.split(".")
    if not is_package(source):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every import of a voip24h module in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "voip24h":
                    yield Import(name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = resolve(name, node)
            if target.split(".")[0] != "voip24h":
                continue
            taken = tuple(alias.name for alias in node.names)
            # ``from voip24h.db import bulk`` imports the module voip24h.db.bulk.
            modules = [n for n in taken if f"{target}.{n}" in src_modules()]
            others = tuple(n for n in taken if n not in modules)
            for module in modules:
                yield Import(name, f"{target}.{module}", (), node.lineno)
            if others:
                yield Import(name, target, others, node.lineno)


@cache
def src_imports() -> tuple[Import, ...]:
    """Every import between voip24h's modules."""
    return tuple(i for name, path in src_modules().items() for i in imports_of(name, path))


def top(name: str) -> str:
    """The top-level package or module a dotted voip24h name belongs to."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(name: str) -> int:
    """The index in LAYERS of a voip24h module."""
    for index, members in enumerate(LAYERS):
        if top(name) in members:
            return index
    raise AssertionError(f"{name}: its package is in no layer of LAYERS")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), plus any
    module that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_few_modules_stay_at_the_top():
    top_modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top_modules) <= MAX_TOP_MODULES, top_modules


def test_no_module_is_over_400_lines():
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in python_files(PACKAGE)
    }
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


def test_no_import_cycle_function_level_imports_included():
    edges: dict[str, set[str]] = {}
    for imp in src_imports():
        if imp.target in src_modules() and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    found = cycles(edges)
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_layers_only_point_down():
    upward = []
    for imp in src_imports():
        if imp.target not in src_modules():
            upward.append(f"{imp}: no such module")
            continue
        source, target = top(imp.source), top(imp.target)
        if SEPARATE in (source, target):
            allowed = source == target or (target == SEPARATE and source in CLIENT_USERS)
        else:
            allowed = layer_of(imp.target) <= layer_of(imp.source)
        if not allowed:
            upward.append(str(imp))
    assert not upward, "\n".join(upward)


def test_every_package_has_a_layer():
    tops = {top(name) for name in src_modules()} - {SEPARATE}
    assert tops <= set().union(*LAYERS)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    """``from m import _x`` and ``m._x`` across modules. A private module (``_core``)
    serves its own package only."""
    used = []
    for imp in src_imports():
        package = imp.source.rsplit(".", 1)[0] if not is_package(imp.source) else imp.source
        leaf = imp.target.rsplit(".", 1)[-1]
        if _private(leaf) and not imp.target.startswith(package + "."):
            used.append(f"{imp}: a private module of another package")
        for taken in imp.names:
            if _private(taken) and imp.target != imp.source:
                used.append(f"{imp}: {taken}")
    for name, path in src_modules().items():
        tree = ast.parse(path.read_text(), str(path))
        aliases = {  # names bound to one of our modules: ``from voip24h.x import y``
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and resolve(name, node).startswith("voip24h")
            for alias in node.names
            if f"{resolve(name, node)}.{alias.name}" in src_modules()
        } | {  # ``import voip24h.x.y as z``
            alias.asname
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.asname and alias.name in src_modules()
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                used.append(f"{name}:{node.lineno} -> {node.value.id}.{node.attr}")
    assert not used, "\n".join(used)


def test_no_test_module_imports_another_test_module():
    """Shared helpers live in tests/builders.py, tests/support.py and the like, which
    are not test modules (test_*.py)."""
    found = []
    for path in python_files(TESTS):
        name = module_name(path, ROOT)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                if target.split(".")[0] == "tests" and target.split(".")[-1].startswith("test_"):
                    found.append(f"{name}:{node.lineno} -> {target}")
    assert not found, "\n".join(found)


def test_the_architecture_map_names_every_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = sorted(
        str(path.parent.relative_to(PACKAGE)) for path in PACKAGE.rglob("__init__.py")
    )
    missing = [p for p in packages if p != "." and f"{p}/" not in text]
    assert not missing, "\n".join(missing)
