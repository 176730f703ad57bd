"""The package's dependencies point one way: base ← engine ← trace ← library ← views ←
commands.  No module imports (at the top or inside a function) from a layer above its
own, and the modules' top-level imports form no cycle.

Read from the source with ``ast``, so the test needs nothing imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "glassnet"

#: Layer by top-level module or package of glassnet, lowest first.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("base", frozenset({"errors", "limits", "fileio", "mathtree", "npz", "nodes", "specvalues"})),
    (
        "engine",
        frozenset(
            {
                "activations",
                "losses",
                "layers",
                "init",
                "optim",
                "optimizers",
                "network",
                "step",
            }
        ),
    ),
    ("trace", frozenset({"trace", "notation", "gradcheck"})),
    (
        "library",
        frozenset(
            {
                "training",
                "model",
                "io",
                "data",
                "preprocess",
                "metrics",
                "runs",
                "plots",
                "interop",
                "spec",
                "sklearn",
                "parallel",
                "kernels",
            }
        ),
    ),
    ("views", frozenset({"explain", "check", "render_terminal", "studio"})),
    ("commands", frozenset({"commands", "cli", "__main__"})),
)


def _layer(module: str) -> int | None:
    """The layer index of ``glassnet.X...``; None for glassnet itself (the lazy facade)."""
    parts = module.split(".")
    if parts[0] != "glassnet" or len(parts) == 1:
        return None
    for i, (_, names) in enumerate(LAYERS):
        if parts[1] in names:
            return i
    raise AssertionError(f"glassnet.{parts[1]} has no layer: add it to LAYERS in {__file__}")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("glassnet", *parts))] = path
    return out


def _imports(path: Path, *, top_level_only: bool) -> list[tuple[str, int]]:
    """(module, line) of every glassnet import; with ``top_level_only`` those that run
    when the module is imported (not in functions, not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if not top_level_only:
                    visit(child, True)
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # types only: never runs
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module.startswith("glassnet"):
                    found.append((child.module, child.lineno))
                    for alias in child.names:
                        sub = f"{child.module}.{alias.name}"
                        if sub.count(".") >= 1:
                            found.append((sub, child.lineno))
            elif isinstance(child, ast.Import):
                found.extend(
                    (a.name, child.lineno) for a in child.names if a.name.startswith("glassnet")
                )
            visit(child, nested)

    visit(tree, False)
    return found


def test_every_module_has_a_layer():
    for module in _modules():
        if module != "glassnet":
            assert _layer(module) is not None


def test_no_import_points_up():
    modules = _modules()
    upward = []
    for module, path in modules.items():
        mine = _layer(module)
        if mine is None:
            continue
        for target, line in _imports(path, top_level_only=False):
            if target == "glassnet" or target.split(".")[1] == "__version__":
                continue
            theirs = _layer(target)
            if theirs is not None and theirs > mine:
                upward.append(
                    f"{path.relative_to(ROOT.parent)}:{line} {module} ({LAYERS[mine][0]}) "
                    f"imports {target} ({LAYERS[theirs][0]})"
                )
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(set(upward)))


def test_no_import_cycles_at_module_level():
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps = set()
        for target, _ in _imports(path, top_level_only=True):
            # an imported name may be a module (from glassnet.x import y) or an object
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                deps.add(target)
        graph[module] = deps

    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = [*stack[stack.index(d) :], d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if d not in state:
                walk(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)
