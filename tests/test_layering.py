"""The package's structure: data flows one way (core → engines → deploy → web / cli), no import cycles.

Every ``import kvcalc…`` of every module under kvcalc/ is read with ``ast`` (imports inside functions
included: a lazy import is still a dependency); each layer may import only the layers listed for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kvcalc"

#: Layer → the layers it may import (itself always allowed). "top" is kvcalc/__init__, errors, compat…
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    "engines": {"errors", "core"},
    "deploy": {"errors", "core", "engines"},
    "web": {"errors", "core", "engines", "deploy"},
    "measure": {"errors", "core", "engines", "top"},
    "cli": {"errors", "core", "engines", "deploy", "measure", "top"},
    "top": {"errors", "core", "engines", "deploy", "cli"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "top"
    if parts[1] == "errors":
        return "errors"
    return parts[1] if parts[1] in ALLOWED else "top"


def _is_main_guard(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` — a script's entry point, not a dependency of the module."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If) and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name) and test.left.id == "__name__"
    )  # fmt: skip


def kvcalc_imports(path: Path) -> set[str]:
    """Every kvcalc module this file imports (``from kvcalc.x import y`` counts y when it is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if not _is_main_guard(n)]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "kvcalc"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "kvcalc":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
    return out


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    mine = layer(module)
    bad = sorted(
        imp for imp in kvcalc_imports(MODULES[module])
        if imp != "kvcalc" and layer(imp) != mine and layer(imp) not in ALLOWED[mine]
    )  # fmt: skip
    assert not bad, f"{module} ({mine}) imports {bad}; {mine} may import {sorted(ALLOWED[mine])}"


def test_core_never_imports_the_top_package() -> None:
    """``import kvcalc`` from the core would load engines, deploy and cli: a hidden cycle."""
    for module, path in MODULES.items():
        if layer(module) in {"core", "engines", "deploy", "errors"}:
            assert "kvcalc" not in kvcalc_imports(path), module


def test_no_import_cycles() -> None:
    graph = {m: {i for i in kvcalc_imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    # a package's __init__ importing its own submodules is the package, not a cycle
    for m in graph:
        graph[m] = {i for i in graph[m] if not i.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " → ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
