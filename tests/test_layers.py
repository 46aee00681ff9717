"""The layers point one way: spec language <- compiler <- runtime <- application.

Every `import` in the source is read with `ast` (module level and inside functions, so lazy imports count too),
resolved to the archspec module it names, and checked: an import may point to its own layer or one below, and
no two modules may import each other, directly or through others. There is no list of exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# source folder -> the package it installs as
SOURCES = {"archspec": "archspec", "compiler": "archspec.compiler", "runtime": "archspec.runtime"}
LAYERS = ["language", "compiler", "runtime", "application"]  # bottom to top


def layer_of(module: str) -> str:
    if module == "archspec.lang" or module.startswith("archspec.lang."):
        return "language"
    if module == "archspec.compiler" or module.startswith("archspec.compiler."):
        return "compiler"
    if module == "archspec.runtime" or module.startswith("archspec.runtime."):
        return "runtime"
    return "application"  # the package itself (the Python API), the CLI and its commands


def source_modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder, package in SOURCES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if folder == "archspec" and name.startswith(("archspec.compiler", "archspec.runtime")):
                continue  # an installed copy inside the source folder, if any
            out[name] = path
    return out


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported archspec module, line) for every import statement in the file, nested ones included."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                if not is_package:
                    parts = parts[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from package import module` imports the module; `from module import name` the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            if name == "archspec" or name.startswith("archspec."):
                while name not in known and "." in name:
                    name = name.rsplit(".", 1)[0]  # `import archspec.lang.ops.x as y` names a module in it
                out.append((name, node.lineno))
    return out


def import_graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    modules = source_modules()
    known = set(modules)
    return modules, {m: imports_of(m, p, known) for m, p in modules.items()}


def test_the_walk_sees_lazy_imports_and_every_layer():
    modules, graph = import_graph()
    assert {layer_of(m) for m in modules} == set(LAYERS)
    # the Python API imports the compiler only inside its functions: the walk must still see it
    assert any(target.startswith("archspec.compiler") for target, _ in graph["archspec"])


def test_imports_only_point_down():
    modules, graph = import_graph()
    upward = []
    for module, targets in graph.items():
        for target, line in targets:
            if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module)):
                upward.append(f"{modules[module].relative_to(ROOT)}:{line}: {module} ({layer_of(module)}) imports "
                              f"{target} ({layer_of(target)})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_module_imports_itself_through_others():
    """No cycle between modules (the project's one cycle search, on the import graph)."""
    from archspec.compiler.dag import find_cycle

    _, graph = import_graph()
    edges = {m: sorted({t for t, _ in ts if t != m}) for m, ts in graph.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "an import cycle: " + " -> ".join(cycle + cycle[:1])  # each is imported by the next


def test_the_language_layer_imports_no_torch():
    """The registry describes ops; their torch form (modules, functions, initialisation) is the compiler's."""
    found = []
    for module, path in source_modules().items():
        if layer_of(module) != "language":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "torch"]
    assert not found, "torch imported by the language layer:\n" + "\n".join(found)
